//! Writing one map attempt's output: records are partitioned, buffered, sorted and spilled
//! to disk when the buffer fills (each spill through the combiner, if there is one), and
//! the spills are merged into one data file with a partition index.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use weft_auth::paths::naming;
use weft_core::merge::{Merger, RecordBuffer};
use weft_core::partition::Partitioner;
use weft_core::record;
use weft_core::setup::KeyLayout;

use crate::aggregate::{is_aggregate, Aggregate};
use crate::process::{KillSwitch, Shell, TaskEnv};
use crate::store::{write_index, DATA_FILE, INDEX_FILE};

/// A streaming combiner: a command run on each sorted spill, partition by partition.
#[derive(Clone)]
pub struct Combiner {
    /// The command.
    pub command: String,
    /// Its environment.
    pub env: TaskEnv,
    /// How its output lines split into key and value.
    pub keys: KeyLayout,
}

/// Collects a map attempt's records into its output directory.
pub struct MapOutputWriter {
    dir: PathBuf,
    partitioner: Partitioner,
    partitions: u32,
    buffer: RecordBuffer,
    limit: usize,
    spills: Vec<(PathBuf, Vec<u64>)>,
    combiner: Option<Combiner>,
    switch: KillSwitch,
    /// Records taken.
    pub records: u64,
}

impl MapOutputWriter {
    /// Writes into `dir` (created), spilling past `limit` bytes of buffered records.
    pub fn create(
        dir: PathBuf,
        partitioner: Partitioner,
        partitions: u32,
        limit: usize,
        combiner: Option<Combiner>,
        switch: KillSwitch,
    ) -> io::Result<Self> {
        fs::create_dir_all(&dir)?;
        Ok(Self {
            dir,
            partitioner,
            partitions,
            buffer: RecordBuffer::default(),
            limit,
            spills: Vec::new(),
            combiner,
            switch,
            records: 0,
        })
    }

