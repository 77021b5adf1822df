//! JOB-FLAGS: the flags that describe a job, shared by `submit` and `run`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use weft_core::app::App;
use weft_core::compression::Compression;
use weft_core::location::Location;
use weft_core::setup::{KeyLayout, ShippedFile, TaskSetup, MAX_SHIPPED_BYTES};
use weft_core::spec::{check_reduce_tasks, InputListing, JobSpec, PartitionerKind, Program, DEFAULT_MAX_ATTEMPTS};

/// What to run, on what.
#[derive(Debug, Args)]
pub struct JobArgs {
    /// Input files; a directory means the files in it (beneath it, with --recursive); a
    /// glob (`'/logs/2026-11-*'`, quoted or not) means the paths it matches.
    #[arg(long, num_args = 1.., required = true, value_name = "PATH")]
    pub input: Vec<PathBuf>,
    /// Directories in --input stand for every file beneath them, at any depth (names
    /// starting with `_` or `.` are skipped at every level).
    #[arg(long)]
    pub recursive: bool,
    /// Pack files smaller than SIZE together into map tasks of about SIZE each (like
    /// Hadoop's CombineFileInputFormat): many small files, a few tasks.
    #[arg(long, value_name = "SIZE", value_parser = weft_auth::flags::bytes)]
    pub combine_splits: Option<u64>,
    /// Output directory: must not exist or be empty.
    #[arg(long, value_name = "DIR")]
    pub output: PathBuf,
    /// Reduce tasks; 0 makes a map-only job. Also `--num-reducers` (and `--reducers`), as
    /// Hadoop's `-numReduceTasks` and mrjob's `--num-reducers` say it.
    #[arg(
        long,
        visible_alias = "num-reducers",
        alias = "reducers",
        default_value_t = 1,
        allow_negative_numbers = true,
        value_name = "R",
        value_parser = parse_reduce_tasks
    )]
    pub reduce_tasks: i64,
    /// A built-in app: wordcount, indexer, grep (with --pattern) or sort.
    #[arg(long, value_name = "NAME", conflicts_with = "mapper")]
    pub app: Option<String>,
    /// An argument of the app, by name. Repeatable.
    #[arg(long = "arg", value_name = "NAME=VALUE")]
    pub app_args: Vec<String>,
    /// grep: the regular expression (short for `--arg pattern=REGEX`).
    #[arg(long, value_name = "REGEX")]
    pub pattern: Option<String>,
    /// Streaming mapper, run with `sh -c`: reads lines on stdin, writes key<TAB>value lines.
    #[arg(long, value_name = "CMD")]
    pub mapper: Option<String>,
    /// Streaming reducer, run with `sh -c`: reads its partition's lines sorted by key.
    #[arg(long, value_name = "CMD")]
    pub reducer: Option<String>,
    /// Streaming combiner, run on each sorted spill of map output.
    #[arg(long, value_name = "CMD")]
    pub combiner: Option<String>,
    /// Ship a file with the job (Hadoop's -files): every attempt finds it in its own
    /// working directory, as it was at submit, so `--mapper ./map.py` works on every
    /// worker. `PATH#NAME` names it NAME there. Repeatable; 8 MiB in all.
    #[arg(long, value_name = "PATH")]
    pub file: Vec<PathBuf>,
    /// A variable for the streaming commands (Hadoop's -cmdenv). Repeatable.
    #[arg(long, value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Secondary sort: the first N tab-separated fields of a mapper's line are its key
    /// (Hadoop's stream.num.map.output.key.fields); reducers see records sorted by it,
    /// bytewise.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub key_fields: u32,
    /// Partition on the first K fields of the key only (K <= --key-fields), so that records
    /// with equal leading fields meet in one reducer (Hadoop's KeyFieldBasedPartitioner).
    #[arg(long, value_name = "K")]
    pub partition_fields: Option<u32>,
    /// A memory limit for each task's processes (like 512MiB): a task past it fails, and
    /// its reason says so.
    #[arg(long, value_name = "SIZE", value_parser = weft_auth::flags::bytes)]
    pub task_memory: Option<u64>,
    /// Split size (like 64MiB or 1G); a file's last split may run 10% over rather than
    /// leave a small split of its own, and a split never cuts a line.
    #[arg(long, default_value = DEFAULT_SPLIT_SIZE_TEXT, value_name = "SIZE", value_parser = weft_auth::flags::bytes)]
    pub split_size: u64,
    /// Attempts per task before the job fails.
    #[arg(long, default_value_t = DEFAULT_MAX_ATTEMPTS, value_name = "N")]
    pub max_attempts: u32,
    /// An attempt running longer is killed and retried.
    #[arg(long, value_name = "SECS")]
    pub task_timeout: Option<u64>,
    /// A name for the job.
    #[arg(long, default_value = "")]
    pub name: String,
    /// Permission bits of the part files, in octal (less the workers' umask).
    #[arg(long, default_value = "0640", value_name = "MODE", value_parser = parse_mode)]
    pub output_mode: u32,
    /// Write the parts compressed: gzip (part-00000.gz) or zstd (part-00000.zst).
    #[arg(long, value_name = "FORMAT", value_parser = parse_compression)]
    pub output_compression: Option<Compression>,
    /// How map output is split among reduce tasks: hash, or range (split points sampled
    /// from the input's keys when the job is planned, so the parts in order are sorted);
    /// default: range for --app sort, hash otherwise.
    #[arg(long, value_name = "KIND", value_parser = parse_partitioner)]
    pub partitioner: Option<PartitionerKind>,
}

