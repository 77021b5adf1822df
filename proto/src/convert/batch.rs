//! Task batches on the wire: the batch a client sends, the results streamed back.

use std::time::Duration;

use weft_core::spec::DEFAULT_MAX_ATTEMPTS;
use weft_core::work::{Batch, BatchSettings, HandlerKind, HandlerName, QueueResult, QueueTask, Unserved};

use super::{split_by_size, ConvertError};
use crate::v1::{self, queue_task_result::Outcome};

/// A batch from the wire, every handler name checked; `max_attempts` 0 means the default.
pub fn batch_from_wire(batch: v1::TaskBatch) -> Result<Batch, ConvertError> {
    let settings = settings_from_wire(&batch);
    let tasks = tasks_from_wire(batch.tasks, 0)?;
    Ok(Batch { tasks, settings })
}

/// The settings a batch (or the first part of a streamed one) carries.
pub fn settings_from_wire(batch: &v1::TaskBatch) -> BatchSettings {
    let millis = |ms: u64| (ms > 0).then(|| Duration::from_millis(ms));
    BatchSettings {
        max_attempts: match batch.max_attempts {
            0 => DEFAULT_MAX_ATTEMPTS,
            n => n,
        },
        task_timeout: millis(batch.task_timeout_ms),
        unserved_timeout: millis(batch.unserved_timeout_ms),
    }
}

/// Tasks from the wire, the first at position `first` of its batch (for messages).
pub fn tasks_from_wire(tasks: Vec<v1::QueueTask>, first: usize) -> Result<Vec<QueueTask>, ConvertError> {
    // Tasks of a batch mostly name one handler: it is checked and allocated once.
    let mut last: Option<HandlerName> = None;
    tasks
        .into_iter()
        .enumerate()
        .map(|(i, task)| {
            let handler = match &last {
                Some(name) if name.as_str() == task.handler => name.clone(),
                _ => {
                    let name = HandlerName::new(&task.handler).map_err(|source| ConvertError::Handler {
                        index: first + i,
                        source,
                    })?;
                    last = Some(name.clone());
                    name
                }
            };
            Ok(QueueTask {
                handler,
                payload: task.payload,
                max_attempts: (task.max_attempts > 0).then_some(task.max_attempts),
                timeout: (task.timeout_ms > 0).then(|| Duration::from_millis(task.timeout_ms)),
            })
        })
        .collect()
}

/// A task as the wire carries it.
pub fn task_to_wire(task: QueueTask) -> v1::QueueTask {
    v1::QueueTask {
        handler: task.handler.to_string(),
        payload: task.payload,
        max_attempts: task.max_attempts.unwrap_or(0),
        timeout_ms: task.timeout.map_or(0, millis_at_least_one),
        id: String::new(),
    }
}

fn millis_at_least_one(d: Duration) -> u64 {
    d.as_millis().max(1) as u64
}

/// A batch's tasks as the parts `RunTaskStream` takes, each of at most `budget` bytes; the
/// first carries the batch's settings.
pub fn batch_parts(tasks: Vec<v1::QueueTask>, settings: &BatchSettings, budget: usize) -> Vec<v1::TaskBatch> {
    split_by_size(tasks, budget)
        .into_iter()
        .map(|tasks| batch_part(tasks, settings))
        .collect()
}

/// The least a part of a streamed batch is padded to, in bytes: h2 (the coordinator's
/// HTTP/2 server) counts each DATA frame under 256 bytes against a budget that only larger
/// frames and reads restore, and closes the connection once it is spent. Parts of a task
/// or two, sent as a slow producer gives them while the coordinator reads no further
/// (its window of running tasks is full), would spend it after a few thousand.
pub const MIN_PART_BYTES: usize = 256;

/// One part of a streamed batch, carrying the batch's settings (padded to
/// [`MIN_PART_BYTES`]).
pub fn batch_part(tasks: Vec<v1::QueueTask>, settings: &BatchSettings) -> v1::TaskBatch {
    let mut part = v1::TaskBatch {
        tasks,
        max_attempts: settings.max_attempts,
        task_timeout_ms: settings.task_timeout.map_or(0, millis_at_least_one),
        unserved_timeout_ms: settings.unserved_timeout.map_or(0, millis_at_least_one),
        idempotency_key: String::new(),
        padding: Vec::new(),
    };
    pad(&mut part);
    part
}

/// Pads `part` to at least [`MIN_PART_BYTES`] encoded (again after a change to it).
pub fn pad(part: &mut v1::TaskBatch) {
    part.padding.clear();
    let len = prost::Message::encoded_len(part);
    if len < MIN_PART_BYTES {
        // The field's tag and length take 3 bytes at most here.
        part.padding = vec![0; MIN_PART_BYTES - len];
    }
}

/// Handlers a worker serves, for the wire.
pub fn handlers_to_wire(handlers: &[(HandlerName, HandlerKind)]) -> Vec<v1::HandlerInfo> {
    handlers
        .iter()
        .map(|(name, kind)| v1::HandlerInfo {
            name: name.to_string(),
            kind: kind.name().to_string(),
        })
        .collect()
}

/// Handlers from the wire; none means a worker older than handler names, which serves the
/// built-in ones.
pub fn handlers_from_wire(handlers: Vec<v1::HandlerInfo>) -> Result<Vec<(HandlerName, HandlerKind)>, ConvertError> {
    if handlers.is_empty() {
        return Ok(weft_core::work::builtin::all());
    }
    handlers
        .into_iter()
        .enumerate()
        .map(|(index, h)| {
            let name = HandlerName::new(&h.name).map_err(|source| ConvertError::Handler { index, source })?;
            let kind = HandlerKind::from_name(&h.kind).ok_or(ConvertError::UnknownName {
                what: "handler kind",
                name: h.kind,
            })?;
            Ok((name, kind))
        })
        .collect()
}

