//! The worker session on the wire: registration, credit, reports and drain one way;
//! welcome, assignments, cancellations and forgotten jobs the other.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use weft_core::location::{BadUrl, Location};
use weft_core::messages::{CarriedAttempt, FromWorker, HeldOutput, Registration, ToWorker};

use super::batch::{handlers_from_wire, handlers_to_wire};
use weft_core::outcome::{AttemptOutcome, Report, Success};
use weft_core::split::Split;
use weft_core::work::{
    Assignment, BatchId, HandlerName, MapLocation, MapWork, PartDestination, QueueTask, ReduceWork, TaskId, TaskKind,
    Work,
};

use super::{program_from_wire, program_to_wire, split_by_size, ConvertError};
use crate::v1::{self, assignment, attempt_report::Outcome, coordinator_message, worker_message};

/// A location as text and, for a local path that is not UTF-8, its bytes (then its text
/// on the wire is empty).
fn location_to_wire(location: Location) -> (String, Vec<u8>) {
    match location {
        Location::Local(path) => match path.into_os_string().into_string() {
            Ok(text) => (text, Vec::new()),
            Err(raw) => (String::new(), raw.into_vec()),
        },
        Location::Object(url) => (url.to_string(), Vec::new()),
    }
}

/// The location a `string` field and its `bytes` twin carry.
fn location_from_wire(text: String, bytes: Vec<u8>) -> Result<Location, BadUrl> {
    if bytes.is_empty() {
        Location::parse(&text)
    } else {
        Ok(Location::Local(PathBuf::from(OsString::from_vec(bytes))))
    }
}

fn split_to_wire(split: Split) -> (String, Vec<u8>, u64, u64) {
    let (file, file_bytes) = location_to_wire(split.file);
    (file, file_bytes, split.start, split.length)
}

/// A part's destination as its `output_file` and `upload_id` fields.
fn part_to_wire(part: Option<PartDestination>) -> (String, String) {
    match part {
        None => (String::new(), String::new()),
        Some(PartDestination::File(path)) => (path.to_string_lossy().into_owned(), String::new()),
        Some(PartDestination::Upload { url, id }) => (url.to_string(), id),
        Some(PartDestination::NotBegun(url)) => (url.to_string(), String::new()),
    }
}

/// The destination `output_file` and `upload_id` name; an object without an upload is one
/// the coordinator could not begin.
fn part_from_wire(output_file: String, upload_id: String) -> Result<Option<PartDestination>, BadUrl> {
    if output_file.is_empty() {
        return Ok(None);
    }
    Ok(Some(match Location::parse(&output_file)? {
        Location::Local(path) => PartDestination::File(path),
        Location::Object(url) if upload_id.is_empty() => PartDestination::NotBegun(url),
        Location::Object(url) => PartDestination::Upload { url, id: upload_id },
    }))
}

/// The wire name of a task's job or batch.
fn owner_name(task: TaskId) -> String {
    match task {
        TaskId::Map(job, _) | TaskId::Reduce(job, _) => job.to_string(),
        TaskId::Queue(batch, _) => batch.to_string(),
    }
}

/// Whether two tasks are of the same job or batch.
fn same_owner(a: TaskId, b: TaskId) -> bool {
    match (a, b) {
        (TaskId::Queue(x, _), TaskId::Queue(y, _)) => x == y,
        _ => a.job().is_some() && a.job() == b.job(),
    }
}

/// Assignments on the wire, their owners named once per run of the same owner (a message
/// of queue tasks is mostly one batch's; formatting its id for each was a cost per task).
fn assignments_to_wire(assignments: Vec<Assignment>) -> Vec<v1::Assignment> {
    let mut named: Option<(TaskId, String)> = None;
    assignments
        .into_iter()
        .map(|a| {
            let owner = match &named {
                Some((task, name)) if same_owner(*task, a.task) => name.clone(),
                _ => owner_name(a.task),
            };
            named = Some((a.task, owner.clone()));
            assignment_to_wire(a, owner)
        })
        .collect()
}

