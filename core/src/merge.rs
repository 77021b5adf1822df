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
    // (partition, key start, key length, value length)
    index: Vec<(u32, usize, u32, u32)>,
}

impl RecordBuffer {
    /// Adds a record bound for `partition`.
    pub fn push(&mut self, partition: u32, key: &[u8], value: &[u8]) {
        let start = self.data.len();
        self.data.extend_from_slice(key);
        self.data.extend_from_slice(value);
        self.index
            .push((partition, start, key.len() as u32, value.len() as u32));
    }

    /// Bytes held, counting the index.
    pub fn memory(&self) -> usize {
        self.data.len() + self.index.len() * std::mem::size_of::<(u32, usize, u32, u32)>()
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Sorts by (partition, key) and calls `emit(partition, key, value)` in that order,
    /// then empties the buffer.
    pub fn drain_sorted(&mut self, mut emit: impl FnMut(u32, &[u8], &[u8]) -> io::Result<()>) -> io::Result<()> {
        let data = &self.data;
        let key = |&(_, start, klen, _): &(u32, usize, u32, u32)| &data[start..start + klen as usize];
        self.index
            .sort_by(|a, b| a.0.cmp(&b.0).then_with(|| key(a).cmp(key(b))));
        for entry @ &(partition, start, klen, vlen) in &self.index {
            let value_start = start + klen as usize;
            emit(partition, key(entry), &data[value_start..value_start + vlen as usize])?;
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
}
