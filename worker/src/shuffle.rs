//! The services a worker offers its peers, a gRPC edge: the shuffle service, where reducers
//! fetch one partition of one map attempt's output as a stream of chunks (never the whole
//! partition in one message), and the log service, where the coordinator reads an attempt's
//! log.

use std::pin::Pin;

use futures::Stream;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use weft_core::work::{JobId, TaskId};
use weft_proto::v1::{self, log_service_server::LogService, shuffle_service_server::ShuffleService};

use crate::logs::LogDir;
use crate::store::MapOutputStore;

/// Bytes per chunk.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Serves [`ShuffleService`] from a [`MapOutputStore`].
pub struct ShuffleApi {
    /// The map outputs.
    pub store: MapOutputStore,
    /// Counts the bytes sent.
    pub served: prometheus_client::metrics::counter::Counter,
}

#[tonic::async_trait]
impl ShuffleService for ShuffleApi {
    type FetchStream = Pin<Box<dyn Stream<Item = Result<v1::Chunk, Status>> + Send>>;

    async fn fetch(&self, request: Request<v1::FetchRequest>) -> Result<Response<Self::FetchStream>, Status> {
        let r = request.into_inner();
        let not_found = |e: &dyn std::fmt::Display| {
            Status::not_found(format!("map attempt {} of {}: {e}", r.map_attempt, r.job_id))
        };
        let job: JobId = r.job_id.parse().map_err(|e| not_found(&e))?;
        let (path, start, length) = self
            .store
            .partition_range(job, r.map_attempt, r.partition)
            .map_err(|e| not_found(&e))?;
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| Status::not_found(format!("{}: {e}", path.display())))?;
        let (chunks, receiver) = mpsc::channel(4);
        let served = self.served.clone();
        tokio::spawn(async move {
            let send = async {
                file.seek(std::io::SeekFrom::Start(start)).await?;
                let mut left = length as usize;
                while left > 0 {
                    let mut data = vec![0u8; left.min(CHUNK_BYTES)];
                    file.read_exact(&mut data).await?;
                    left -= data.len();
                    served.inc_by(data.len() as u64);
                    if chunks.send(Ok(v1::Chunk { data })).await.is_err() {
                        break; // the reducer went away
                    }
                }
                Ok::<(), std::io::Error>(())
            };
            if let Err(e) = send.await {
                let _ = chunks
                    .send(Err(Status::internal(format!("reading map output: {e}"))))
                    .await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}

/// Serves [`LogService`] from a [`LogDir`]: the coordinator reads attempts' logs.
pub struct LogApi {
    /// The logs.
    pub logs: LogDir,
}

#[tonic::async_trait]
impl LogService for LogApi {
    type ReadLogStream = Pin<Box<dyn Stream<Item = Result<v1::Chunk, Status>> + Send>>;

    async fn read_log(&self, request: Request<v1::LogRequest>) -> Result<Response<Self::ReadLogStream>, Status> {
        let r = request.into_inner();
        let task: TaskId = r
            .task_id
            .parse()
            .map_err(|e: weft_core::work::BadId| Status::invalid_argument(e.to_string()))?;
        let (logs, attempt) = (self.logs.clone(), r.attempt_id);
        let data = tokio::task::spawn_blocking(move || logs.read(task, attempt))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| Status::not_found(format!("no log of attempt {attempt} of {task} here: {e}")))?;
        let chunks: Vec<Result<v1::Chunk, Status>> = data
            .chunks(CHUNK_BYTES)
            .map(|c| Ok(v1::Chunk { data: c.to_vec() }))
            .collect();
        Ok(Response::new(Box::pin(futures::stream::iter(chunks))))
    }
}
