//! The reducer's side of the shuffle: fetching its partition of every map output from the
//! workers that hold them, a few at a time, keeping small runs in memory and writing large
//! ones (and memory past the merge buffer) to disk. Map output this worker holds itself is
//! read in place from its disk, not fetched (as Hadoop's local fetcher and Spark's local
//! block reads do). A gRPC edge: the `Fetch` client.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::stream::{self, StreamExt};
use tokio::io::AsyncWriteExt;
use tonic::transport::{Channel, Endpoint};
use tonic::Code;
use weft_auth::tls::{TlsMaterial, WorkerChannels};
use weft_core::work::{AttemptId, JobId, MapLocation};
use weft_proto::convert::MAX_MESSAGE_BYTES;
use weft_proto::v1::{self, shuffle_service_client::ShuffleServiceClient};

use crate::merge::{merge_memory_runs, Run};
use crate::process::KillSwitch;
use crate::store::MapOutputStore;

/// Map outputs fetched at once by one reducer.
const PARALLEL_FETCHES: usize = 4;
/// Tries per map output before it is reported lost.
const FETCH_TRIES: u32 = 3;
/// A fetch that receives nothing for this long fails (and is tried again).
const FETCH_STALL: Duration = Duration::from_secs(60);

/// A reducer's failure to fetch some map outputs.
#[derive(Debug)]
pub struct FetchFailure {
    /// The map attempts whose output could not be fetched.
    pub map_attempts: Vec<AttemptId>,
    /// What went wrong, for the first of them.
    pub reason: String,
}

/// Connections to other workers' shuffle services, kept for reuse; over TLS, this worker
/// presents its certificate and expects a worker's.
pub struct Fetcher {
    own: OwnOutput,
    channels: WorkerChannels,
}

/// This worker's own map output: the shuffle address it is announced at, and its store.
pub struct OwnOutput {
    /// The address this worker's shuffle service is announced at.
    pub address: String,
    /// Its map outputs.
    pub store: MapOutputStore,
}

impl Fetcher {
    /// A fetcher that speaks TLS with `tls`, or plaintext without, and reads the map output
    /// at `own.address` from `own.store`.
    pub fn new(tls: Option<TlsMaterial>, own: OwnOutput) -> Self {
        let tune = |endpoint: Endpoint| {
            endpoint
                .connect_timeout(Duration::from_secs(3))
                // A frozen or partitioned peer accepts connections in its kernel but never answers.
                .http2_keep_alive_interval(Duration::from_secs(3))
                .keep_alive_timeout(Duration::from_secs(5))
                .keep_alive_while_idle(true)
                .tcp_nodelay(true)
        };
        Self {
            own,
            channels: WorkerChannels::new(tls, tune),
        }
    }

