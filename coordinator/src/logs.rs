//! Attempts' logs, for `weft logs` and the dashboard: which attempts a request names, and
//! where their logs are read. A running attempt's log is read from its worker (its
//! `LogService`, over TLS with the coordinator's own certificate when the cluster has one);
//! an ended one's from the log store (`--log-store`), where workers copy logs as attempts
//! end, so that it outlives its worker. Either place stands in when the other has nothing.

use std::time::Duration;

use tonic::transport::Endpoint;
use weft_auth::tls::{TlsMaterial, WorkerChannels};
use weft_core::status::{AttemptInfo, JobStatus};
use weft_core::work::{TaskId, TaskKind};
use weft_proto::convert::MAX_MESSAGE_BYTES;
use weft_proto::v1::{self, log_service_client::LogServiceClient};
use weft_storage::logs::LogStore;
use weft_storage::StorageError;

/// Reads logs from workers and the log store.
pub struct LogReader {
    channels: WorkerChannels,
    store: Option<LogStore>,
}

impl LogReader {
    /// A reader speaking TLS with `tls` (the coordinator's material), or plaintext, to
    /// workers, and reading `store` if there is one.
    pub fn new(tls: Option<TlsMaterial>, store: Option<LogStore>) -> Self {
        let tune = |endpoint: Endpoint| {
            endpoint
                .connect_timeout(Duration::from_secs(3))
                .timeout(Duration::from_secs(30))
        };
        Self {
            channels: WorkerChannels::new(tls, tune),
            store,
        }
    }

    /// The log of `attempt` (of `task`): from the log store first once the attempt has
    /// ended, from its worker first while it runs; or why neither has it.
    pub async fn read(&self, attempt: &AttemptInfo, task: TaskId) -> Result<Vec<u8>, String> {
        let Some(store) = &self.store else {
            return self.read_on_worker(&attempt.worker, task, attempt.id).await;
        };
        let kept = || {
            let (store, id) = (store.clone(), attempt.id);
            let named = store.to_string();
            async move {
                tokio::task::spawn_blocking(move || store.read(task, id))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| match e {
                        StorageError::NotFound(_) => format!("not in the log store {named}"),
                        e => format!("the log store: {e}"),
                    })
            }
        };
        let (first, second) = if attempt.outcome.is_some() {
            match kept().await {
                Ok(data) => return Ok(data),
                Err(why) => (why, self.read_on_worker(&attempt.worker, task, attempt.id).await),
            }
        } else {
            match self.read_on_worker(&attempt.worker, task, attempt.id).await {
                Ok(data) => return Ok(data),
                Err(why) => (why, kept().await),
            }
        };
        second.map_err(|also| format!("{first}; {also}"))
    }

    /// The log of `attempt` (of `task`) on `worker`, or why it cannot be read.
    async fn read_on_worker(&self, worker: &str, task: TaskId, attempt: u64) -> Result<Vec<u8>, String> {
        if worker.is_empty() {
            return Err("the attempt never reached a worker".into());
        }
        let channel = self.channels.get(worker).map_err(|e| e.to_string())?;
        let mut client = LogServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES);
        let request = v1::LogRequest {
            task_id: task.to_string(),
            attempt_id: attempt,
        };
        let tls = self.channels.tls();
        let unreachable = |e: tonic::Status| {
            if e.code() == tonic::Code::Unavailable {
                self.channels.forget(worker);
                let hint = if tls {
                    " (if it is up: a coordinator certificate made by an older `weft certs` cannot dial workers; \
                     remove coordinator.pem and coordinator.key and run `weft certs` again)"
                } else {
                    ""
                };
                format!(
                    "worker {worker} cannot be reached (it may have left): {}{hint}",
                    e.message()
                )
            } else {
                format!("worker {worker}: {}", e.message())
            }
        };
        let mut chunks = client.read_log(request).await.map_err(unreachable)?.into_inner();
        let mut data = Vec::new();
        while let Some(chunk) = chunks.message().await.map_err(unreachable)? {
            data.extend_from_slice(&chunk.data);
        }
        Ok(data)
    }
}

