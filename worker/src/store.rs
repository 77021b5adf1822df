//! Where map output lives on the worker's disk: `<root>/<job>/<attempt>/data` holds the
//! partitions one after another, sorted by key, and `index` their offsets.

use std::collections::{HashSet, VecDeque};
use std::fs;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use weft_core::messages::HeldOutput;
use weft_core::work::{AttemptId, JobId};

/// In a complete map output's directory: the map task's index.
pub const TASK_FILE: &str = "task";

/// ... its records, partition after partition, each partition sorted by key.
pub const DATA_FILE: &str = "data";

/// ... and where each partition starts in the data: `reduce tasks + 1` offsets, 8 bytes each.
pub const INDEX_FILE: &str = "index";

/// The map outputs this worker holds.
#[derive(Debug, Clone)]
pub struct MapOutputStore {
    root: PathBuf,
    /// Jobs that ended (the last ones): output an attempt of theirs finishes late goes.
    forgotten: Arc<Mutex<Forgotten>>,
}

/// The jobs told to be forgotten, the most recent [`Forgotten::KEPT`].
#[derive(Debug, Default)]
struct Forgotten {
    set: HashSet<JobId>,
    order: VecDeque<JobId>,
}

impl Forgotten {
    const KEPT: usize = 100_000;

    fn insert(&mut self, job: JobId) {
        if self.set.insert(job) {
            self.order.push_back(job);
            if self.order.len() > Self::KEPT {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }
}

impl MapOutputStore {
    /// A store under `root`, emptied of anything an earlier run left.
    pub fn open(root: PathBuf) -> io::Result<Self> {
        if root.exists() {
            fs::remove_dir_all(&root)?;
        }
        fs::create_dir_all(&root)?;
        Ok(Self {
            root,
            forgotten: Arc::default(),
        })
    }

    /// The directory of one attempt's output.
    pub fn attempt_dir(&self, job: JobId, attempt: AttemptId) -> PathBuf {
        self.job_dir(job).join(attempt.to_string())
    }

    fn job_dir(&self, job: JobId) -> PathBuf {
        self.root.join(job.to_string())
    }

    /// The byte range of `partition` in an attempt's data file: its two offsets read from
    /// the index, not the whole index (a job of 100,000 reduce tasks has an index of 800 KB,
    /// and every reducer's fetch read it all).
    pub fn partition_range(&self, job: JobId, attempt: AttemptId, partition: u32) -> io::Result<(PathBuf, u64, u64)> {
        let dir = self.attempt_dir(job, attempt);
        let index = dir.join(INDEX_FILE);
        let mut offsets = [0u8; 16];
        match fs::File::open(&index)?.read_exact_at(&mut offsets, u64::from(partition) * 8) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no partition {partition}"),
                ))
            }
            read => read?,
        }
        let offset = |at: usize| u64::from_le_bytes(offsets[at..at + 8].try_into().expect("8 bytes"));
        let (start, end) = (offset(0), offset(8));
        if end < start {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: offsets out of order: the map output is damaged", index.display()),
            ));
        }
        Ok((dir.join(DATA_FILE), start, end - start))
    }

    /// Every complete map output in the store.
    pub fn held(&self) -> Vec<HeldOutput> {
        let mut held = Vec::new();
        let Ok(jobs) = fs::read_dir(&self.root) else {
            return held;
        };
        for job_dir in jobs.flatten() {
            let Some(job) = job_dir.file_name().to_str().and_then(|name| name.parse().ok()) else {
                continue;
            };
            let Ok(attempts) = fs::read_dir(job_dir.path()) else {
                continue;
            };
            for attempt in attempts.flatten() {
                let task = fs::read_to_string(attempt.path().join(TASK_FILE))
                    .ok()
                    .and_then(|t| t.trim().parse().ok());
                let id = attempt.file_name().to_string_lossy().parse().ok();
                if let (Some(task), Some(attempt)) = (task, id) {
                    held.push(HeldOutput { job, task, attempt });
                }
            }
        }
        held
    }

    /// Deletes a job's map output, and whatever an attempt of it still running writes
    /// later ([`MapOutputStore::settle`]).
    pub fn forget(&self, job: JobId) {
        self.forgotten.lock().expect("store lock poisoned").insert(job);
        let _ = fs::remove_dir_all(self.job_dir(job));
    }

    /// After a map attempt ends: its output stays only if it is the attempt's result
    /// (`kept`) and its job is not over; otherwise it goes (with its job's directory if
    /// that is left empty).
    pub fn settle(&self, job: JobId, attempt: AttemptId, kept: bool) {
        let over = self.forgotten.lock().expect("store lock poisoned").set.contains(&job);
        if kept && !over {
            return;
        }
        let _ = fs::remove_dir_all(self.attempt_dir(job, attempt));
        if over {
            let _ = fs::remove_dir_all(self.job_dir(job));
        } else {
            let _ = fs::remove_dir(self.job_dir(job));
        }
    }

    /// The store's root.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// Writes partition offsets: `partitions + 1` little-endian u64s.
pub fn write_index(path: &Path, offsets: &[u64]) -> io::Result<()> {
    let bytes: Vec<u8> = offsets.iter().flat_map(|o| o.to_le_bytes()).collect();
    fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_of_an_attempt_that_ends_after_its_job_is_forgotten_goes() {
        let dir = tempfile::tempdir().unwrap();
        let store = MapOutputStore::open(dir.path().join("map-output")).unwrap();
        let (job, other) = (JobId::new(1), JobId::new(2));
        for (j, attempt) in [(job, 10), (job, 11), (other, 20)] {
            fs::create_dir_all(store.attempt_dir(j, attempt)).unwrap();
        }
        store.settle(other, 20, true);
        assert!(store.attempt_dir(other, 20).exists(), "a result of a running job stays");
        store.settle(job, 11, false);
        assert!(
            !store.attempt_dir(job, 11).exists(),
            "what was not the attempt's result goes"
        );
        store.forget(job);
        // An attempt of the forgotten job finishes late and writes its output again.
        fs::create_dir_all(store.attempt_dir(job, 10)).unwrap();
        store.settle(job, 10, true);
        assert!(
            !store.job_dir(job).exists(),
            "output of a job that is over goes, late or not"
        );
        assert_eq!(store.held().len(), 0);
    }

    #[test]
    fn a_partition_range_is_read_from_its_two_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let store = MapOutputStore::open(dir.path().join("map-output")).unwrap();
        let job = JobId::new(1);
        let attempt_dir = store.attempt_dir(job, 5);
        fs::create_dir_all(&attempt_dir).unwrap();
        write_index(&attempt_dir.join(INDEX_FILE), &[0, 4, 4, 10]).unwrap();
        let (path, start, length) = store.partition_range(job, 5, 2).unwrap();
        assert_eq!((path, start, length), (attempt_dir.join(DATA_FILE), 4, 6));
        assert_eq!(store.partition_range(job, 5, 1).unwrap().2, 0, "an empty partition");
        let past = store.partition_range(job, 5, 3).unwrap_err();
        assert_eq!(past.kind(), io::ErrorKind::NotFound, "{past}");
        let missing = store.partition_range(job, 6, 0).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound, "{missing}");
        write_index(&attempt_dir.join(INDEX_FILE), &[0, 9, 4]).unwrap();
        let damaged = store.partition_range(job, 5, 1).unwrap_err();
        assert_eq!(damaged.kind(), io::ErrorKind::InvalidData, "{damaged}");
    }
}
