//! Sorted runs of records a reducer merges: in memory, on disk, or read in place from this
//! worker's own map output; merged in passes of at
//! most [`MERGE_FACTOR`] so that open files stay bounded.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Cursor, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use weft_auth::paths::naming;
use weft_core::merge::Merger;

/// Runs merged at once.
pub const MERGE_FACTOR: usize = 64;

/// One sorted run.
pub enum Run {
    /// Held in memory.
    Memory(Vec<u8>),
    /// In a file of its own, removed once opened.
    File(PathBuf),
    /// A byte range of a file the run does not own (a map output on this worker's own
    /// disk), read in place and left as it is.
    Slice {
        /// The file.
        path: PathBuf,
        /// Where the run starts.
        start: u64,
        /// Its bytes.
        length: u64,
    },
}

impl Run {
    /// Bytes held in memory.
    pub fn memory(&self) -> usize {
        match self {
            Run::Memory(data) => data.len(),
            Run::File(_) | Run::Slice { .. } => 0,
        }
    }

    pub(crate) fn open(self) -> io::Result<Box<dyn BufRead + Send>> {
        Ok(match self {
            Run::Memory(data) => Box::new(Cursor::new(data)),
            Run::File(path) => {
                let file = File::open(&path).map_err(|e| naming(e, &path))?;
                // Unlinked now: the open handle keeps it readable, and nothing is left behind.
                std::fs::remove_file(&path)?;
                Box::new(BufReader::with_capacity(256 << 10, file))
            }
            Run::Slice { path, start, length } => {
                let mut file = File::open(&path).map_err(|e| naming(e, &path))?;
                file.seek(SeekFrom::Start(start))?;
                Box::new(BufReader::with_capacity(256 << 10, file.take(length)))
            }
        })
    }
}

/// Merges `runs` into one file run at `target`.
fn merge_into_file(runs: Vec<Run>, target: PathBuf) -> io::Result<Run> {
    let sources = runs.into_iter().map(Run::open).collect::<io::Result<Vec<_>>>()?;
    let write = || -> io::Result<()> {
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&target)?);
        Merger::new(sources).write_all(&mut out)?;
        out.flush()
    };
    write().map_err(|e| naming(e, &target))?;
    Ok(Run::File(target))
}

/// Moves every in-memory run to one file run at `target`; file runs stay as they are.
pub fn merge_memory_runs(runs: Vec<Run>, target: PathBuf) -> io::Result<Vec<Run>> {
    let (memory, mut kept): (Vec<Run>, Vec<Run>) = runs.into_iter().partition(|r| matches!(r, Run::Memory(_)));
    kept.push(merge_into_file(memory, target)?);
    Ok(kept)
}

/// A merger over every run, after merging runs in passes until at most [`MERGE_FACTOR`]
/// are left; intermediate files go to `dir`.
pub fn final_merger(mut runs: Vec<Run>, dir: &std::path::Path) -> io::Result<Merger<Box<dyn BufRead + Send>>> {
    let mut pass = 0;
    while runs.len() > MERGE_FACTOR {
        let rest = runs.split_off(MERGE_FACTOR);
        let merged = merge_into_file(runs, dir.join(format!("pass-{pass}")))?;
        pass += 1;
        runs = rest;
        runs.push(merged);
    }
    let sources = runs.into_iter().map(Run::open).collect::<io::Result<Vec<_>>>()?;
    Ok(Merger::new(sources))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use weft_core::record::encode;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        /// Damaged map output (random bytes, records cut anywhere) reaching a reducer's
        /// merge: an error, never a panic.
        #[test]
        fn damaged_runs_make_the_merge_fail_cleanly(
            runs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 1..5),
            on_disk in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let runs: Vec<Run> = runs
                .into_iter()
                .enumerate()
                .map(|(i, bytes)| {
                    if on_disk {
                        let path = dir.path().join(format!("run-{i}"));
                        std::fs::write(&path, &bytes).unwrap();
                        Run::Slice { path, start: 0, length: bytes.len() as u64 + 7 }
                    } else {
                        Run::Memory(bytes)
                    }
                })
                .collect();
            if let Ok(mut merger) = final_merger(runs, dir.path()) {
                while let Ok(true) = merger.advance() {}
            }
        }
    }

    #[test]
    fn many_runs_merge_in_passes_into_one_sorted_stream() {
        let dir = tempfile::tempdir().unwrap();
        let mut runs = Vec::new();
        for i in 0..150u32 {
            let mut data = Vec::new();
            encode(&mut data, format!("{:04}", i * 7 % 150).as_bytes(), b"");
            encode(&mut data, format!("{:04}", 1000 + i).as_bytes(), b"");
            runs.push(Run::Memory(data));
        }
        let runs = merge_memory_runs(runs.split_off(100), dir.path().join("m"))
            .unwrap()
            .into_iter()
            .chain(runs)
            .collect();
        let mut merger = final_merger(runs, dir.path()).unwrap();
        let mut keys = Vec::new();
        while merger.advance().unwrap() {
            keys.push(String::from_utf8(merger.key().to_vec()).unwrap());
        }
        assert_eq!(keys.len(), 300);
        assert!(keys.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "intermediate files removed"
        );
    }
}
