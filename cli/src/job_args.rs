//! JOB-FLAGS: the flags that describe a job, shared by `submit` and `run`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use weft_core::spec::{check_reduce_tasks, Builtin, JobSpec, Program, DEFAULT_MAX_ATTEMPTS, DEFAULT_SPLIT_SIZE};

/// What to run, on what.
#[derive(Debug, Args)]
pub struct JobArgs {
    /// Input files; a directory means the files in it.
    #[arg(long, num_args = 1.., required = true, value_name = "PATH")]
    pub input: Vec<PathBuf>,
    /// Output directory: must not exist or be empty.
    #[arg(long, value_name = "DIR")]
    pub output: PathBuf,
    /// Reduce tasks; 0 makes a map-only job.
    #[arg(long, default_value_t = 1, allow_negative_numbers = true, value_name = "R")]
    pub reduce_tasks: i64,
    /// A built-in app: wordcount, indexer, grep (with --pattern) or sort.
    #[arg(long, value_name = "NAME", conflicts_with = "mapper")]
    pub app: Option<String>,
    /// grep: the regular expression.
    #[arg(long, value_name = "REGEX")]
    pub pattern: Option<String>,
    /// Streaming mapper, run with `sh -c`: reads lines on stdin, writes key<TAB>value lines.
    #[arg(long, value_name = "CMD")]
    pub mapper: Option<String>,
    /// Streaming reducer, run with `sh -c`: reads its partition's lines sorted by key.
    #[arg(long, value_name = "CMD", requires = "mapper")]
    pub reducer: Option<String>,
    /// Streaming combiner, run on each sorted spill of map output.
    #[arg(long, value_name = "CMD", requires = "mapper")]
    pub combiner: Option<String>,
    /// Split size in bytes; a file's last split may run 10% over rather than leave a small
    /// split of its own, and a split never cuts a line.
    #[arg(long, default_value_t = DEFAULT_SPLIT_SIZE, value_name = "BYTES")]
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
            (Some(app), None) => Program::Builtin(Builtin::from_name(app, self.pattern.as_deref())?),
            (None, Some(mapper)) => {
                if self.pattern.is_some() {
                    bail!("--pattern goes with --app grep");
                }
                Program::Streaming {
                    mapper: mapper.clone(),
                    reducer: self.reducer.clone(),
                    combiner: self.combiner.clone(),
                }
            }
            _ => bail!("say what to run: --app NAME, or --mapper CMD (with --reducer CMD)"),
        };
        let absolute = |p: &PathBuf| std::path::absolute(p).with_context(|| format!("bad path {}", p.display()));
        let spec = JobSpec {
            name: self.name.clone(),
            inputs: self.input.iter().map(absolute).collect::<anyhow::Result<_>>()?,
            output: absolute(&self.output)?,
            reduce_tasks,
            program,
            split_size: self.split_size,
            max_attempts: self.max_attempts,
            task_timeout: self.task_timeout.map(Duration::from_secs),
            priority: 0,
            after: Vec::new(),
            output_mode: self.output_mode,
        };
        spec.validate()?;
        Ok(spec)
    }
}