/// The task of a job's attempt.
pub fn task_of(status: &JobStatus, attempt: &AttemptInfo) -> TaskId {
    TaskId::of_job(status.id, attempt.kind, attempt.task_index)
}

/// The attempts `task` and `number` name in `status`: `task` is empty (every task), `m3`,
/// `r0`, or a task id of the job; `number` 0 is every attempt of it.
pub fn select<'s>(status: &'s JobStatus, task: &str, number: u32) -> Result<Vec<&'s AttemptInfo>, String> {
    let wanted: Option<(TaskKind, u32)> = match task {
        "" => None,
        _ => Some(parse_task(status, task)?),
    };
    let chosen: Vec<&AttemptInfo> = status
        .attempts
        .iter()
        .filter(|a| wanted.is_none_or(|(kind, index)| a.kind == kind && a.task_index == index))
        .filter(|a| number == 0 || a.number == number)
        .collect();
    if chosen.is_empty() && (wanted.is_some() || number != 0) {
        return Err(format!(
            "{} has no attempt {} of task {task:?}",
            status.id,
            if number == 0 {
                "at all".to_string()
            } else {
                number.to_string()
            }
        ));
    }
    Ok(chosen)
}

fn parse_task(status: &JobStatus, task: &str) -> Result<(TaskKind, u32), String> {
    let bad = || {
        format!(
            "{task:?} names no task: give m3, r0 or a task id like {}-m-00003",
            status.id
        )
    };
    if let Ok(id) = task.parse::<TaskId>() {
        return match id.job() {
            Some(job) if job == status.id => Ok((id.kind(), id.index())),
            _ => Err(format!("{task} is not a task of {}", status.id)),
        };
    }
    let (kind, index) = task.split_at(1.min(task.len()));
    let kind = match kind {
        "m" => TaskKind::Map,
        "r" => TaskKind::Reduce,
        _ => return Err(bad()),
    };
    Ok((kind, index.parse().map_err(|_| bad())?))
}

#[cfg(test)]
mod tests {
    use weft_core::location::Location;
    use weft_core::work::JobId;

    use super::*;

    fn status() -> JobStatus {
        let attempt = |id, kind, task_index, number| AttemptInfo {
            id,
            kind,
            task_index,
            number,
            worker: "w:1".into(),
            outcome: None,
            queued: false,
            reason: String::new(),
            started_ms: 0,
            ended_ms: 0,
        };
        JobStatus {
            id: JobId::new(5),
            name: "j".into(),
            owner: "local".into(),
            state: weft_core::status::JobState::Running,
            phase: weft_core::status::Phase::Map,
            maps_total: 2,
            maps_done: 0,
            reduces_total: 1,
            reduces_done: 0,
            failed_attempts: 0,
            error: None,
            output: Location::local("/o"),
            priority: 0,
            after: vec![],
            created_ms: 0,
            ended_ms: None,
            counters: Default::default(),
            attempts: vec![
                attempt(1, TaskKind::Map, 0, 1),
                attempt(2, TaskKind::Map, 1, 1),
                attempt(3, TaskKind::Map, 1, 2),
                attempt(4, TaskKind::Reduce, 0, 1),
            ],
            running_attempts: 0,
            whole_files: 0,
        }
    }

    #[test]
    fn a_request_names_every_attempt_a_task_s_or_one() {
        let s = status();
        let ids = |task: &str, number| select(&s, task, number).map(|a| a.iter().map(|a| a.id).collect::<Vec<_>>());
        assert_eq!(ids("", 0), Ok(vec![1, 2, 3, 4]));
        assert_eq!(ids("m1", 0), Ok(vec![2, 3]));
        assert_eq!(ids("job-000005-m-00001", 2), Ok(vec![3]));
        assert_eq!(ids("r0", 0), Ok(vec![4]));
        assert!(ids("m7", 0).is_err());
        assert!(ids("m1", 9).is_err());
        assert!(ids("x1", 0).is_err());
        assert!(ids("job-000006-m-00001", 0)
            .unwrap_err()
            .contains("not a task of job-000005"));
        assert_eq!(task_of(&s, &s.attempts[3]), TaskId::Reduce(JobId::new(5), 0));
    }
}
