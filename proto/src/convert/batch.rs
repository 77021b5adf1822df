//! Task batches on the wire: the batch a client sends, the results streamed back.

use weft_core::spec::DEFAULT_MAX_ATTEMPTS;
use weft_core::work::{Batch, Handler, QueueResult, QueueTask};

use super::ConvertError;
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
    Ok(Batch { tasks, max_attempts })
}

/// Results as one wire message.
pub fn results_to_wire(results: Vec<QueueResult>) -> v1::QueueTaskResults {
    v1::QueueTaskResults {
        results: results
            .into_iter()
            .map(|r| v1::QueueTaskResult {
                index: r.index,
                outcome: Some(match r.output {
                    Ok(output) => Outcome::Output(output),
                    Err(reason) => Outcome::Error(reason),
                }),
            })
            .collect(),
    }
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
        };
        let batch = batch_from_wire(wire).unwrap();
        assert_eq!(batch.max_attempts, DEFAULT_MAX_ATTEMPTS);
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
        assert_eq!(results_from_wire(results_to_wire(results.clone())), results);
    }
}
