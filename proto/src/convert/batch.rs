//! Task batches on the wire: the batch a client sends, the results streamed back.

use std::time::Duration;

use weft_core::spec::DEFAULT_MAX_ATTEMPTS;
use weft_core::work::{Batch, Handler, QueueResult, QueueTask};

use super::{split_by_size, ConvertError};
use crate::v1::{self, queue_task_result::Outcome};

/// A batch from the wire, every handler checked; `max_attempts` 0 means the default.
pub fn batch_from_wire(batch: v1::TaskBatch) -> Result<Batch, ConvertError> {
    let tasks = batch
        .tasks
        .into_iter()
        .enumerate()
        .map(|(index, task)| {
            let handler =
                Handler::from_name(&task.handler).map_err(|source| ConvertError::Handler { index, source })?;
            Ok(QueueTask {
                handler,
                payload: task.payload,
            })
        })
        .collect::<Result<_, ConvertError>>()?;
    let max_attempts = match batch.max_attempts {
        0 => DEFAULT_MAX_ATTEMPTS,
        n => n,
    };
    let task_timeout = (batch.task_timeout_ms > 0).then(|| Duration::from_millis(batch.task_timeout_ms));
    Ok(Batch {
        tasks,
        max_attempts,
        task_timeout,
    })
}

/// A batch's tasks as the parts `RunTaskStream` takes, each of at most `budget` bytes; the
/// first carries the batch's settings.
pub fn batch_parts(
    tasks: Vec<v1::QueueTask>,
    max_attempts: u32,
    task_timeout: Option<Duration>,
    budget: usize,
) -> Vec<v1::TaskBatch> {
    let task_timeout_ms = task_timeout.map_or(0, |t| t.as_millis().max(1) as u64);
    split_by_size(tasks, budget)
        .into_iter()
        .map(|tasks| v1::TaskBatch {
            tasks,
            max_attempts,
            task_timeout_ms,
        })
        .collect()
}

/// Results as wire messages of at most `budget` bytes each.
pub fn results_to_wire(results: Vec<QueueResult>, budget: usize) -> Vec<v1::QueueTaskResults> {
    let wire = results
        .into_iter()
        .map(|r| v1::QueueTaskResult {
            index: r.index,
            outcome: Some(match r.output {
                Ok(output) => Outcome::Output(output),
                Err(reason) => Outcome::Error(reason),
            }),
        })
        .collect();
    split_by_size(wire, budget)
        .into_iter()
        .map(|results| v1::QueueTaskResults { results })
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
            tasks: vec![v1::QueueTask {
                handler: "echo".into(),
                payload: b"x".to_vec(),
            }],
            max_attempts: 0,
            task_timeout_ms: 1500,
        };
        let batch = batch_from_wire(wire).unwrap();
        assert_eq!(batch.max_attempts, DEFAULT_MAX_ATTEMPTS);
        assert_eq!(batch.task_timeout, Some(Duration::from_millis(1500)));
        assert_eq!(batch.tasks[0].handler, Handler::Echo);
        let unknown = v1::TaskBatch {
            tasks: vec![
                Default::default(),
                v1::QueueTask {
                    handler: "teleport".into(),
                    payload: vec![],
                },
            ],
            max_attempts: 1,
            task_timeout_ms: 0,
        };
        let err = batch_from_wire(unknown).unwrap_err().to_string();
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
                payload: vec![],
            })
            .collect();
        let parts = batch_parts(tasks, 3, Some(Duration::from_secs(2)), 300);
        assert!(parts.len() > 1 && parts.iter().all(|p| p.max_attempts == 3 && p.task_timeout_ms == 2000));
        assert_eq!(parts.iter().map(|p| p.tasks.len()).sum::<usize>(), 100);
        assert_eq!(
            batch_parts(vec![], 1, None, 300).len(),
            1,
            "an empty batch is one empty part"
        );
    }
}
