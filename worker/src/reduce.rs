//! A reduce attempt after its fetch: merges the sorted runs and feeds them, key by key, to
//! the built-in app's reducer or to the streaming reducer, whose output is the part file.

use std::fs::File;
use std::io::{self, BufRead, Write};
use std::path::Path;
use std::process::Stdio;

use weft_core::merge::Merger;
use weft_core::spec::Program;
use weft_core::status::counters::REDUCE_INPUT_RECORDS;
use weft_core::work::JobProgram;

use crate::aggregate::{is_aggregate, Aggregate};
use crate::apps::AppReducer;
use crate::map::TaskFailure;
use crate::mapout::append_line;
use crate::merge::{final_merger, Run};
use crate::part::{CommandOutput, PartWriter};
use crate::process::{Counters, KillSwitch, Shell, TaskEnv};

/// Merges `runs` and writes the part file `part` (created, empty); returns the records
/// written (a streaming reducer's output lines) and the counters: records read, and a
/// streaming reducer's own.
pub fn run_reduce(
    program: &JobProgram,
    runs: Vec<Run>,
    scratch: &Path,
    part: File,
    env: &TaskEnv,
    switch: &KillSwitch,
) -> Result<(u64, Counters), String> {
    let result = (|| -> Result<(u64, Counters), TaskFailure> {
        let merger = final_merger(runs, scratch)?;
        let compression = program.output_compression;
        match &program.program {
            Program::Builtin(app) => {
                let mut reducer = AppReducer::new(app, PartWriter::new(part, compression)?);
                let read = drain(merger, switch, |k, v| reducer.push(k, v))?;
                let (out, written) = reducer.finish()?;
                out.finish()?;
                Ok((written, input_records(read)))
            }
            Program::Streaming { reducer: None, .. } => {
                let mut out = PartWriter::new(part, compression)?;
                let mut line = Vec::new();
                let records = drain(merger, switch, |k, v| {
                    line.clear();
                    append_line(&mut line, k, v);
                    out.write_all(&line)
                })?;
                out.finish()?;
                Ok((records, input_records(records)))
            }
            Program::Streaming {
                reducer: Some(command), ..
            } if is_aggregate(command) => {
                let mut out = PartWriter::new(part, compression)?;
                let mut line = Vec::new();
                let mut aggregate = Aggregate::new(
                    |k: &[u8], v: &[u8]| {
                        line.clear();
                        append_line(&mut line, k, v);
                        out.write_all(&line)
                    },
                    false,
                );
                let read = drain(merger, switch, |k, v| aggregate.push(k, v)).map_err(aggregate_failure)?;
                let written = aggregate.finish().map_err(aggregate_failure)?;
                out.finish()?;
                Ok((written, input_records(read)))
            }
            Program::Streaming {
                reducer: Some(command), ..
            } => {
                let output = CommandOutput::new(part, compression)?;
                let mut shell = Shell::spawn(command, env, Stdio::piped(), output.stdio()?, switch)?;
                let collecting = output.collect(shell.stdout());
                let mut stdin = io::BufWriter::with_capacity(256 << 10, shell.stdin().expect("piped"));
                let mut line = Vec::new();
                let mut taken = 0u64;
                let fed = drain(merger, switch, |k, v| {
                    line.clear();
                    append_line(&mut line, k, v);
                    taken += 1;
                    stdin.write_all(&line)
                });
                let flushed = stdin.flush();
                drop(stdin);
                // The reducer's own status explains a broken pipe better than the pipe does;
                // one that exits 0 after closing its input early (like `head`) succeeded, as
                // a mapper that does so does.
                let status = shell.wait().map_err(TaskFailure::Command);
                let output = collecting.join()?;
                let mut counters = status?;
                let read = match fed {
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => taken,
                    other => other?,
                };
                match flushed {
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
                    other => other?,
                }
                counters.extend(input_records(read));
                Ok((output.finish()?, counters))
            }
        }
    })();
    result.map_err(|e| match e {
        TaskFailure::Io(e) if switch.tripped() => format!("stopped: {e}"),
        TaskFailure::Io(e) => format!("reduce I/O error: {e}"),
        TaskFailure::Command(reason) => reason,
    })
}

/// The aggregate's own complaints (a key of no type, a value that is no number) are the
/// task's reason, not an I/O error.
fn aggregate_failure(e: io::Error) -> TaskFailure {
    match e.kind() {
        io::ErrorKind::InvalidData => TaskFailure::Command(e.to_string()),
        _ => TaskFailure::Io(e),
    }
}

fn input_records(n: u64) -> Counters {
    Counters::from([(REDUCE_INPUT_RECORDS.to_string(), n)])
}

fn drain<R: BufRead>(
    mut merger: Merger<R>,
    switch: &KillSwitch,
    mut take: impl FnMut(&[u8], &[u8]) -> io::Result<()>,
) -> io::Result<u64> {
    let mut n = 0u64;
    while merger.advance()? {
        take(merger.key(), merger.value())?;
        n += 1;
        if n.is_multiple_of(4096) {
            switch.check()?;
        }
    }
    Ok(n)
}
