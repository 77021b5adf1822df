//! `weft resubmit`: submits a job again from the spec the coordinator kept (its shipped
//! files included), with the flags given changing it: a new `--output`, a fixed mapper, more
//! attempts. Prints the new job's id; with `--wait`, follows it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use weft_core::spec::{check_reduce_tasks, JobSpec, Program};

use super::{follow, ClientArgs};
use crate::job_args::{absolute, parse_env, parse_reduce_tasks, read_shipped};

/// Flags of `weft resubmit`: the job, and what to change of it.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    client: ClientArgs,
    /// The job to submit again.
    job: String,
    /// Wait for the new job to end, showing progress; exit 0 only if it succeeded.
    #[arg(long)]
    wait: bool,
    /// A new output directory (the old one must otherwise be empty or gone).
    #[arg(long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// New inputs, instead of the job's.
    #[arg(long, num_args = 1.., value_name = "PATH")]
    input: Option<Vec<PathBuf>>,
    /// Directories in --input stand for every file beneath them (`--recursive false` undoes it).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    recursive: Option<bool>,
    /// A new mapper command.
    #[arg(long, value_name = "CMD")]
    mapper: Option<String>,
    /// A new reducer command.
    #[arg(long, value_name = "CMD")]
    reducer: Option<String>,
    /// A new combiner command.
    #[arg(long, value_name = "CMD")]
    combiner: Option<String>,
    /// Reduce tasks (also `--num-reducers`, `--reducers`).
    #[arg(
        long,
        visible_alias = "num-reducers",
        alias = "reducers",
        allow_negative_numbers = true,
        value_name = "R",
        value_parser = parse_reduce_tasks
    )]
    reduce_tasks: Option<i64>,
    /// A file to ship, added to the job's or replacing the one of its name.
    #[arg(long, value_name = "PATH")]
    file: Vec<PathBuf>,
    /// A variable, added to the job's or replacing the one of its name.
    #[arg(long, value_name = "NAME=VALUE")]
    env: Vec<String>,
    /// Split size (like 64MiB).
    #[arg(long, value_name = "SIZE", value_parser = weft_auth::flags::bytes)]
    split_size: Option<u64>,
    /// Pack small files into map tasks of about SIZE.
    #[arg(long, value_name = "SIZE", value_parser = weft_auth::flags::bytes)]
    combine_splits: Option<u64>,
    /// Attempts per task.
    #[arg(long, value_name = "N")]
    max_attempts: Option<u32>,
    /// An attempt running longer is killed and retried (0: no limit).
    #[arg(long, value_name = "SECS")]
    task_timeout: Option<u64>,
    /// Fields in the key.
    #[arg(long, value_name = "N")]
    key_fields: Option<u32>,
    /// Fields of the key the partitioner hashes.
    #[arg(long, value_name = "K")]
    partition_fields: Option<u32>,
    /// A memory limit for each task's processes.
    #[arg(long, value_name = "SIZE", value_parser = weft_auth::flags::bytes)]
    task_memory: Option<u64>,
    /// A new name.
    #[arg(long)]
    name: Option<String>,
    /// A new priority.
    #[arg(long, allow_negative_numbers = true)]
    priority: Option<i32>,
}

impl Args {
    /// `spec` with these flags' changes, checked.
    fn apply(&self, mut spec: JobSpec) -> anyhow::Result<JobSpec> {
        if let Some(output) = &self.output {
            spec.output = absolute(output)?;
        }
        if let Some(inputs) = &self.input {
            spec.inputs = inputs.iter().map(|p| absolute(p)).collect::<anyhow::Result<_>>()?;
        }
        if let Some(recursive) = self.recursive {
            spec.listing.recursive = recursive;
        }
        let commands = [&self.mapper, &self.reducer, &self.combiner];
        match &mut spec.program {
            Program::Streaming {
                mapper,
                reducer,
                combiner,
            } => {
                if let Some(new) = &self.mapper {
                    *mapper = new.clone();
                }
                for (old, new) in [(reducer, &self.reducer), (combiner, &self.combiner)] {
                    if let Some(new) = new {
                        *old = Some(new.clone());
                    }
                }
            }
            Program::App(app) if commands.iter().any(|c| c.is_some()) => {
                anyhow::bail!("job {} runs --app {}: it takes no commands", self.job, app.name)
            }
            Program::App(_) => {}
        }
        if let Some(r) = self.reduce_tasks {
            spec.reduce_tasks = check_reduce_tasks(r)?;
        }
        for path in &self.file {
            let file = read_shipped(path)?;
            spec.files.retain(|f| f.name != file.name);
            spec.files.push(file);
        }
        for text in &self.env {
            let (name, value) = parse_env(text)?;
            spec.setup.env.retain(|(n, _)| *n != name);
            spec.setup.env.push((name, value));
        }
        if let Some(size) = self.split_size {
            spec.split_size = size;
        }
        if let Some(size) = self.combine_splits {
            spec.listing.combine_splits = Some(size);
        }
        if let Some(n) = self.max_attempts {
            spec.max_attempts = n;
        }
        if let Some(secs) = self.task_timeout {
            spec.task_timeout = (secs > 0).then(|| std::time::Duration::from_secs(secs));
        }
        if let Some(n) = self.key_fields {
            spec.setup.keys.fields = n;
        }
        if let Some(k) = self.partition_fields {
            spec.setup.keys.partition_fields = Some(k);
        }
        if let Some(bytes) = self.task_memory {
            spec.setup.task_memory = Some(bytes);
        }
        if let Some(name) = &self.name {
            spec.name = name.clone();
        }
        if let Some(priority) = self.priority {
            spec.priority = priority;
        }
        spec.validate()?;
        Ok(spec)
    }
}

/// Submits the job again.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.client.connect().await?;
    let spec = client
        .spec(&args.job)
        .await
        .with_context(|| format!("cannot read the spec of {}", args.job))?;
    let spec = args.apply(spec)?;
    let handle = client.submit(&spec).await?;
    println!("{}", handle.id());
    if !args.wait {
        return Ok(ExitCode::SUCCESS);
    }
    follow(&handle).await
}
