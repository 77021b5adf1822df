//! Hadoop Streaming as a kind of program: the mapper, combiner and reducer are commands run
//! with `sh -c` in the attempt's working directory, records `key<TAB>value` lines on their
//! stdin and stdout; `aggregate` (Hadoop's aggregate package) is run in-process.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::process::Stdio;

use weft_core::compression::Compression;
use weft_core::location::Location;
use weft_core::spec::Program;
use weft_core::split::{line_range_in, Split};

use super::TaskFailure;
use super::{MapReduce, ReduceTask};
use crate::aggregate::{is_aggregate, Aggregate};
use crate::map::{output_writer, MapResult, MapTask};
use crate::mapout::{append_line, Combiner};
use crate::part::{CommandOutput, PartWriter};
use crate::process::{Counters, KillSwitch, Shell};
use crate::reduce::{drain, input_records};

/// Streaming commands.
pub struct Streaming;

impl MapReduce for Streaming {
    fn runs_commands(&self) -> bool {
        true
    }

    fn map(&self, task: &MapTask<'_>, switch: &KillSwitch) -> Result<MapResult, TaskFailure> {
        let (mapper, _, combiner) = commands(&task.program.program)?;
        map(task, mapper, combiner, switch)
    }

    fn reduce(&self, task: ReduceTask<'_>, switch: &KillSwitch) -> Result<(u64, Counters), TaskFailure> {
        let (_, reducer, _) = commands(&task.program.program)?;
        let ReduceTask {
            program,
            merger,
            part,
            env,
        } = task;
        let compression = program.output_compression;
        match reducer {
            None => {
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
            Some(command) if is_aggregate(command) => {
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
            Some(command) => {
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
    }
}

/// The mapper, reducer and combiner of a streaming program.
fn commands(program: &Program) -> Result<(&str, Option<&str>, Option<&str>), TaskFailure> {
    match program {
        Program::Streaming {
            mapper,
            reducer,
            combiner,
        } => Ok((mapper, reducer.as_deref(), combiner.as_deref())),
        other => Err(TaskFailure::NotThisKind {
            given: other.kind().to_string(),
            expected: "a streaming program",
        }),
    }
}

fn map(
    task: &MapTask<'_>,
    mapper: &str,
    combiner: Option<&str>,
    switch: &KillSwitch,
) -> Result<MapResult, TaskFailure> {
    let mut part = match &task.output_file {
        Some(part) => Some(CommandOutput::new(
            part.create(task.roots, task.program.output_mode)?,
            task.program.output_compression,
        )?),
        None => None,
    };
    let keys = task.program.setup.keys;
    let mut out = match part {
        Some(_) => None,
        None => {
            let combiner = combiner.map(|command| Combiner {
                command: command.to_string(),
                env: task.env.clone(),
                keys,
            });
            Some(output_writer(task, combiner, switch)?)
        }
    };
    let (mut lines_fed, mut bytes_fed, mut counters) = (0u64, 0u64, Counters::new());
    // One mapper per piece, so that each sees its own file's name.
    for piece in task.pieces() {
        let input = match &piece.file {
            Location::Object(url) => weft_storage::reader::open_range(url, piece)?,
            Location::Local(path) => readable_range(task.roots.open(path)?, piece)?,
        };
        let stdout = match &part {
            Some(part) => part.stdio()?,
            None => Stdio::piped(),
        };
        let env = task.env.reading(&piece.file);
        let mut shell = Shell::spawn(mapper, &env, Stdio::piped(), stdout, switch)?;
        let stdin = shell.stdin().expect("piped");
        let feeding = switch.clone();
        let feeder = std::thread::spawn(move || feed(input, stdin, feeding));
        let collecting = part.take().map(|part| part.collect(shell.stdout()));
        if let (Some(stdout), Some(out)) = (shell.stdout(), out.as_mut()) {
            let mut reader = BufReader::with_capacity(256 << 10, stdout);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line)? > 0 {
                switch.tick();
                let (key, value) = keys.split(&line);
                out.add(key, value)?;
                line.clear();
            }
        }
        // The mapper's status decides; a failed spill after a failed mapper is noise.
        let status = shell.wait().map_err(TaskFailure::Command);
        if let Some(collecting) = collecting {
            part = Some(collecting.join()?);
        }
        for (name, n) in status? {
            *counters.entry(name).or_default() += n;
        }
        let (lines, bytes) = feeder.join().map_err(|_| TaskFailure::Panicked("the input feeder"))??;
        lines_fed += lines;
        bytes_fed += bytes;
    }
    let (partition_bytes, records) = match (out, part) {
        (Some(out), _) => {
            let records = out.records;
            (out.finish()?, records)
        }
        (None, Some(part)) => (Vec::new(), part.finish()?),
        (None, None) => unreachable!("output goes to a writer or to the part file"),
    };
    Ok(MapResult::new(
        partition_bytes,
        records,
        (lines_fed, bytes_fed),
        counters,
    ))
}

/// The bytes of `file` a mapper reads for `split`: the exact range of the lines it owns, or
/// a compressed file whole, decompressed.
fn readable_range(mut file: File, split: &Split) -> io::Result<Box<dyn Read + Send>> {
    if let Some(codec) = Compression::of_location(&split.file) {
        return codec.decoder(file);
    }
    let (begin, end) = line_range_in(&file, split)?;
    file.seek(SeekFrom::Start(begin))?;
    Ok(Box::new(file.take(end - begin)))
}

/// Copies `input` to a command's stdin; returns the lines and bytes copied. A command that
/// stops reading early (like `head`) is not an error.
fn feed(mut input: impl Read, mut stdin: impl Write, switch: KillSwitch) -> io::Result<(u64, u64)> {
    let mut buf = vec![0u8; 256 << 10];
    let (mut lines, mut bytes) = (0, 0);
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            return Ok((lines, bytes));
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        bytes += n as u64;
        switch.tick();
        match stdin.write_all(&buf[..n]) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok((lines, bytes)),
            other => other?,
        }
    }
}

/// The aggregate's own complaints (a key of no type, a value that is no number) are the
/// task's reason, not an I/O error.
fn aggregate_failure(e: io::Error) -> TaskFailure {
    match e.kind() {
        io::ErrorKind::InvalidData => TaskFailure::BadRecords(e),
        _ => TaskFailure::Io(e),
    }
}
