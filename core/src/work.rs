//! The vocabulary of work: the ids of jobs, task batches, tasks and attempts, and the
//! assignments the coordinator hands to workers. `weft_proto::convert` turns wire messages
//! into these types and back; nothing else in the engine sees a wire message.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::compression::Compression;
use crate::location::{Location, ObjectUrl};
use crate::setup::TaskSetup;
use crate::spec::Program;
use crate::split::Split;

/// An attempt's id: unique across coordinator restarts (ids are reserved durably in blocks).
pub type AttemptId = u64;

/// A worker's id, new for every session it opens.
pub type WorkerId = u64;

/// A text that is not the id it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a {what} id (they look like {example})")]
pub struct BadId {
    /// What was given.
    pub text: String,
    /// "job" or "batch".
    pub what: &'static str,
    /// A well-formed id.
    pub example: &'static str,
}

macro_rules! sequence_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(u64);

        impl $name {
            /// The id of the `seq`th one.
            pub const fn new(seq: u64) -> Self {
                Self(seq)
            }

            /// Its sequence number: smaller is older.
            pub const fn seq(self) -> u64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                if f.width().is_some() {
                    return f.pad(&format!(concat!($prefix, "-{:06}"), self.0));
                }
                write!(f, concat!($prefix, "-{:06}"), self.0)
            }
        }

        impl FromStr for $name {
            type Err = BadId;

            fn from_str(text: &str) -> Result<Self, BadId> {
                text.strip_prefix(concat!($prefix, "-"))
                    .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|digits| digits.parse().ok())
                    .map(Self)
                    .ok_or_else(|| BadId {
                        text: text.to_string(),
                        what: $what,
                        example: concat!($prefix, "-000042"),
                    })
            }
        }
    };
}

sequence_id!(
    /// A job's id, `job-000042`: the only format a job id has, on the wire, in the store
    /// and on the screen.
    JobId,
    "job",
    "job"
);

sequence_id!(
    /// A task batch's id, `batch-000007`.
    BatchId,
    "batch",
    "batch"
);

/// What a task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskKind {
    /// Reads a split, writes partitioned map output.
    Map,
    /// Fetches its partition of every map output, writes a part file.
    Reduce,
    /// One task of a batch: a handler and its payload.
    Queue,
}

impl TaskKind {
    /// Every kind.
    pub const ALL: [TaskKind; 3] = [TaskKind::Map, TaskKind::Reduce, TaskKind::Queue];

    /// "map", "reduce" or "queue", as shown and sent.
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Map => "map",
            TaskKind::Reduce => "reduce",
            TaskKind::Queue => "queue",
        }
    }

    /// The kind called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// A task: a job's map or reduce task, or a batch's queue task, by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskId {
    /// Map task `index` of a job (one per split).
    Map(JobId, u32),
    /// Reduce task `index` of a job (one per partition).
    Reduce(JobId, u32),
    /// Task `index` of a batch (its position in the batch).
    Queue(BatchId, u32),
}

impl TaskId {
    /// A job's task of `kind` (map or reduce).
    pub fn of_job(job: JobId, kind: TaskKind, index: u32) -> Self {
        match kind {
            TaskKind::Map => TaskId::Map(job, index),
            TaskKind::Reduce => TaskId::Reduce(job, index),
            TaskKind::Queue => panic!("queue tasks belong to batches, not jobs"),
        }
    }

    /// What the task does.
    pub fn kind(self) -> TaskKind {
        match self {
            TaskId::Map(..) => TaskKind::Map,
            TaskId::Reduce(..) => TaskKind::Reduce,
            TaskId::Queue(..) => TaskKind::Queue,
        }
    }

    /// Its index among the tasks of its kind.
    pub fn index(self) -> u32 {
        match self {
            TaskId::Map(_, i) | TaskId::Reduce(_, i) | TaskId::Queue(_, i) => i,
        }
    }

    /// The job it belongs to, unless it is a batch's.
    pub fn job(self) -> Option<JobId> {
        match self {
            TaskId::Map(job, _) | TaskId::Reduce(job, _) => Some(job),
            TaskId::Queue(..) => None,
        }
    }
}

/// `job-000042-m-00007`, `job-000042-r-00000`, `batch-000003-q-00012`: the one format of a
/// task id, in logs and in a streaming task's `WEFT_TASK_ID`.
impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.width().is_some() {
            let mut id = String::new();
            self.write_to(&mut id)?;
            return f.pad(&id);
        }
        self.write_to(f)
    }
}

