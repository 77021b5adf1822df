//! What a job is: its inputs, output, program and limits, and the checks that need no
//! filesystem. The coordinator adds the filesystem checks when it accepts a job.

use std::time::Duration;

use crate::app::{app_names, App};
use crate::compression::Compression;
use crate::location::{BadUrl, Location};
use crate::setup::{validate_files, KeyLayout, SetupError, ShippedFile, TaskSetup};

/// The default largest split: 64 MiB, as in Hadoop.
pub const DEFAULT_SPLIT_SIZE: u64 = 64 << 20;
/// The default number of attempts per task.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 4;
/// The default mode of part files: read-write for their owner, readable by its group, not by
/// others.
pub const DEFAULT_OUTPUT_MODE: u32 = 0o640;

/// A MapReduce job as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    /// A name for people; defaults to the program's name.
    pub name: String,
    /// Input files; a directory stands for the files directly inside it.
    pub inputs: Vec<Location>,
    /// Output directory; must not exist or be empty.
    pub output: Location,
    /// Reduce tasks; 0 makes a map-only job.
    pub reduce_tasks: u32,
    /// What runs in the tasks.
    pub program: Program,
    /// Largest split in bytes.
    pub split_size: u64,
    /// Attempts per task before the job fails.
    pub max_attempts: u32,
    /// An attempt running longer is killed and retried.
    pub task_timeout: Option<Duration>,
    /// Higher runs first among queued jobs.
    pub priority: i32,
    /// Jobs that must succeed before this one starts.
    pub after: Vec<String>,
    /// The permission bits of its part files and `_SUCCESS` (less the worker's umask).
    pub output_mode: u32,
    /// How inputs are listed and packed into map tasks.
    pub listing: InputListing,
    /// Files every attempt finds in its working directory (streaming jobs).
    pub files: Vec<ShippedFile>,
    /// Variables, key layout and memory limit of the tasks (streaming jobs).
    pub setup: TaskSetup,
    /// Parts are written compressed in this format.
    pub output_compression: Option<Compression>,
    /// How map output is split among the reduce tasks; `None`: as the program prefers
    /// ([`Program::default_partitioner`]).
    pub partitioner: Option<PartitionerKind>,
}

/// How map output is split among the reduce tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionerKind {
    /// A stable hash of the key (or of its leading fields): even loads, no order between
    /// parts.
    Hash,
    /// Ranges of keys, with split points the coordinator samples from the input when it
    /// plans the job: part i holds smaller keys than part i+1, so the parts in order are
    /// sorted (Hadoop's `TotalOrderPartitioner`). The sample is of the input's keys, so
    /// it fits mappers that keep their input's keys (`cat`, a filter, the sort app).
    Range,
}

impl PartitionerKind {
    /// Every kind.
    pub const ALL: [PartitionerKind; 2] = [PartitionerKind::Hash, PartitionerKind::Range];

    /// "hash" or "range", as `--partitioner` takes it.
    pub fn name(self) -> &'static str {
        match self {
            PartitionerKind::Hash => "hash",
            PartitionerKind::Range => "range",
        }
    }

    /// The kind called `name`.
    pub fn from_name(name: &str) -> Result<Self, SpecError> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| SpecError::UnknownPartitioner(name.to_string()))
    }
}

/// How a job's inputs become map tasks, beyond their paths (globs are always expanded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InputListing {
    /// Directories stand for every file beneath them, not only those directly inside.
    pub recursive: bool,
    /// Pack files smaller than this many bytes together into map tasks of about this size.
    pub combine_splits: Option<u64>,
}

/// What the map and reduce tasks run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// An app that ships inside weft, with its arguments.
    App(App),
    /// Hadoop Streaming: commands run with `sh -c`, records as `key<TAB>value` lines.
    Streaming {
        /// Reads the split's lines on stdin, writes records on stdout.
        mapper: String,
        /// Reads its partition's records sorted by key; what it writes is the part file.
        /// `None` writes the sorted records as they are.
        reducer: Option<String>,
        /// Runs on each sorted spill of map output, like a reducer.
        combiner: Option<String>,
    },
}