/// `a` on the wire, of the job or batch named `owner`.
fn assignment_to_wire(a: Assignment, owner: String) -> v1::Assignment {
    let work = match a.work {
        Work::Map(m) => {
            let (file, file_bytes, start, length) = split_to_wire(m.split);
            let (output_file, upload_id) = part_to_wire(m.part);
            assignment::Work::Map(v1::MapWork {
                program: Some(program_to_wire(&m.program)),
                file_bytes,
                file,
                start,
                length,
                more: m
                    .more
                    .into_iter()
                    .map(|piece| {
                        let (file, file_bytes, start, length) = split_to_wire(piece);
                        v1::FilePiece {
                            file_bytes,
                            file,
                            start,
                            length,
                        }
                    })
                    .collect(),
                reduce_tasks: m.reduce_tasks,
                output_file,
                upload_id,
            })
        }
        Work::Reduce(r) => {
            let (output_file, upload_id) = part_to_wire(Some(r.part));
            assignment::Work::Reduce(v1::ReduceWork {
                program: Some(program_to_wire(&r.program)),
                partition: a.task.index(),
                maps: r
                    .maps
                    .into_iter()
                    .map(|m| v1::MapLocation {
                        map_task: m.task,
                        map_attempt: m.attempt,
                        shuffle_address: m.shuffle_address,
                    })
                    .collect(),
                output_file,
                upload_id,
            })
        }
        Work::Queue(q) => assignment::Work::Queue(v1::QueueTask {
            handler: q.handler.to_string(),
            payload: q.payload,
            ..Default::default()
        }),
    };
    v1::Assignment {
        attempt_id: a.attempt,
        job_id: owner,
        task_index: a.task.index(),
        attempt_number: a.number,
        work: Some(work),
        timeout_ms: a.timeout.map_or(0, |t| t.as_millis().max(1) as u64),
    }
}

impl TryFrom<v1::Assignment> for Assignment {
    type Error = ConvertError;

    fn try_from(a: v1::Assignment) -> Result<Self, ConvertError> {
        let program = |p: Option<v1::Program>| -> Result<_, ConvertError> {
            Ok(Arc::new(program_from_wire(p.ok_or(ConvertError::Missing("program"))?)?))
        };
        let (task, work) = match a.work.ok_or(ConvertError::Missing("work"))? {
            assignment::Work::Map(m) => {
                let work = MapWork {
                    program: program(m.program)?,
                    split: Split {
                        file: location_from_wire(m.file, m.file_bytes)?,
                        start: m.start,
                        length: m.length,
                    },
                    more: m
                        .more
                        .into_iter()
                        .map(|piece| {
                            Ok(Split {
                                file: location_from_wire(piece.file, piece.file_bytes)?,
                                start: piece.start,
                                length: piece.length,
                            })
                        })
                        .collect::<Result<_, BadUrl>>()?,
                    reduce_tasks: m.reduce_tasks,
                    part: part_from_wire(m.output_file, m.upload_id)?,
                };
                (TaskId::Map(a.job_id.parse()?, a.task_index), Work::Map(work))
            }
            assignment::Work::Reduce(r) => {
                let maps = r
                    .maps
                    .into_iter()
                    .map(|m| MapLocation {
                        task: m.map_task,
                        attempt: m.map_attempt,
                        shuffle_address: m.shuffle_address,
                    })
                    .collect();
                let work = ReduceWork {
                    program: program(r.program)?,
                    maps,
                    part: part_from_wire(r.output_file, r.upload_id)?.ok_or(ConvertError::Missing("output_file"))?,
                };
                (TaskId::Reduce(a.job_id.parse()?, r.partition), Work::Reduce(work))
            }
            assignment::Work::Queue(q) => {
                let handler = HandlerName::new(&q.handler).map_err(|source| ConvertError::Handler {
                    index: a.task_index as usize,
                    source,
                })?;
                // Coordinators before batch ids sent none.
                let batch = match a.job_id.as_str() {
                    "" => BatchId::new(0),
                    id => id.parse()?,
                };
                let task = QueueTask::new(handler, q.payload);
                (TaskId::Queue(batch, a.task_index), Work::Queue(task))
            }
        };
        Ok(Assignment {
            attempt: a.attempt_id,
            number: a.attempt_number,
            task,
            work,
            timeout: (a.timeout_ms > 0).then(|| Duration::from_millis(a.timeout_ms)),
        })
    }
}