impl TaskId {
    fn write_to(&self, out: &mut impl fmt::Write) -> fmt::Result {
        match self {
            TaskId::Map(job, i) => write!(out, "{job}-m-{i:05}"),
            TaskId::Reduce(job, i) => write!(out, "{job}-r-{i:05}"),
            TaskId::Queue(batch, i) => write!(out, "{batch}-q-{i:05}"),
        }
    }
}

impl FromStr for TaskId {
    type Err = BadId;

    /// Reads the one format [`Display`](fmt::Display) writes.
    fn from_str(text: &str) -> Result<Self, BadId> {
        let bad = || BadId {
            text: text.to_string(),
            what: "task",
            example: "job-000042-m-00007",
        };
        let mut parts = text.rsplitn(3, '-');
        let (Some(index), Some(kind), Some(owner)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let index: u32 = index.parse().map_err(|_| bad())?;
        match kind {
            "m" => Ok(TaskId::Map(owner.parse().map_err(|_| bad())?, index)),
            "r" => Ok(TaskId::Reduce(owner.parse().map_err(|_| bad())?, index)),
            "q" => Ok(TaskId::Queue(owner.parse().map_err(|_| bad())?, index)),
            _ => Err(bad()),
        }
    }
}

/// One attempt of one task, as the coordinator hands it to a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// The attempt.
    pub attempt: AttemptId,
    /// 1 for the task's first attempt, then 2, ...
    pub number: u32,
    /// The task; its kind is the kind of `work`.
    pub task: TaskId,
    /// What to do.
    pub work: Work,
    /// Stopped, timed out, after running this long.
    pub timeout: Option<Duration>,
}

/// What an attempt does.
#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    /// A map task.
    Map(MapWork),
    /// A reduce task.
    Reduce(ReduceWork),
    /// A queue task.
    Queue(QueueTask),
}

/// A job's program as its tasks run it; shared by every assignment of the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobProgram {
    /// The app or the streaming commands.
    pub program: Program,
    /// The sort app's range partitioner: ascending split points; empty: hash partitioning.
    pub split_points: Vec<Vec<u8>>,
    /// An attempt running longer is stopped and counts as failed.
    pub task_timeout: Option<Duration>,
    /// The permission bits of the part files it writes.
    pub output_mode: u32,
    /// The directories and prefixes its files must stay inside (resolved); empty: any.
    pub data_roots: Vec<Location>,
    /// Variables, key layout and memory limit of streaming tasks.
    pub setup: TaskSetup,
    /// The names of the files shipped with the job, which a worker fetches from the
    /// coordinator once per job and puts in every attempt's working directory.
    pub files: Vec<String>,
    /// Parts are written compressed in this format.
    pub output_compression: Option<Compression>,
}

/// A map attempt's work.
#[derive(Debug, Clone, PartialEq)]
pub struct MapWork {
    /// The job's program.
    pub program: Arc<JobProgram>,
    /// The input.
    pub split: Split,
    /// Whole files read after it, for a task that packs small files.
    pub more: Vec<Split>,
    /// The job's reduce tasks; 0 for a map-only job.
    pub reduce_tasks: u32,
    /// A map-only job's part; none when reduce tasks take the map output.
    pub part: Option<PartDestination>,
}

/// A reduce attempt's work: its partition is its task's index.
#[derive(Debug, Clone, PartialEq)]
pub struct ReduceWork {
    /// The job's program.
    pub program: Arc<JobProgram>,
    /// Where every map task's committed output is.
    pub maps: Vec<MapLocation>,
    /// The part.
    pub part: PartDestination,
}

/// Where an attempt writes its part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartDestination {
    /// The part file, under the attempt's temporary name in the output directory.
    File(PathBuf),
    /// The part's object, filled through the multipart upload the coordinator began for
    /// the attempt.
    Upload {
        /// The part's object.
        url: ObjectUrl,
        /// The upload's id.
        id: String,
    },
    /// The part's object, whose upload the coordinator could not begin (its log says why):
    /// the attempt fails, and is retried.
    NotBegun(ObjectUrl),
}

impl PartDestination {
    /// The part file or object, as shown.
    pub fn location(&self) -> Location {
        match self {
            PartDestination::File(path) => Location::Local(path.clone()),
            PartDestination::Upload { url, .. } | PartDestination::NotBegun(url) => Location::Object(url.clone()),
        }
    }
}

/// Where a committed map attempt's output can be fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapLocation {
    /// The map task.
    pub task: u32,
    /// The attempt that wrote it.
    pub attempt: AttemptId,
    /// The worker's shuffle service, `host:port`.
    pub shuffle_address: String,
}