    fn client(&self, address: &str) -> Result<ShuffleServiceClient<Channel>, String> {
        let channel = self
            .channels
            .get(address)
            .map_err(|e| format!("bad shuffle address {address:?}: {e}"))?;
        Ok(ShuffleServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES))
    }

    fn forget(&self, address: &str) {
        self.channels.forget(address);
    }

    /// Fetches `partition` of every map in `maps`; runs past `memory_limit` go to `dir`.
    /// Returns the runs and the bytes fetched; every chunk ticks `progress`.
    pub async fn fetch_partition(
        &self,
        job: JobId,
        partition: u32,
        maps: &[MapLocation],
        dir: &Path,
        memory_limit: usize,
        progress: &KillSwitch,
    ) -> Result<(Vec<Run>, u64), FetchFailure> {
        let mut fetches = stream::iter(maps.iter().cloned().enumerate())
            .map(|(i, map)| {
                let target = dir.join(format!("fetch-{i}"));
                async move {
                    let run = self
                        .fetch_with_retries(job, partition, &map, target, memory_limit / 4, progress)
                        .await;
                    (map, run)
                }
            })
            .buffer_unordered(PARALLEL_FETCHES);
        let mut runs = Vec::new();
        let mut in_memory = 0usize;
        let mut fetched = 0u64;
        let mut merged = 0usize;
        while let Some((map, result)) = fetches.next().await {
            match result {
                Ok((run, bytes)) => {
                    fetched += bytes;
                    in_memory += run.memory();
                    runs.push(run);
                    if in_memory > memory_limit {
                        let target = dir.join(format!("merged-{merged}"));
                        merged += 1;
                        runs = tokio::task::spawn_blocking(move || merge_memory_runs(runs, target))
                            .await
                            .expect("merge does not panic")
                            .map_err(|e| FetchFailure {
                                map_attempts: Vec::new(),
                                reason: format!("spilling fetched runs: {e}"),
                            })?;
                        in_memory = 0;
                    }
                }
                Err((code, reason)) => {
                    // Stop at the first failure (the fetches still running are dropped). A
                    // worker that does not answer has lost every output it held, so they all
                    // run again at once rather than each failing in turn after its retries.
                    let lost = maps.iter().filter(|m| match code {
                        Code::NotFound => m.attempt == map.attempt,
                        _ => m.shuffle_address == map.shuffle_address,
                    });
                    return Err(FetchFailure {
                        map_attempts: lost.map(|m| m.attempt).collect(),
                        reason,
                    });
                }
            }
        }
        Ok((runs, fetched))
    }

    async fn fetch_with_retries(
        &self,
        job: JobId,
        partition: u32,
        map: &MapLocation,
        target: PathBuf,
        largest_in_memory: usize,
        progress: &KillSwitch,
    ) -> Result<(Run, u64), (Code, String)> {
        let mut delay = Duration::from_millis(100);
        let mut last = (Code::Unknown, String::new());
        for _ in 0..FETCH_TRIES {
            match self
                .fetch_one(job, partition, map, &target, largest_in_memory, progress)
                .await
            {
                Ok(run) => return Ok(run),
                Err((code, reason)) => {
                    last = (code, reason);
                    self.forget(&map.shuffle_address);
                    if code == Code::NotFound {
                        break;
                    }
                    tokio::time::sleep(delay).await;
                    delay *= 3;
                }
            }
        }
        let (code, reason) = last;
        Err((
            code,
            format!("map attempt {} at {}: {reason}", map.attempt, map.shuffle_address),
        ))
    }

    async fn fetch_one(
        &self,
        job: JobId,
        partition: u32,
        map: &MapLocation,
        target: &PathBuf,
        largest_in_memory: usize,
        progress: &KillSwitch,
    ) -> Result<(Run, u64), (Code, String)> {
        if map.shuffle_address == self.own.address {
            return self.read_own(job, partition, map.attempt);
        }
        let mut client = self
            .client(&map.shuffle_address)
            .map_err(|e| (Code::InvalidArgument, e))?;
        let request = v1::FetchRequest {
            job_id: job.to_string(),
            map_attempt: map.attempt,
            partition,
        };
        let status = |s: tonic::Status| (s.code(), s.message().to_string());
        let io = |e: std::io::Error| (Code::Internal, format!("writing {}: {e}", target.display()));
        let stalled = |_| (Code::Unavailable, format!("no data for {} s", FETCH_STALL.as_secs()));
        let response = tokio::time::timeout(FETCH_STALL, client.fetch(request))
            .await
            .map_err(stalled)?;
        let mut chunks = response.map_err(status)?.into_inner();
        let mut memory = Vec::new();
        let mut file: Option<tokio::io::BufWriter<tokio::fs::File>> = None;
        let mut bytes = 0u64;
        while let Some(chunk) = tokio::time::timeout(FETCH_STALL, chunks.message())
            .await
            .map_err(stalled)?
            .map_err(status)?
        {
            bytes += chunk.data.len() as u64;
            progress.tick();
            match &mut file {
                Some(f) => f.write_all(&chunk.data).await.map_err(io)?,
                None if memory.len() + chunk.data.len() > largest_in_memory => {
                    if let Some(dir) = target.parent() {
                        tokio::fs::create_dir_all(dir).await.map_err(io)?;
                    }
                    let mut f = tokio::io::BufWriter::new(tokio::fs::File::create(target).await.map_err(io)?);
                    f.write_all(&memory).await.map_err(io)?;
                    f.write_all(&chunk.data).await.map_err(io)?;
                    memory = Vec::new();
                    file = Some(f);
                }
                None => memory.extend_from_slice(&chunk.data),
            }
        }
        match file {
            Some(mut f) => {
                f.flush().await.map_err(io)?;
                Ok((Run::File(target.clone()), bytes))
            }
            None => Ok((Run::Memory(memory), bytes)),
        }
    }

    /// A partition of this worker's own map output, as a run read in place; missing output
    /// fails as a fetch from a peer that lost it would.
    fn read_own(&self, job: JobId, partition: u32, attempt: AttemptId) -> Result<(Run, u64), (Code, String)> {
        let (path, start, length) = self
            .own
            .store
            .partition_range(job, attempt, partition)
            .map_err(|e| (Code::NotFound, format!("map attempt {attempt} of {job}: {e}")))?;
        Ok((Run::Slice { path, start, length }, length))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    use crate::store::{write_index, DATA_FILE, INDEX_FILE};

    fn own_output(dir: &Path) -> (Fetcher, MapLocation) {
        let store = MapOutputStore::open(dir.join("map-output")).unwrap();
        let attempt_dir = store.attempt_dir(JobId::new(7), 3);
        std::fs::create_dir_all(&attempt_dir).unwrap();
        std::fs::write(attempt_dir.join(DATA_FILE), b"zeroonetwo").unwrap();
        write_index(&attempt_dir.join(INDEX_FILE), &[0, 4, 7, 10]).unwrap();
        let own = OwnOutput {
            address: "10.0.0.1:7071".into(),
            store,
        };
        let location = MapLocation {
            task: 0,
            attempt: 3,
            shuffle_address: own.address.clone(),
        };
        (Fetcher::new(None, own), location)
    }

    async fn fetch_one_partition(
        fetcher: &Fetcher,
        location: MapLocation,
        dir: &Path,
    ) -> Result<(Vec<Run>, u64), FetchFailure> {
        let switch = KillSwitch::default();
        fetcher
            .fetch_partition(JobId::new(7), 1, &[location], dir, 1 << 20, &switch)
            .await
    }

    fn read(run: Run) -> Vec<u8> {
        let mut bytes = Vec::new();
        run.open().unwrap().read_to_end(&mut bytes).unwrap();
        bytes
    }

    #[tokio::test]
    async fn this_worker_s_own_map_output_is_read_in_place_and_left_there() {
        let dir = tempfile::tempdir().unwrap();
        let (fetcher, location) = own_output(dir.path());
        let (runs, bytes) = fetch_one_partition(&fetcher, location, dir.path()).await.unwrap();
        assert_eq!(bytes, 3);
        let [run] = <[Run; 1]>::try_from(runs).ok().unwrap();
        assert!(matches!(run, Run::Slice { .. }), "read in place, not copied");
        assert_eq!(read(run), b"one");
        assert!(
            fetcher.own.store.partition_range(JobId::new(7), 3, 1).is_ok(),
            "still held"
        );
    }

    #[tokio::test]
    async fn missing_own_map_output_fails_like_a_lost_one() {
        let dir = tempfile::tempdir().unwrap();
        let (fetcher, mut location) = own_output(dir.path());
        location.attempt = 4;
        let Err(failure) = fetch_one_partition(&fetcher, location, dir.path()).await else {
            panic!("a missing map output was read");
        };
        assert_eq!(failure.map_attempts, vec![4]);
    }
}