impl From<Report> for v1::AttemptReport {
    fn from(report: Report) -> Self {
        let outcome = match report.outcome {
            AttemptOutcome::Succeeded(Success::MapOutput {
                partition_bytes,
                records,
            }) => Outcome::MapDone(v1::MapDone {
                output_file: String::new(),
                partition_bytes,
                output_records: records,
            }),
            AttemptOutcome::Succeeded(Success::Part { records, upload_tags }) => Outcome::ReduceDone(v1::ReduceDone {
                output_file: String::new(),
                output_records: records,
                upload_tags,
            }),
            AttemptOutcome::Succeeded(Success::Queue(output)) => Outcome::QueueOutput(output),
            AttemptOutcome::Failed(reason) | AttemptOutcome::Lost(reason) => Outcome::Failed(reason),
            AttemptOutcome::TimedOut(after) => Outcome::TimedOut(v1::TimedOut {
                after_ms: after.as_millis() as u64,
            }),
            AttemptOutcome::FetchFailed { map_attempts, reason } => {
                Outcome::FetchFailed(v1::FetchFailed { map_attempts, reason })
            }
            AttemptOutcome::HandedBack | AttemptOutcome::Cancelled => Outcome::HandedBack(v1::HandedBack {}),
        };
        v1::AttemptReport {
            attempt_id: report.attempt,
            counters: report.counters.into_iter().collect(),
            outcome: Some(outcome),
        }
    }
}

impl From<v1::AttemptReport> for Report {
    fn from(report: v1::AttemptReport) -> Self {
        let outcome = match report.outcome {
            // Older workers name a map-only job's part file in MapDone.
            Some(Outcome::MapDone(done)) if !done.output_file.is_empty() => AttemptOutcome::Succeeded(Success::Part {
                records: done.output_records,
                upload_tags: Vec::new(),
            }),
            Some(Outcome::MapDone(done)) => AttemptOutcome::Succeeded(Success::MapOutput {
                partition_bytes: done.partition_bytes,
                records: done.output_records,
            }),
            Some(Outcome::ReduceDone(done)) => AttemptOutcome::Succeeded(Success::Part {
                records: done.output_records,
                upload_tags: done.upload_tags,
            }),
            Some(Outcome::QueueOutput(output)) => AttemptOutcome::Succeeded(Success::Queue(output)),
            Some(Outcome::Failed(reason)) => AttemptOutcome::Failed(reason),
            Some(Outcome::TimedOut(t)) => AttemptOutcome::TimedOut(Duration::from_millis(t.after_ms)),
            Some(Outcome::FetchFailed(f)) => AttemptOutcome::FetchFailed {
                map_attempts: f.map_attempts,
                reason: f.reason,
            },
            Some(Outcome::HandedBack(_)) => AttemptOutcome::HandedBack,
            None => AttemptOutcome::Failed("the worker sent an empty report".to_string()),
        };
        Report {
            attempt: report.attempt_id,
            outcome,
            counters: report.counters.into_iter().collect(),
        }
    }
}

impl From<FromWorker> for v1::WorkerMessage {
    fn from(message: FromWorker) -> Self {
        use worker_message::Kind;
        let kind = match message {
            FromWorker::Register(r) => Kind::Register(v1::Register {
                shuffle_address: r.shuffle_address,
                slots: r.slots,
                hostname: r.hostname,
                held: r
                    .held
                    .into_iter()
                    .map(|h| v1::HeldOutput {
                        job_id: h.job.to_string(),
                        map_attempt: h.attempt,
                        map_task: h.task,
                    })
                    .collect(),
                reports_progress: r.reports_progress,
                handlers: handlers_to_wire(&r.handlers),
                carried: r
                    .carried
                    .into_iter()
                    .map(|c| v1::CarriedAttempt {
                        job_id: c.job.to_string(),
                        attempt: c.attempt,
                        kind: c.kind.name().to_string(),
                        index: c.index,
                        number: c.number,
                    })
                    .collect(),
                version: r.version,
            }),
            FromWorker::Credit(slots) => Kind::Credit(slots),
            FromWorker::Heartbeat {
                progressing,
                served_bytes,
            } => Kind::Heartbeat(v1::Heartbeat {
                progressing,
                served_bytes,
            }),
            FromWorker::Reports { reports, credit } => Kind::Reports(v1::Reports {
                reports: reports.into_iter().map(Into::into).collect(),
                credit,
            }),
            FromWorker::Drain => Kind::Drain(v1::Drain {}),
        };
        v1::WorkerMessage { kind: Some(kind) }
    }
}