/// A task of a batch: a handler and its payload, and what it overrides of its batch's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueTask {
    /// What runs it.
    pub handler: HandlerName,
    /// Its input.
    pub payload: Vec<u8>,
    /// Attempts before it fails, instead of its batch's.
    pub max_attempts: Option<u32>,
    /// An attempt running longer is stopped, instead of its batch's timeout.
    pub timeout: Option<Duration>,
}

impl QueueTask {
    /// A task for `handler` with `payload`, on its batch's settings.
    pub fn new(handler: HandlerName, payload: Vec<u8>) -> Self {
        Self {
            handler,
            payload,
            max_attempts: None,
            timeout: None,
        }
    }
}

/// The most bytes a queue task's payload, or its result, may have.
pub const MAX_TASK_BYTES: usize = 4 << 20;

/// A payload past [`MAX_TASK_BYTES`]: its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a payload of {0} bytes; at most {MAX_TASK_BYTES}")]
pub struct PayloadTooLarge(pub usize);

/// Whether a queue task may carry `payload`.
pub fn check_payload(payload: &[u8]) -> Result<(), PayloadTooLarge> {
    match payload.len() {
        n if n > MAX_TASK_BYTES => Err(PayloadTooLarge(n)),
        _ => Ok(()),
    }
}

/// A client's batch of independent tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The tasks; a task's index is its position here.
    pub tasks: Vec<QueueTask>,
    /// How they run.
    pub settings: BatchSettings,
}

/// How a batch's tasks run, unless a task says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSettings {
    /// Attempts per task before it fails.
    pub max_attempts: u32,
    /// An attempt running longer is stopped and fails; `None`: the coordinator's default.
    pub task_timeout: Option<Duration>,
    /// A task whose handler no connected worker serves fails after waiting this long;
    /// `None`: it waits until one comes.
    pub unserved_timeout: Option<Duration>,
}

/// Tasks of a batch wait for handlers that no connected worker serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unserved {
    /// The handlers they wait for.
    pub waiting: Vec<HandlerName>,
    /// The handlers the connected workers serve.
    pub served: Vec<HandlerName>,
}

/// How one task of a batch ended: its output, or why it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueResult {
    /// The task's position in its batch.
    pub index: u32,
    /// Its output, or why it failed.
    pub output: Result<Vec<u8>, String>,
}

/// The name of a queue handler: what a task asks for and a worker serves. Letters, digits,
/// `_`, `-`, `.` and `:`, at most [`HandlerName::MAX_LEN`] bytes. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HandlerName(Arc<str>);

/// A handler name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a handler name: use 1 to {max} letters, digits, '_', '-', '.' or ':'",
    max = HandlerName::MAX_LEN
)]
pub struct BadHandlerName(pub String);

impl HandlerName {
    /// The longest name.
    pub const MAX_LEN: usize = 64;

    /// `name`, if it is a valid handler name.
    pub fn new(name: &str) -> Result<Self, BadHandlerName> {
        let valid = !name.is_empty()
            && name.len() <= Self::MAX_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
        if valid {
            Ok(Self(name.into()))
        } else {
            Err(BadHandlerName(name.to_string()))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A flag's `NAME=VALUE` (`value` says what VALUE is, for the message): the name
    /// checked, the value as given, not empty.
    pub fn with_value<'a>(text: &'a str, value: &str) -> Result<(Self, &'a str), String> {
        let (name, given) = text
            .split_once('=')
            .ok_or_else(|| format!("{text:?}: give NAME={value}"))?;
        if given.trim().is_empty() {
            return Err(format!("{text:?}: the {} is empty", value.to_lowercase()));
        }
        Ok((Self::new(name.trim()).map_err(|e| e.to_string())?, given))
    }
}

impl std::str::FromStr for HandlerName {
    type Err = BadHandlerName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::new(name)
    }
}

impl fmt::Display for HandlerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for HandlerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// The handlers every worker serves.
pub mod builtin {
    /// Does nothing; the result is empty.
    pub const NOOP: &str = "noop";
    /// The result is the payload.
    pub const ECHO: &str = "echo";
    /// Sleeps for the payload's number of milliseconds.
    pub const SLEEP: &str = "sleep";
    /// Runs the payload with `sh -c`; the result is its stdout.
    pub const EXEC: &str = "exec";

    use super::{HandlerKind, HandlerName};

    /// Every built-in handler with its kind: what a worker older than handler names serves.
    pub fn all() -> Vec<(HandlerName, HandlerKind)> {
        [
            (NOOP, HandlerKind::Builtin),
            (ECHO, HandlerKind::Builtin),
            (SLEEP, HandlerKind::Builtin),
            (EXEC, HandlerKind::Exec),
        ]
        .into_iter()
        .map(|(name, kind)| (HandlerName::new(name).expect("built-in names are valid"), kind))
        .collect()
    }
}