    /// Adds a record.
    pub fn add(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        let partition = self.partitioner.partition(key);
        self.buffer.push(partition, key, value);
        self.records += 1;
        if self.buffer.memory() >= self.limit {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> io::Result<()> {
        self.switch.check()?;
        let path = self.dir.join(format!("spill-{}", self.spills.len()));
        self.spill_to(&path).map_err(|e| naming(e, &path))?;
        Ok(())
    }

    fn spill_to(&mut self, path: &Path) -> io::Result<()> {
        let path = path.to_path_buf();
        let mut out = CountingWriter::new(BufWriter::with_capacity(1 << 20, File::create(&path)?));
        let mut offsets = vec![0u64; self.partitions as usize + 1];
        let (combiner, switch) = (self.combiner.clone(), self.switch.clone());
        // With a combiner, a partition's records are gathered as text and written when it ends.
        let end_partition = |out: &mut CountingWriter<_>, text: &mut Vec<u8>| match &combiner {
            Some(combiner) => combine(combiner, std::mem::take(text), out, &switch),
            None => Ok(()),
        };
        let mut current = 0u32;
        let mut text = Vec::new();
        self.buffer.drain_sorted(|p, key, value| {
            while current < p {
                end_partition(&mut out, &mut text)?;
                current += 1;
                offsets[current as usize] = out.count;
            }
            match combiner {
                Some(_) => {
                    append_line(&mut text, key, value);
                    Ok(())
                }
                None => record::write_record(&mut out, key, value),
            }
        })?;
        while current < self.partitions {
            end_partition(&mut out, &mut text)?;
            current += 1;
            offsets[current as usize] = out.count;
        }
        out.flush()?;
        self.spills.push((path, offsets));
        Ok(())
    }

    /// Spills what is left and merges the spills; returns the bytes of each partition.
    pub fn finish(mut self) -> io::Result<Vec<u64>> {
        if !self.buffer.is_empty() || self.spills.is_empty() {
            self.spill()?;
        }
        let data = self.dir.join(DATA_FILE);
        let offsets = if self.spills.len() == 1 {
            let (path, offsets) = self.spills.pop().expect("one spill");
            fs::rename(&path, &data).map_err(|e| naming(e, &path))?;
            offsets
        } else {
            self.merge_spills(&data).map_err(|e| naming(e, &data))?
        };
        let index = self.dir.join(INDEX_FILE);
        write_index(&index, &offsets).map_err(|e| naming(e, &index))?;
        Ok(offsets.windows(2).map(|w| w[1] - w[0]).collect())
    }

    fn merge_spills(&mut self, data: &PathBuf) -> io::Result<Vec<u64>> {
        let mut out = CountingWriter::new(BufWriter::with_capacity(1 << 20, File::create(data)?));
        let mut offsets = vec![0u64];
        for p in 0..self.partitions as usize {
            self.switch.check()?;
            let mut segments = Vec::new();
            for (path, spill_offsets) in &self.spills {
                let mut file = File::open(path)?;
                file.seek(SeekFrom::Start(spill_offsets[p]))?;
                let segment = file.take(spill_offsets[p + 1] - spill_offsets[p]);
                segments.push(BufReader::with_capacity(256 << 10, segment));
            }
            Merger::new(segments).write_all(&mut out)?;
            offsets.push(out.count);
        }
        out.flush()?;
        for (path, _) in self.spills.drain(..) {
            fs::remove_file(path)?;
        }
        Ok(offsets)
    }
}

/// `key<TAB>value\n`, or `key\n` for an empty value (Hadoop Streaming's text form).
pub fn append_line(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    out.extend_from_slice(key);
    if !value.is_empty() {
        out.push(b'\t');
        out.extend_from_slice(value);
    }
    out.push(b'\n');
}

/// Runs `combiner` over one partition's sorted text; writes its output, sorted, as records.
fn combine(combiner: &Combiner, text: Vec<u8>, out: &mut impl Write, switch: &KillSwitch) -> io::Result<()> {
    if text.is_empty() {
        return Ok(());
    }
    if is_aggregate(&combiner.command) {
        // Sorted in, sorted out: the partials go straight into records.
        let mut aggregate = Aggregate::new(|key: &[u8], value: &[u8]| record::write_record(out, key, value), true);
        for line in text.split_inclusive(|&b| b == b'\n') {
            let (key, value) = combiner.keys.split(line);
            aggregate.push(key, value)?;
        }
        return aggregate.finish().map(drop);
    }
    let mut shell = Shell::spawn(&combiner.command, &combiner.env, Stdio::piped(), Stdio::piped(), switch)?;
    let mut stdin = shell.stdin().expect("piped");
    let feeder = std::thread::spawn(move || stdin.write_all(&text));
    let mut combined = RecordBuffer::default();
    let mut reader = BufReader::new(shell.stdout().expect("piped"));
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line)? > 0 {
        let (key, value) = combiner.keys.split(&line);
        combined.push(0, key, value);
        line.clear();
    }
    let _ = feeder.join();
    shell
        .wait()
        .map_err(|reason| io::Error::other(format!("combiner failed: {reason}")))?;
    combined.drain_sorted(|_, key, value| record::write_record(out, key, value))
}

struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W> CountingWriter<W> {
    fn new(inner: W) -> Self {
        Self { inner, count: 0 }
    }
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_core::record::RecordReader;

    fn read_partition(dir: &std::path::Path, p: usize) -> Vec<(String, String)> {
        let index = fs::read(dir.join(INDEX_FILE)).unwrap();
        let offsets: Vec<u64> = index
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let data = fs::read(dir.join(DATA_FILE)).unwrap();
        let mut reader = RecordReader::new(&data[offsets[p] as usize..offsets[p + 1] as usize]);
        let mut out = Vec::new();
        while reader.advance().unwrap() {
            out.push((
                String::from_utf8(reader.key().to_vec()).unwrap(),
                String::from_utf8(reader.value().to_vec()).unwrap(),
            ));
        }
        out
    }

    #[test]
    fn spills_merge_into_sorted_partitions() {
        let dir = tempfile::tempdir().unwrap();
        let out_dir = dir.path().join("attempt");
        let partitioner = Partitioner::Range {
            points: vec![b"m".to_vec()],
        };
        // A tiny buffer: nearly every record spills.
        let mut writer =
            MapOutputWriter::create(out_dir.clone(), partitioner, 2, 40, None, KillSwitch::default()).unwrap();
        for word in ["pear", "apple", "zebra", "kiwi", "melon", "apple", "fig"] {
            writer.add(word.as_bytes(), b"1").unwrap();
        }
        let sizes = writer.finish().unwrap();
        assert_eq!(sizes.len(), 2);
        let keys = |p| {
            read_partition(&out_dir, p)
                .into_iter()
                .map(|(k, _)| k)
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(0), ["apple", "apple", "fig", "kiwi"]);
        assert_eq!(keys(1), ["melon", "pear", "zebra"]);
        assert!(!out_dir.join("spill-0").exists());
    }

    #[test]
    fn a_streaming_combiner_runs_on_each_spill() {
        let dir = tempfile::tempdir().unwrap();
        let out_dir = dir.path().join("attempt");
        let combiner = Combiner {
            command: "awk -F'\\t' '{s[$1]+=$2} END {for (k in s) print k \"\\t\" s[k]}'".into(),
            env: TaskEnv::default(),
            keys: KeyLayout::default(),
        };
        let mut writer = MapOutputWriter::create(
            out_dir.clone(),
            Partitioner::Hash {
                partitions: 1,
                fields: None,
            },
            1,
            1 << 20,
            Some(combiner),
            KillSwitch::default(),
        )
        .unwrap();
        for word in ["b", "a", "b", "b"] {
            writer.add(word.as_bytes(), b"1").unwrap();
        }
        writer.finish().unwrap();
        assert_eq!(
            read_partition(&out_dir, 0),
            [("a".to_string(), "1".to_string()), ("b".to_string(), "3".to_string())]
        );
    }

    #[test]
    fn lines_split_at_the_first_tab() {
        let mut text = Vec::new();
        append_line(&mut text, b"k", b"");
        append_line(&mut text, b"k", b"v");
        assert_eq!(text, b"k\nk\tv\n");
    }
}