impl Program {
    /// The app called `name`, with no arguments.
    pub fn app(name: impl Into<String>) -> Self {
        Program::App(App::new(name))
    }

    /// Whether its tasks run commands the submitter wrote (which takes the `commands` role
    /// to submit, and a sandbox to run).
    pub fn runs_commands(&self) -> bool {
        matches!(self, Program::Streaming { .. })
    }

    /// The partitioner the program's jobs get unless they name one: the app's
    /// ([`AppKind::partitioner`]: ranges for sort), hashing for the rest.
    ///
    /// [`AppKind::partitioner`]: crate::app::AppKind::partitioner
    pub fn default_partitioner(&self) -> PartitionerKind {
        match self {
            Program::App(app) => app.kind().map_or(PartitionerKind::Hash, |kind| kind.partitioner),
            Program::Streaming { .. } => PartitionerKind::Hash,
        }
    }

    /// The key of an input line as the program's map sees it, for sampling a range
    /// partitioner's split points: the whole line for an app, the key of the job's key
    /// layout for streaming commands.
    pub fn input_key<'a>(&self, line: &'a [u8], keys: KeyLayout) -> &'a [u8] {
        match self {
            Program::App(_) => line,
            Program::Streaming { .. } => keys.split(line).0,
        }
    }

    /// The kind name of streaming programs.
    pub const STREAMING: &'static str = "streaming";

    /// The name of its kind, by which workers find what runs it: the app's name, or
    /// [`Self::STREAMING`].
    pub fn kind(&self) -> &str {
        match self {
            Program::App(app) => &app.name,
            Program::Streaming { .. } => Self::STREAMING,
        }
    }
}