impl TryFrom<v1::WorkerMessage> for FromWorker {
    type Error = ConvertError;

    fn try_from(message: v1::WorkerMessage) -> Result<Self, ConvertError> {
        use worker_message::Kind;
        Ok(match message.kind.ok_or(ConvertError::Missing("kind"))? {
            Kind::Register(r) => {
                let held = r
                    .held
                    .into_iter()
                    .map(|h| {
                        Ok(HeldOutput {
                            job: h.job_id.parse()?,
                            task: h.map_task,
                            attempt: h.map_attempt,
                        })
                    })
                    .collect::<Result<_, ConvertError>>()?;
                let carried = r
                    .carried
                    .into_iter()
                    .map(|c| {
                        Ok(CarriedAttempt {
                            job: c.job_id.parse()?,
                            attempt: c.attempt,
                            kind: match TaskKind::from_name(&c.kind) {
                                Some(kind @ (TaskKind::Map | TaskKind::Reduce)) => kind,
                                _ => {
                                    return Err(ConvertError::UnknownName {
                                        what: "carried task kind",
                                        name: c.kind,
                                    })
                                }
                            },
                            index: c.index,
                            number: c.number,
                        })
                    })
                    .collect::<Result<_, ConvertError>>()?;
                FromWorker::Register(Registration {
                    shuffle_address: r.shuffle_address,
                    slots: r.slots,
                    hostname: r.hostname,
                    held,
                    reports_progress: r.reports_progress,
                    handlers: handlers_from_wire(r.handlers)?,
                    carried,
                    version: r.version,
                })
            }
            Kind::Credit(slots) => FromWorker::Credit(slots),
            Kind::Heartbeat(h) => FromWorker::Heartbeat {
                progressing: h.progressing,
                served_bytes: h.served_bytes,
            },
            Kind::Reports(r) => FromWorker::Reports {
                reports: r.reports.into_iter().map(Into::into).collect(),
                credit: r.credit,
            },
            Kind::Drain(_) => FromWorker::Drain,
        })
    }
}

impl From<ToWorker> for v1::CoordinatorMessage {
    fn from(message: ToWorker) -> Self {
        use coordinator_message::Kind;
        let kind = match message {
            ToWorker::Welcome {
                worker,
                heartbeat_interval,
            } => Kind::Welcome(v1::Welcome {
                worker_id: worker,
                heartbeat_interval_ms: heartbeat_interval.as_millis() as u64,
            }),
            ToWorker::Assign(assignments) => Kind::Assignments(v1::Assignments {
                assignments: assignments_to_wire(assignments),
            }),
            ToWorker::Cancel(attempt_ids) => Kind::Cancel(v1::AttemptIds { attempt_ids }),
            ToWorker::Forget(jobs) => Kind::Forget(v1::JobIds {
                job_ids: jobs.iter().map(ToString::to_string).collect(),
            }),
        };
        v1::CoordinatorMessage { kind: Some(kind) }
    }
}

/// A coordinator message as wire messages of at most `budget` bytes (assignments are split
/// over as many as they need).
pub fn to_worker_wire(message: ToWorker, budget: usize) -> Vec<v1::CoordinatorMessage> {
    match message {
        ToWorker::Assign(assignments) => split_by_size(assignments_to_wire(assignments), budget)
            .into_iter()
            .map(|assignments| v1::CoordinatorMessage {
                kind: Some(coordinator_message::Kind::Assignments(v1::Assignments { assignments })),
            })
            .collect(),
        other => vec![other.into()],
    }
}

/// Reports as wire messages of at most `budget` bytes, the credit on the last.
pub fn reports_to_wire(reports: Vec<Report>, credit: u32, budget: usize) -> Vec<v1::WorkerMessage> {
    let wire = reports.into_iter().map(v1::AttemptReport::from).collect();
    let mut runs = split_by_size(wire, budget);
    let last = runs.len() - 1;
    runs.drain(..)
        .enumerate()
        .map(|(i, reports)| v1::WorkerMessage {
            kind: Some(worker_message::Kind::Reports(v1::Reports {
                reports,
                credit: if i == last { credit } else { 0 },
            })),
        })
        .collect()
}