/// A batch's notice that some of its tasks wait for handlers no worker serves.
pub fn unserved_to_wire(unserved: &Unserved) -> v1::QueueTaskResults {
    let names = |names: &[HandlerName]| names.iter().map(ToString::to_string).collect();
    v1::QueueTaskResults {
        results: Vec::new(),
        unserved_handlers: names(&unserved.waiting),
        served_handlers: names(&unserved.served),
    }
}

/// The notice a results message carries, if any.
pub fn unserved_from_wire(message: &v1::QueueTaskResults) -> Option<Unserved> {
    if message.unserved_handlers.is_empty() {
        return None;
    }
    let names = |names: &[String]| names.iter().filter_map(|n| HandlerName::new(n).ok()).collect();
    Some(Unserved {
        waiting: names(&message.unserved_handlers),
        served: names(&message.served_handlers),
    })
}

/// Results as wire messages of at most `budget` bytes each.
pub fn results_to_wire(results: Vec<QueueResult>, budget: usize) -> Vec<v1::QueueTaskResults> {
    positioned_results_to_wire(results.into_iter().map(|r| (0, r, None)), budget)
}

/// A durable batch's stored results, each at its position and with its task's id (if it
/// was given one), as messages of at most `budget` bytes.
pub fn positioned_results_to_wire(
    results: impl IntoIterator<Item = (u64, QueueResult, Option<String>)>,
    budget: usize,
) -> Vec<v1::QueueTaskResults> {
    let wire = results
        .into_iter()
        .map(|(position, r, task_id)| v1::QueueTaskResult {
            index: r.index,
            outcome: Some(match r.output {
                Ok(output) => Outcome::Output(output),
                Err(reason) => Outcome::Error(reason),
            }),
            position,
            task_id: task_id.unwrap_or_default(),
        })
        .collect();
    split_by_size(wire, budget)
        .into_iter()
        .map(|results| v1::QueueTaskResults {
            results,
            ..Default::default()
        })
        .collect()
}

/// Results from a wire message.
pub fn results_from_wire(message: v1::QueueTaskResults) -> Vec<QueueResult> {
    message
        .results
        .into_iter()
        .map(|r| QueueResult {
            index: r.index,
            output: match r.outcome {
                Some(Outcome::Output(output)) => Ok(output),
                Some(Outcome::Error(reason)) => Err(reason),
                None => Err("empty result".to_string()),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_checked_and_results_survive_the_wire() {
        let wire = v1::TaskBatch {
            tasks: vec![
                v1::QueueTask {
                    handler: "echo".into(),
                    payload: b"x".to_vec(),
                    ..Default::default()
                },
                v1::QueueTask {
                    handler: "resize".into(),
                    max_attempts: 2,
                    timeout_ms: 30,
                    ..Default::default()
                },
            ],
            task_timeout_ms: 1500,
            ..Default::default()
        };
        let batch = batch_from_wire(wire).unwrap();
        assert_eq!(batch.settings.max_attempts, DEFAULT_MAX_ATTEMPTS);
        assert_eq!(batch.settings.task_timeout, Some(Duration::from_millis(1500)));
        assert_eq!(batch.settings.unserved_timeout, None);
        assert_eq!(batch.tasks[0].handler.as_str(), "echo");
        assert_eq!((batch.tasks[0].max_attempts, batch.tasks[0].timeout), (None, None));
        assert_eq!(batch.tasks[1].max_attempts, Some(2));
        assert_eq!(task_to_wire(batch.tasks[1].clone()).timeout_ms, 30);
        let bad = v1::TaskBatch {
            tasks: vec![Default::default()],
            max_attempts: 1,
            ..Default::default()
        };
        let err = batch_from_wire(bad).unwrap_err().to_string();
        assert!(err.starts_with("task 0:"), "{err}");
        let results = vec![
            QueueResult {
                index: 1,
                output: Ok(b"out".to_vec()),
            },
            QueueResult {
                index: 0,
                output: Err("boom".into()),
            },
        ];
        let back: Vec<QueueResult> = results_to_wire(results.clone(), 1 << 20)
            .into_iter()
            .flat_map(results_from_wire)
            .collect();
        assert_eq!(back, results);
    }

    #[test]
    fn large_results_and_batches_go_in_several_messages_under_the_budget() {
        let results: Vec<QueueResult> = (0..10)
            .map(|index| QueueResult {
                index,
                output: Ok(vec![7; 1000]),
            })
            .collect();
        let messages = results_to_wire(results, 2500);
        assert_eq!(messages.len(), 5, "two results of ~1 KB per 2.5 KB message");
        let big = results_to_wire(
            vec![QueueResult {
                index: 0,
                output: Ok(vec![0; 5000]),
            }],
            2500,
        );
        assert_eq!(big.len(), 1, "an item over the budget goes alone");
        let tasks: Vec<v1::QueueTask> = (0..100)
            .map(|_| v1::QueueTask {
                handler: "noop".into(),
                ..Default::default()
            })
            .collect();
        let settings = BatchSettings {
            max_attempts: 3,
            task_timeout: Some(Duration::from_secs(2)),
            unserved_timeout: None,
        };
        let parts = batch_parts(tasks, &settings, 300);
        assert!(parts.len() > 1 && parts.iter().all(|p| p.max_attempts == 3 && p.task_timeout_ms == 2000));
        assert_eq!(parts.iter().map(|p| p.tasks.len()).sum::<usize>(), 100);
        assert_eq!(
            batch_parts(vec![], &settings, 300).len(),
            1,
            "an empty batch is one empty part"
        );
    }
}