/// Why a job spec was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    /// `--app` named no built-in.
    #[error("unknown app {0:?}: the built-in apps are {names}", names = app_names().join(", "))]
    UnknownApp(String),
    /// An app without an argument it needs.
    #[error("the {app} app needs --arg {arg}={what}")]
    MissingArgument {
        /// The app.
        app: &'static str,
        /// The argument's name.
        arg: &'static str,
        /// What its value is.
        what: &'static str,
    },
    /// An argument the app does not take.
    #[error("the {app} app takes no argument {arg:?}: it takes {takes}")]
    UnexpectedArgument {
        /// The app.
        app: &'static str,
        /// The argument given.
        arg: String,
        /// What it takes.
        takes: String,
    },
    /// An argument's value the app cannot use.
    #[error("invalid {arg} for the {app} app: {reason}")]
    BadArgument {
        /// The app.
        app: &'static str,
        /// The argument's name.
        arg: &'static str,
        /// Why.
        reason: String,
    },
    /// Neither an app nor a mapper.
    #[error("say what to run: --app NAME, or --mapper CMD (with --reducer CMD)")]
    NoProgram,
    /// An empty command.
    #[error("--{0} is empty")]
    EmptyCommand(&'static str),
    /// No `--input`.
    #[error("no input: give --input PATH (a file or a directory of files)")]
    NoInput,
    /// No `--output`.
    #[error("no output: give --output DIR (a directory that does not exist or is empty)")]
    NoOutput,
    /// A negative or absurd number of reduce tasks.
    #[error("--reduce-tasks must be between 0 and {max}, got {got}")]
    BadReduceTasks {
        /// What was asked.
        got: i64,
        /// The largest allowed.
        max: u32,
    },
    /// A split size of zero.
    #[error("--split-size must be at least 1 byte")]
    ZeroSplitSize,
    /// Zero attempts.
    #[error("--max-attempts must be at least 1")]
    ZeroAttempts,
    /// An output mode with more than permission bits.
    #[error("--output-mode {0:o} is not a file mode: give permission bits like 0640")]
    BadOutputMode(u32),
    /// A streaming option with a built-in app.
    #[error("{flag} goes with streaming commands (--mapper), not with --app {app}")]
    StreamingOnly {
        /// The flag.
        flag: &'static str,
        /// The app.
        app: String,
    },
    /// A command a map-only job would never run.
    #[error("--{0} is never run with --reduce-tasks 0 (a map-only job writes its mapper's output): drop one of them")]
    IgnoredInMapOnly(&'static str),
    /// `--combine-splits 0`.
    #[error("--combine-splits must be at least 1 byte")]
    ZeroCombineSize,
    /// `--partitioner` named no partitioner.
    #[error("unknown --partitioner {0:?}: give hash or range")]
    UnknownPartitioner(String),
    /// A range partitioner with keys partitioned on their leading fields.
    #[error("--partitioner range splits whole keys into ranges: drop --partition-fields, or use --partitioner hash")]
    RangeOnLeadingFields,
    /// `--output-compression` named no format weft writes.
    #[error("unknown --output-compression {0:?}: give gzip or zstd")]
    UnknownCompression(String),
    /// Files, variables or keys that cannot work.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// An `s3://` URL that names no object.
    #[error(transparent)]
    BadLocation(#[from] BadUrl),
    /// A path given by name that is not UTF-8 (files found in an input directory may have
    /// any name; the paths a job names travel as text).
    #[error("{flag} {path:?} is not UTF-8: rename it, or give its directory")]
    NotUtf8 {
        /// `--input` or `--output`.
        flag: &'static str,
        /// The path, lossily shown.
        path: String,
    },
}

/// The most reduce tasks a job may ask for.
/// (Past any sensible job: a coordinator's own `--max-reduce-tasks`, 100,000 unless raised,
/// is the limit that applies.)
pub const MAX_REDUCE_TASKS: u32 = 10_000_000;

impl JobSpec {
    /// A job with the defaults: one reduce task, 64 MiB splits, 4 attempts, no timeout.
    pub fn new(inputs: Vec<Location>, output: Location, program: Program) -> Self {
        Self {
            name: String::new(),
            inputs,
            output,
            reduce_tasks: 1,
            program,
            split_size: DEFAULT_SPLIT_SIZE,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            task_timeout: None,
            priority: 0,
            after: Vec::new(),
            output_mode: DEFAULT_OUTPUT_MODE,
            listing: InputListing::default(),
            files: Vec::new(),
            setup: TaskSetup::default(),
            output_compression: None,
            partitioner: None,
        }
    }

    /// How its map output is split among its reduce tasks.
    pub fn partitioner(&self) -> PartitionerKind {
        self.partitioner.unwrap_or_else(|| self.program.default_partitioner())
    }

    /// Checks what needs no filesystem: counts, the program and its arguments.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.inputs.is_empty() {
            return Err(SpecError::NoInput);
        }
        if self.output.is_empty() {
            return Err(SpecError::NoOutput);
        }
        self.check_paths_are_text()?;
        check_reduce_tasks(self.reduce_tasks as i64)?;
        if self.split_size == 0 {
            return Err(SpecError::ZeroSplitSize);
        }
        if self.max_attempts == 0 {
            return Err(SpecError::ZeroAttempts);
        }
        if self.output_mode & !0o777 != 0 {
            return Err(SpecError::BadOutputMode(self.output_mode));
        }
        if self.listing.combine_splits == Some(0) {
            return Err(SpecError::ZeroCombineSize);
        }
        self.setup.validate()?;
        if self.partitioner() == PartitionerKind::Range && self.setup.keys.hashed_fields().is_some() {
            return Err(SpecError::RangeOnLeadingFields);
        }
        validate_files(&self.files)?;
        match &self.program {
            Program::App(app) => {
                app.check()?;
                let flag = match self.files.is_empty() {
                    false => Some("--file"),
                    true => self.setup.first_set_flag(),
                };
                if let Some(flag) = flag {
                    return Err(SpecError::StreamingOnly {
                        flag,
                        app: app.name.clone(),
                    });
                }
            }
            Program::Streaming {
                mapper,
                reducer,
                combiner,
            } => {
                if self.reduce_tasks == 0 {
                    let ignored = [("reducer", reducer), ("combiner", combiner)];
                    if let Some((flag, _)) = ignored.iter().find(|(_, c)| c.is_some()) {
                        return Err(SpecError::IgnoredInMapOnly(flag));
                    }
                }
                let named = [
                    ("mapper", Some(mapper)),
                    ("reducer", reducer.as_ref()),
                    ("combiner", combiner.as_ref()),
                ];
                for (flag, command) in named {
                    if command.is_some_and(|c| c.trim().is_empty()) {
                        return Err(SpecError::EmptyCommand(flag));
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks that the paths the job names are UTF-8: they travel as text (the files found
    /// in an input directory may have any name).
    pub fn check_paths_are_text(&self) -> Result<(), SpecError> {
        let named = self
            .inputs
            .iter()
            .map(|p| ("--input", p))
            .chain([("--output", &self.output)]);
        for (flag, path) in named {
            if path.as_str().is_none() {
                return Err(SpecError::NotUtf8 {
                    flag,
                    path: path.to_text(),
                });
            }
        }
        Ok(())
    }

    /// The name to show: the given one, else the program's.
    pub fn display_name(&self) -> String {
        if !self.name.is_empty() {
            return self.name.clone();
        }
        self.program.kind().to_string()
    }
}

/// Checks a reduce count as a user typed it (it may be negative).
pub fn check_reduce_tasks(got: i64) -> Result<u32, SpecError> {
    if (0..=MAX_REDUCE_TASKS as i64).contains(&got) {
        Ok(got as u32)
    } else {
        Err(SpecError::BadReduceTasks {
            got,
            max: MAX_REDUCE_TASKS,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(program: Program) -> JobSpec {
        JobSpec {
            name: String::new(),
            inputs: vec![Location::local("in")],
            output: Location::local("out"),
            reduce_tasks: 1,
            program,
            split_size: DEFAULT_SPLIT_SIZE,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            task_timeout: None,
            priority: 0,
            after: Vec::new(),
            output_mode: DEFAULT_OUTPUT_MODE,
            listing: InputListing::default(),
            files: Vec::new(),
            setup: TaskSetup::default(),
            output_compression: None,
            partitioner: None,
        }
    }

    #[test]
    fn negative_reduce_count_is_refused_with_the_number() {
        let err = check_reduce_tasks(-1).unwrap_err();
        assert_eq!(err.to_string(), "--reduce-tasks must be between 0 and 10000000, got -1");
        assert_eq!(check_reduce_tasks(0), Ok(0));
    }

    #[test]
    fn bad_pattern_and_empty_commands_are_refused() {
        let grep = spec(Program::App(App::new("grep").with_arg("pattern", "(")));
        assert!(matches!(grep.validate(), Err(SpecError::BadArgument { .. })));
        let streaming = spec(Program::Streaming {
            mapper: " ".into(),
            reducer: None,
            combiner: None,
        });
        assert_eq!(streaming.validate(), Err(SpecError::EmptyCommand("mapper")));
        assert_eq!(spec(Program::app("sort")).validate(), Ok(()));
    }

    #[test]
    fn what_a_job_would_ignore_is_refused() {
        let mut app = spec(Program::app("wordcount"));
        app.setup.keys.fields = 2;
        let err = app.validate().unwrap_err().to_string();
        assert_eq!(
            err,
            "--key-fields goes with streaming commands (--mapper), not with --app wordcount"
        );
        let mut map_only = spec(Program::Streaming {
            mapper: "cat".into(),
            reducer: Some("cat".into()),
            combiner: None,
        });
        map_only.reduce_tasks = 0;
        assert_eq!(map_only.validate(), Err(SpecError::IgnoredInMapOnly("reducer")));
    }
}
