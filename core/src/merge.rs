//! Merging sorted runs of records into one sorted stream, and sorting records in memory.

use std::io::{self, BufRead, Write};

use crate::record::{self, RecordReader};

/// Merges sorted record streams into one, by key, bytewise. Equal keys come from the
/// earlier stream first, so the merge is stable.
pub struct Merger<R> {
    sources: Vec<RecordReader<R>>,
    live: Vec<bool>,
    current: Option<usize>,
    started: bool,
}

impl<R: BufRead> Merger<R> {
    /// Merges `sources`, each sorted by key.
    pub fn new(sources: Vec<R>) -> Self {
        let sources: Vec<_> = sources.into_iter().map(RecordReader::new).collect();
        let live = vec![false; sources.len()];
        Self {
            sources,
            live,
            current: None,
            started: false,
        }
    }

    /// Advances to the smallest record left; false when every source is done.
    pub fn advance(&mut self) -> io::Result<bool> {
        if !self.started {
            self.started = true;
            for (i, source) in self.sources.iter_mut().enumerate() {
                self.live[i] = source.advance()?;
            }
        } else if let Some(i) = self.current {
            self.live[i] = self.sources[i].advance()?;
        }
        self.current = None;
        for i in 0..self.sources.len() {
            if !self.live[i] {
                continue;
            }
            let smaller = match self.current {
                None => true,
                Some(best) => self.sources[i].key() < self.sources[best].key(),
            };
            if smaller {
                self.current = Some(i);
            }
        }
        Ok(self.current.is_some())
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
        self.index.sort_by(|a, b| {
            (a.partition, a.prefix).cmp(&(b.partition, b.prefix)).then_with(|| {
                // Equal prefixes: two keys of at most 8 bytes are then equal as far as the
                // shorter goes, so the shorter comes first.
                if a.klen <= 8 && b.klen <= 8 {
                    a.klen.cmp(&b.klen)
                } else {
                    key(a).cmp(key(b))
                }
            })
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