/// [`weft_core::spec::DEFAULT_SPLIT_SIZE`] as `--help` shows it.
const DEFAULT_SPLIT_SIZE_TEXT: &str = "64MiB";

/// A number of reduce tasks; anything else is most likely a reducer's command given to
/// the wrong flag, and the message says which flag takes that.
pub fn parse_reduce_tasks(text: &str) -> Result<i64, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of reduce tasks (a reducer's command goes to --reducer)"))
}

fn parse_compression(text: &str) -> Result<Compression, String> {
    Compression::named(text).ok_or_else(|| format!("{text:?} is not a format weft writes: give gzip or zstd"))
}

fn parse_partitioner(text: &str) -> Result<PartitionerKind, String> {
    PartitionerKind::from_name(text).map_err(|e| e.to_string())
}

fn parse_mode(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .map_err(|_| format!("{text:?} is not an octal mode like 0640"))
}

impl JobArgs {
    /// The job these flags describe, with absolute paths, checked.
    pub fn to_spec(&self) -> anyhow::Result<JobSpec> {
        let reduce_tasks = check_reduce_tasks(self.reduce_tasks)?;
        let program = match (&self.app, &self.mapper) {
            (Some(app), None) => {
                let commands = [("--reducer", &self.reducer), ("--combiner", &self.combiner)];
                if let Some((flag, _)) = commands.iter().find(|(_, c)| c.is_some()) {
                    bail!("{flag} goes with --mapper, not with --app {app}: a built-in app brings its own");
                }
                let mut named = App::new(app.as_str());
                let pattern = self.pattern.as_ref().map(|p| format!("pattern={p}"));
                for text in self.app_args.iter().chain(&pattern) {
                    let (name, value) = text
                        .split_once('=')
                        .ok_or_else(|| anyhow::anyhow!("--arg {text:?} is not NAME=VALUE"))?;
                    if named.arg(name).is_some() {
                        bail!("the argument {name:?} is given twice (--pattern is --arg pattern=…)");
                    }
                    named = named.with_arg(name, value);
                }
                Program::App(named)
            }
            (None, Some(_)) if self.pattern.is_some() || !self.app_args.is_empty() => {
                bail!("--arg and --pattern go with --app: streaming commands take their arguments in --mapper and --reducer")
            }
            (None, Some(mapper)) => Program::Streaming {
                mapper: mapper.clone(),
                reducer: self.reducer.clone(),
                combiner: self.combiner.clone(),
            },
            _ => bail!("say what to run: --app NAME, or --mapper CMD (with --reducer CMD)"),
        };
        let spec = JobSpec {
            name: self.name.clone(),
            inputs: self.input.iter().map(|p| absolute(p)).collect::<anyhow::Result<_>>()?,
            output: absolute(&self.output)?,
            reduce_tasks,
            program,
            split_size: self.split_size,
            max_attempts: self.max_attempts,
            task_timeout: self.task_timeout.map(Duration::from_secs),
            priority: 0,
            after: Vec::new(),
            output_mode: self.output_mode,
            listing: InputListing {
                recursive: self.recursive,
                combine_splits: self.combine_splits,
            },
            files: self
                .file
                .iter()
                .map(|f| read_shipped(f))
                .collect::<anyhow::Result<_>>()?,
            setup: TaskSetup {
                env: self.env.iter().map(|e| parse_env(e)).collect::<anyhow::Result<_>>()?,
                keys: KeyLayout {
                    fields: self.key_fields,
                    partition_fields: self.partition_fields,
                },
                task_memory: self.task_memory,
            },
            output_compression: self.output_compression,
            partitioner: self.partitioner,
        };
        spec.validate()?;
        Ok(spec)
    }
}

