//! Merging sorted runs of records into one sorted stream, and sorting records in memory.

use std::io::{self, BufRead, Write};

use crate::record::{self, RecordReader};

/// Merges sorted record streams into one, by key, bytewise. Equal keys come from the
/// earlier stream first, so the merge is stable.
///
/// The streams play a tournament (a loser tree, as external sorts since Knuth merge): each
/// record costs about log2(streams) key comparisons, not one per stream.
pub struct Merger<R> {
    sources: Vec<RecordReader<R>>,
    live: Vec<bool>,
    /// `losers[0]` is the winner, the stream with the smallest record; `losers[n]` for
    /// `n` in `1..streams` the stream that lost the match at node `n` (the leaf of stream
    /// `i` is node `streams + i`, the parent of node `n` is `n / 2`).
    losers: Vec<usize>,
    current: Option<usize>,
    started: bool,
}

/// A node no stream has reached yet, while the tree is built.
const EMPTY: usize = usize::MAX;

impl<R: BufRead> Merger<R> {
    /// Merges `sources`, each sorted by key.
    pub fn new(sources: Vec<R>) -> Self {
        let sources: Vec<_> = sources.into_iter().map(RecordReader::new).collect();
        let live = vec![false; sources.len()];
        Self {
            losers: vec![EMPTY; sources.len()],
            sources,
            live,
            current: None,
            started: false,
        }
    }

    /// Advances to the smallest record left; false when every source is done.
    pub fn advance(&mut self) -> io::Result<bool> {
        if self.sources.is_empty() {
            return Ok(false);
        }
        if !self.started {
            self.started = true;
            for i in 0..self.sources.len() {
                self.live[i] = self.sources[i].advance()?;
                self.play_up(i);
            }
        } else if let Some(i) = self.current {
            self.live[i] = self.sources[i].advance()?;
            self.play_up(i);
        }
        let winner = self.losers[0];
        self.current = self.live[winner].then_some(winner);
        Ok(self.current.is_some())
    }

    /// Plays stream `i`'s record from its leaf up to the root: at each node the loser stays
    /// and the winner goes on. While the tree is built, a stream stops at the first node no
    /// stream has reached, to play whichever comes there next.
    fn play_up(&mut self, i: usize) {
        let mut winner = i;
        let mut node = (self.sources.len() + i) / 2;
        while node > 0 {
            let other = self.losers[node];
            if other == EMPTY {
                self.losers[node] = winner;
                return;
            }
            if self.comes_before(other, winner) {
                self.losers[node] = winner;
                winner = other;
            }
            node /= 2;
        }
        self.losers[0] = winner;
    }

    /// Whether stream `a`'s record comes before stream `b`'s: by key, then the earlier
    /// stream; a finished stream comes last.
    fn comes_before(&self, a: usize, b: usize) -> bool {
        match (self.live[a], self.live[b]) {
            (false, _) => false,
            (true, false) => true,
            (true, true) => self.sources[a].key().cmp(self.sources[b].key()).then(a.cmp(&b)).is_lt(),
        }
    }

    /// The current record's key.
    pub fn key(&self) -> &[u8] {
        self.sources[self.current.expect("advance returned true")].key()
    }

    /// The current record's value.
    pub fn value(&self) -> &[u8] {
        self.sources[self.current.expect("advance returned true")].value()
    }

    /// Writes the whole merge to `out` in the record format; returns the records written.
    pub fn write_all(mut self, out: &mut impl Write) -> io::Result<u64> {
        let mut count = 0;
        while self.advance()? {
            record::write_record(out, self.key(), self.value())?;
            count += 1;
        }
        Ok(count)
    }
}

/// Records held in one buffer, to be sorted by key without an allocation per record.
#[derive(Default)]
pub struct RecordBuffer {
    data: Vec<u8>,
    index: Vec<Slot>,
}

/// Where one buffered record is, with its key's first bytes as a number, so that most
/// comparisons of a sort are of two integers and touch neither key's bytes.
#[derive(Clone, Copy)]
struct Slot {
    partition: u32,
    klen: u32,
    /// The key's first 8 bytes, zero-padded, big-endian: ordered as the keys are wherever
    /// they differ within them.
    prefix: u64,
    start: usize,
    vlen: u32,
}