/// A coordinator message as the worker takes it in: assignments that do not convert come
/// back apart, with why, so that the worker can report them failed rather than drop them.
pub enum Received {
    /// A message.
    Message(ToWorker),
    /// Assignments, and those among them that are malformed.
    Assignments {
        /// The ones that converted.
        good: Vec<Assignment>,
        /// Attempt id and reason of the others.
        bad: Vec<(u64, ConvertError)>,
    },
}

impl TryFrom<v1::CoordinatorMessage> for Received {
    type Error = ConvertError;

    fn try_from(message: v1::CoordinatorMessage) -> Result<Self, ConvertError> {
        use coordinator_message::Kind;
        Ok(match message.kind.ok_or(ConvertError::Missing("kind"))? {
            Kind::Welcome(w) => Received::Message(ToWorker::Welcome {
                worker: w.worker_id,
                heartbeat_interval: Duration::from_millis(w.heartbeat_interval_ms),
            }),
            Kind::Assignments(batch) => {
                let (mut good, mut bad) = (Vec::with_capacity(batch.assignments.len()), Vec::new());
                for wire in batch.assignments {
                    let attempt = wire.attempt_id;
                    match Assignment::try_from(wire) {
                        Ok(a) => good.push(a),
                        Err(e) => bad.push((attempt, e)),
                    }
                }
                Received::Assignments { good, bad }
            }
            Kind::Cancel(ids) => Received::Message(ToWorker::Cancel(ids.attempt_ids)),
            Kind::Forget(jobs) => Received::Message(ToWorker::Forget(
                jobs.job_ids.iter().map(|j| j.parse()).collect::<Result<_, _>>()?,
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use weft_core::location::ObjectUrl;
    use weft_core::spec::Program;
    use weft_core::work::{JobId, JobProgram};

    use super::*;

    fn program() -> Arc<JobProgram> {
        Arc::new(JobProgram {
            program: Program::app("sort"),
            split_points: vec![b"m".to_vec()],
            task_timeout: Some(Duration::from_secs(9)),
            output_mode: 0o600,
            data_roots: vec![Location::local("/data"), Location::parse("s3://b/data").unwrap()],
            setup: weft_core::setup::TaskSetup {
                env: vec![("A".into(), "b".into())],
                keys: weft_core::setup::KeyLayout {
                    fields: 3,
                    partition_fields: Some(2),
                },
                task_memory: Some(64 << 20),
            },
            files: vec!["map.py".into()],
            output_compression: Some(weft_core::compression::Compression::Gzip),
        })
    }

    fn round_trip(a: Assignment) {
        let Received::Assignments { good, bad } =
            Received::try_from(v1::CoordinatorMessage::from(ToWorker::Assign(vec![a.clone()]))).unwrap()
        else {
            panic!("assignments arrive as assignments")
        };
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(good, vec![a]);
    }

    #[test]
    fn assignments_survive_the_wire() {
        let job = JobId::new(4);
        round_trip(Assignment {
            attempt: 7,
            number: 2,
            task: TaskId::Map(job, 3),
            work: Work::Map(MapWork {
                program: program(),
                split: Split {
                    file: Location::local("/in/a"),
                    start: 10,
                    length: 20,
                },
                more: vec![Split {
                    file: Location::local(std::ffi::OsString::from_vec(b"/in/odd\xff".to_vec())),
                    start: 0,
                    length: 5,
                }],
                reduce_tasks: 0,
                part: Some(PartDestination::File("/out/.weft-tmp/part-00003.attempt-7".into())),
            }),
            timeout: Some(Duration::from_secs(30)),
        });
        round_trip(Assignment {
            attempt: 8,
            number: 1,
            task: TaskId::Reduce(job, 1),
            work: Work::Reduce(ReduceWork {
                program: program(),
                maps: vec![MapLocation {
                    task: 0,
                    attempt: 7,
                    shuffle_address: "w:1".into(),
                }],
                part: PartDestination::Upload {
                    url: ObjectUrl::parse("s3://bucket/out/part-00001").unwrap(),
                    id: "upload-8".into(),
                },
            }),
            timeout: None,
        });
        round_trip(Assignment {
            attempt: 9,
            number: 1,
            task: TaskId::Queue(BatchId::new(2), 5),
            work: Work::Queue(QueueTask::new(HandlerName::new("echo").unwrap(), b"hi".to_vec())),
            timeout: Some(Duration::from_millis(250)),
        });
    }

    #[test]
    fn each_task_of_a_message_names_its_own_job_or_batch() {
        let queue = |batch, index| Assignment {
            attempt: 100 + index as u64,
            number: 1,
            task: TaskId::Queue(BatchId::new(batch), index),
            work: Work::Queue(QueueTask::new(HandlerName::new("noop").unwrap(), vec![])),
            timeout: None,
        };
        let job = |task| Assignment {
            attempt: 200,
            number: 1,
            task,
            work: Work::Reduce(ReduceWork {
                program: program(),
                maps: vec![],
                part: PartDestination::NotBegun(ObjectUrl::parse("s3://bucket/out/part-00000").unwrap()),
            }),
            timeout: None,
        };
        let sent = vec![
            queue(2, 0),
            queue(2, 1),
            queue(3, 0),
            job(TaskId::Reduce(JobId::new(2), 0)),
            job(TaskId::Reduce(JobId::new(4), 1)),
            queue(2, 2),
        ];
        let wire = to_worker_wire(ToWorker::Assign(sent.clone()), 1 << 20);
        let names: Vec<String> = match &wire[..] {
            [v1::CoordinatorMessage {
                kind: Some(coordinator_message::Kind::Assignments(a)),
            }] => a.assignments.iter().map(|a| a.job_id.clone()).collect(),
            other => panic!("one message of assignments, not {other:?}"),
        };
        let expected: Vec<String> = sent.iter().map(|a| owner_name(a.task)).collect();
        assert_eq!(names, expected);
        let Received::Assignments { good, bad } = Received::try_from(wire[0].clone()).unwrap() else {
            panic!("assignments arrive as assignments")
        };
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(good, sent);
    }

    #[test]
    fn a_malformed_assignment_is_kept_apart_with_its_reason() {
        let message = v1::CoordinatorMessage {
            kind: Some(coordinator_message::Kind::Assignments(v1::Assignments {
                assignments: vec![v1::Assignment {
                    attempt_id: 3,
                    work: Some(assignment::Work::Queue(v1::QueueTask {
                        handler: "tele port".into(),
                        ..Default::default()
                    })),
                    ..Default::default()
                }],
            })),
        };
        let Ok(Received::Assignments { good, bad }) = Received::try_from(message) else {
            panic!()
        };
        assert!(good.is_empty());
        assert_eq!(bad[0].0, 3);
        assert!(bad[0].1.to_string().contains("tele port"));
    }

    #[test]
    fn reports_and_session_messages_survive_the_wire() {
        let reports = vec![
            Report {
                attempt: 1,
                outcome: AttemptOutcome::Succeeded(Success::MapOutput {
                    partition_bytes: vec![1, 2],
                    records: 3,
                }),
                counters: [("weft:x".to_string(), 4)].into(),
            },
            Report {
                attempt: 2,
                outcome: AttemptOutcome::TimedOut(Duration::from_secs(3)),
                counters: Default::default(),
            },
            Report {
                attempt: 3,
                outcome: AttemptOutcome::FetchFailed {
                    map_attempts: vec![1],
                    reason: "gone".into(),
                },
                counters: Default::default(),
            },
        ];
        let messages = [
            FromWorker::Register(Registration {
                shuffle_address: "w:1".into(),
                slots: 2,
                hostname: "h".into(),
                held: vec![HeldOutput {
                    job: JobId::new(1),
                    task: 2,
                    attempt: 3,
                }],
                reports_progress: true,
                handlers: weft_core::work::builtin::all(),
                version: "0.1.0".into(),
                carried: vec![CarriedAttempt {
                    job: JobId::new(1),
                    attempt: 7,
                    kind: TaskKind::Reduce,
                    index: 2,
                    number: 3,
                }],
            }),
            FromWorker::Heartbeat {
                progressing: vec![4, 9],
                served_bytes: 1 << 40,
            },
            FromWorker::Reports { reports, credit: 2 },
            FromWorker::Drain,
        ];
        for message in messages {
            assert_eq!(
                FromWorker::try_from(v1::WorkerMessage::from(message.clone())),
                Ok(message)
            );
        }
        let forget = ToWorker::Forget(vec![JobId::new(5)]);
        let Ok(Received::Message(back)) = Received::try_from(v1::CoordinatorMessage::from(forget.clone())) else {
            panic!()
        };
        assert_eq!(back, forget);
    }
}