/// The location `path` names, as a job names it: a path made absolute (against the current
/// directory), or an object URL (`s3://bucket/key`) checked.
pub fn absolute(path: &Path) -> anyhow::Result<Location> {
    match Location::from_path(path.to_path_buf())? {
        Location::Local(path) => {
            let absolute = std::path::absolute(&path).with_context(|| format!("bad path {}", path.display()))?;
            Ok(Location::Local(absolute))
        }
        object => Ok(object),
    }
}

/// Reads a file to ship: `PATH`, or `PATH#NAME` to give it another name.
pub fn read_shipped(arg: &Path) -> anyhow::Result<ShippedFile> {
    let text = arg.to_string_lossy();
    let (path, name) = match text.rsplit_once('#') {
        Some((path, name)) if !name.is_empty() => (PathBuf::from(path), name.to_string()),
        _ => {
            let name = arg
                .file_name()
                .with_context(|| format!("--file {}: not a file", arg.display()))?;
            (arg.to_path_buf(), name.to_string_lossy().into_owned())
        }
    };
    let meta = std::fs::metadata(&path).with_context(|| format!("--file {}", path.display()))?;
    if !meta.is_file() {
        bail!(
            "--file {}: not a regular file (ship the files of a directory one by one)",
            path.display()
        );
    }
    if meta.len() > MAX_SHIPPED_BYTES {
        bail!(
            "--file {}: {} bytes, past the limit of {MAX_SHIPPED_BYTES} (8 MiB) for shipped files",
            path.display(),
            meta.len()
        );
    }
    let contents = std::fs::read(&path).with_context(|| format!("--file {}", path.display()))?;
    Ok(ShippedFile {
        name,
        contents: contents.into(),
        executable: meta.permissions().mode() & 0o111 != 0,
    })
}

/// Parses `NAME=VALUE`.
pub fn parse_env(text: &str) -> anyhow::Result<(String, String)> {
    match text.split_once('=') {
        Some((name, value)) => Ok((name.to_string(), value.to_string())),
        None => bail!("--env {text:?}: give NAME=VALUE"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_size_help_shows_is_the_default_a_spec_gets() {
        assert_eq!(
            weft_auth::flags::bytes(DEFAULT_SPLIT_SIZE_TEXT),
            Ok(weft_core::spec::DEFAULT_SPLIT_SIZE)
        );
    }

    #[test]
    fn a_command_given_for_the_number_of_reduce_tasks_names_the_flag_it_was_meant_for() {
        assert_eq!(parse_reduce_tasks("4"), Ok(4));
        assert!(parse_reduce_tasks("cat").unwrap_err().contains("--reducer"));
    }
}