/// What serves a handler on a worker, which decides who may call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HandlerKind {
    /// Built into every worker and harmless: `noop`, `echo`, `sleep`.
    Builtin,
    /// Rust code linked into the worker (registered with its builder).
    Linked,
    /// A warm process a worker's operator named (`weft worker --handler NAME=COMMAND`).
    Command,
    /// `exec`: the payload is a shell command.
    Exec,
}

impl HandlerKind {
    /// Every kind.
    pub const ALL: [HandlerKind; 4] = [Self::Builtin, Self::Linked, Self::Command, Self::Exec];

    /// Its name on the wire and on screens.
    pub fn name(self) -> &'static str {
        match self {
            Self::Builtin => "builtin",
            Self::Linked => "linked",
            Self::Command => "command",
            Self::Exec => "exec",
        }
    }

    /// The kind called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether calling it runs code the caller chooses, or a command: the `commands` role's.
    pub fn runs_commands(self) -> bool {
        matches!(self, Self::Command | Self::Exec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_and_parse_in_one_format() {
        let job = JobId::new(42);
        assert_eq!(job.to_string(), "job-000042");
        assert_eq!("job-000042".parse(), Ok(job));
        assert_eq!(JobId::new(1_234_567).to_string(), "job-1234567");
        assert_eq!("job-1234567".parse::<JobId>().unwrap().seq(), 1_234_567);
        for bad in ["", "job-", "job-x1", "job--1", "job-+1", "batch-000001", "42", "job-1 "] {
            let err = bad.parse::<JobId>().unwrap_err();
            assert!(err.to_string().contains("job-000042"), "{err}");
        }
        assert_eq!(BatchId::new(7).to_string(), "batch-000007");
        for task in [
            TaskId::Map(JobId::new(42), 7),
            TaskId::Reduce(JobId::new(1_234_567), 0),
            TaskId::Queue(BatchId::new(3), 12),
        ] {
            assert_eq!(task.to_string().parse::<TaskId>(), Ok(task));
        }
        for bad in [
            "",
            "job-000042",
            "job-000042-x-00001",
            "job-000042-m-",
            "../x-m-1",
            "job-1-m-1-2",
        ] {
            assert!(bad.parse::<TaskId>().is_err(), "{bad}");
        }
        assert_eq!(TaskId::Map(job, 7).to_string(), "job-000042-m-00007");
        assert_eq!(TaskId::Reduce(job, 0).to_string(), "job-000042-r-00000");
        assert_eq!(TaskId::Queue(BatchId::new(3), 12).to_string(), "batch-000003-q-00012");
        assert_eq!(
            format!("{job:<12}|{:>20}", TaskId::Map(job, 1)),
            "job-000042  |  job-000042-m-00001"
        );
    }

    #[test]
    fn a_task_knows_its_kind_index_and_job() {
        let job = JobId::new(1);
        let task = TaskId::of_job(job, TaskKind::Reduce, 3);
        assert_eq!(
            (task.kind(), task.index(), task.job()),
            (TaskKind::Reduce, 3, Some(job))
        );
        assert_eq!(TaskId::Queue(BatchId::new(1), 2).job(), None);
        for kind in TaskKind::ALL {
            assert_eq!(TaskKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(TaskKind::from_name("m"), None);
    }

    #[test]
    fn handler_names_are_checked() {
        for good in ["echo", "resize-image", "img.v2", "gpu:render", "a_b"] {
            assert_eq!(HandlerName::new(good).unwrap().as_str(), good);
        }
        for bad in ["", "has space", "sémantique", "a/b", &"x".repeat(65)] {
            let err = HandlerName::new(bad).unwrap_err().to_string();
            assert!(err.contains("not a handler name"), "{err}");
        }
        for kind in HandlerKind::ALL {
            assert_eq!(HandlerKind::from_name(kind.name()), Some(kind));
        }
        assert!(HandlerKind::Command.runs_commands() && !HandlerKind::Linked.runs_commands());
        let (name, command) = HandlerName::with_value("resize=python3 -m resize --x=1", "COMMAND").unwrap();
        assert_eq!((name.as_str(), command), ("resize", "python3 -m resize --x=1"));
        for (bad, says) in [
            ("resize", "give NAME=COMMAND"),
            ("resize= ", "the command is empty"),
            ("a b=x", "not a handler name"),
        ] {
            let err = HandlerName::with_value(bad, "COMMAND").unwrap_err();
            assert!(err.contains(says), "{err}");
        }
    }
}