/// A key's first 8 bytes, zero-padded, as a big-endian number.
#[inline]
fn key_prefix(key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let n = key.len().min(8);
    bytes[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(bytes)
}

impl RecordBuffer {
    /// Adds a record bound for `partition`.
    pub fn push(&mut self, partition: u32, key: &[u8], value: &[u8]) {
        let start = self.data.len();
        self.data.extend_from_slice(key);
        self.data.extend_from_slice(value);
        self.index.push(Slot {
            partition,
            klen: key.len() as u32,
            prefix: key_prefix(key),
            start,
            vlen: value.len() as u32,
        });
    }

    /// Bytes held, counting the index.
    pub fn memory(&self) -> usize {
        self.data.len() + self.index.len() * std::mem::size_of::<Slot>()
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Sorts by (partition, key), stably, and calls `emit(partition, key, value)` in that
    /// order, then empties the buffer.
    pub fn drain_sorted(&mut self, mut emit: impl FnMut(u32, &[u8], &[u8]) -> io::Result<()>) -> io::Result<()> {
        let data = &self.data;
        let key = |slot: &Slot| &data[slot.start..slot.start + slot.klen as usize];
        // In place, without a stable sort's scratch copy of the index: records of equal keys
        // keep the order they came in by their place in `data`, which only grows.
        self.index.sort_unstable_by(|a, b| {
            (a.partition, a.prefix)
                .cmp(&(b.partition, b.prefix))
                .then_with(|| {
                    // Equal prefixes: two keys of at most 8 bytes are then equal as far as the
                    // shorter goes, so the shorter comes first.
                    if a.klen <= 8 && b.klen <= 8 {
                        a.klen.cmp(&b.klen)
                    } else {
                        key(a).cmp(key(b))
                    }
                })
                .then(a.start.cmp(&b.start))
        });
        for slot in &self.index {
            let value_start = slot.start + slot.klen as usize;
            emit(
                slot.partition,
                key(slot),
                &data[value_start..value_start + slot.vlen as usize],
            )?;
        }
        self.data.clear();
        self.index.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::encode;

    fn run(keys: &[&str], tag: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for k in keys {
            encode(&mut out, k.as_bytes(), tag.as_bytes());
        }
        out
    }

    #[test]
    fn merges_sorted_runs_stably() {
        let a = run(&["a", "c", "e", "e"], "1");
        let b = run(&[], "2");
        let c = run(&["b", "c", "f"], "3");
        let mut merger = Merger::new(vec![&a[..], &b[..], &c[..]]);
        let mut got = Vec::new();
        while merger.advance().unwrap() {
            got.push(format!(
                "{}{}",
                String::from_utf8_lossy(merger.key()),
                String::from_utf8_lossy(merger.value())
            ));
        }
        assert_eq!(got, ["a1", "b3", "c1", "c3", "e1", "e1", "f3"]);
    }

    #[test]
    fn any_number_of_runs_merge_as_a_stable_sort_of_them_all() {
        // Deterministic pseudo-random runs: keys from a small alphabet so that many tie.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for streams in [1usize, 2, 3, 5, 8, 13] {
            let mut runs = Vec::new();
            let mut want = Vec::new();
            for s in 0..streams {
                let mut keys: Vec<String> = (0..next() % 40).map(|_| format!("{}", next() % 17)).collect();
                keys.sort();
                let tag = format!("{s:02}");
                want.extend(
                    keys.iter()
                        .enumerate()
                        .map(|(i, k)| (k.clone(), format!("{tag}{i:03}"))),
                );
                let mut out = Vec::new();
                for (i, k) in keys.iter().enumerate() {
                    encode(&mut out, k.as_bytes(), format!("{tag}{i:03}").as_bytes());
                }
                runs.push(out);
            }
            // Stable by key: runs in order, and within a run, in its order.
            want.sort_by(|a, b| a.0.cmp(&b.0));
            let mut merger = Merger::new(runs.iter().map(|r| &r[..]).collect());
            let mut got = Vec::new();
            while merger.advance().unwrap() {
                got.push((
                    String::from_utf8(merger.key().to_vec()).unwrap(),
                    String::from_utf8(merger.value().to_vec()).unwrap(),
                ));
            }
            assert_eq!(got, want, "{streams} runs");
            assert!(!merger.advance().unwrap(), "stays finished");
        }
        assert!(!Merger::<&[u8]>::new(Vec::new()).advance().unwrap());
    }

    #[test]
    fn buffer_sorts_by_partition_then_key() {
        let mut buffer = RecordBuffer::default();
        for (p, k) in [(1, "b"), (0, "z"), (1, "a"), (0, "y"), (1, "a")] {
            buffer.push(p, k.as_bytes(), b"v");
        }
        assert_eq!(buffer.len(), 5);
        let mut got = Vec::new();
        buffer
            .drain_sorted(|p, k, _| {
                got.push(format!("{p}{}", String::from_utf8_lossy(k)));
                Ok(())
            })
            .unwrap();
        assert_eq!(got, ["0y", "0z", "1a", "1a", "1b"]);
        assert!(buffer.is_empty());
    }

    #[test]
    fn many_equal_keys_keep_the_order_they_came_in() {
        // Past the few elements an unstable sort orders by insertion, in two partitions,
        // with short and long keys.
        let keys: [&[u8]; 4] = [b"k", b"a", b"long key past eight bytes", b"long key past eight bytez"];
        let mut buffer = RecordBuffer::default();
        let mut want = Vec::new();
        for i in 0..5000u32 {
            let (partition, key) = (i % 2, keys[(i as usize * 7) % keys.len()]);
            buffer.push(partition, key, &i.to_be_bytes());
            want.push((partition, key.to_vec(), i));
        }
        want.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let mut got = Vec::new();
        buffer
            .drain_sorted(|p, k, v| {
                got.push((p, k.to_vec(), u32::from_be_bytes(v.try_into().unwrap())));
                Ok(())
            })
            .unwrap();
        assert_eq!(got, want);
    }

    #[test]
    fn buffer_orders_keys_bytewise_past_their_prefixes_and_keeps_equal_keys_in_order() {
        let keys: [&[u8]; 10] = [
            b"abcdefghZ",
            b"abcdefgh",
            b"abcdefghA",
            b"ab",
            b"ab\0",
            b"",
            b"\xff\x01",
            b"\x80",
            b"abcdefghA",
            b"ab",
        ];
        let mut buffer = RecordBuffer::default();
        for (i, k) in keys.iter().enumerate() {
            buffer.push(0, k, i.to_string().as_bytes());
        }
        let mut got = Vec::new();
        buffer
            .drain_sorted(|_, k, v| {
                got.push((k.to_vec(), String::from_utf8(v.to_vec()).unwrap()));
                Ok(())
            })
            .unwrap();
        let mut want: Vec<(Vec<u8>, String)> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.to_vec(), i.to_string()))
            .collect();
        // A stable sort by key alone: equal keys keep the order they came in.
        want.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(got, want);
    }
}
