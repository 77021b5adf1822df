//! Partitioners: which reduce task a key goes to.

use crate::setup::leading_fields;

/// FNV-1a, 64 bits: stable across runs, machines and versions.
pub fn stable_hash(key: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key {
        hash ^= *byte as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Sends a key to one of `partitions` reduce tasks.
#[derive(Debug, Clone)]
pub enum Partitioner {
    /// A stable hash of the key modulo the number of partitions.
    Hash {
        /// How many partitions.
        partitions: u32,
        /// Hash only the key's first so many tab-separated fields; `None`: all of it.
        fields: Option<u32>,
    },
    /// Ranges between split points, so partition i holds smaller keys than i+1.
    Range {
        /// Ascending split points; `len() + 1` partitions.
        points: Vec<Vec<u8>>,
    },
}

impl Partitioner {
    /// The partition of `key`.
    pub fn partition(&self, key: &[u8]) -> u32 {
        match self {
            Partitioner::Hash { partitions, fields } => {
                let hashed = fields.map_or(key, |n| leading_fields(key, n));
                (stable_hash(hashed) % *partitions as u64) as u32
            }
            Partitioner::Range { points } => points.partition_point(|p| p.as_slice() <= key) as u32,
        }
    }
}

/// Picks `partitions - 1` split points from a sample of keys, for a [`Partitioner::Range`].
pub fn choose_split_points(mut sample: Vec<Vec<u8>>, partitions: u32) -> Vec<Vec<u8>> {
    if partitions <= 1 || sample.is_empty() {
        return Vec::new();
    }
    sample.sort_unstable();
    (1..partitions as usize)
        .map(|i| sample[(i * sample.len() / partitions as usize).min(sample.len() - 1)].clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_with_equal_leading_fields_share_a_partition() {
        let p = Partitioner::Hash {
            partitions: 3,
            fields: Some(1),
        };
        let users = ["ann", "bob", "cy", "dee", "eve"];
        for user in users {
            let first = p.partition(format!("{user}\t0001").as_bytes());
            for ts in ["0002", "0003", "9999"] {
                assert_eq!(p.partition(format!("{user}\t{ts}").as_bytes()), first);
            }
            assert_eq!(p.partition(user.as_bytes()), first);
        }
    }

    #[test]
    fn hash_is_stable_and_in_range() {
        // Fixed values: the partition of a key must never change between versions.
        assert_eq!(stable_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        let p = Partitioner::Hash {
            partitions: 7,
            fields: None,
        };
        for word in ["the", "quick", "brown", "fox", ""] {
            assert!(p.partition(word.as_bytes()) < 7);
            assert_eq!(p.partition(word.as_bytes()), p.partition(word.as_bytes()));
        }
    }

    #[test]
    fn hash_spreads_keys() {
        let p = Partitioner::Hash {
            partitions: 4,
            fields: None,
        };
        let mut counts = [0; 4];
        for i in 0..4000 {
            counts[p.partition(format!("key{i}").as_bytes()) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
    }

    #[test]
    fn range_partitions_are_ordered() {
        let sample: Vec<Vec<u8>> = (0..100u8).rev().map(|i| vec![i]).collect();
        let points = choose_split_points(sample, 4);
        assert_eq!(points, vec![vec![25], vec![50], vec![75]]);
        let p = Partitioner::Range { points };
        let parts: Vec<u32> = [0u8, 24, 25, 49, 50, 99, 200]
            .iter()
            .map(|b| p.partition(&[*b]))
            .collect();
        assert_eq!(parts, vec![0, 0, 1, 1, 2, 3, 3]);
        assert!(choose_split_points(vec![], 3).is_empty());
    }
}
