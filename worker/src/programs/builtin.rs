//! The built-in apps as a kind of program: each maps lines in-process with its
//! [`AppMapper`] and reduces with its [`AppReducer`]; a map-only job runs the reducer over
//! the attempt's own sorted output.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

use weft_core::record::RecordReader;
use weft_core::spec::{Builtin, Program};

use super::{MapReduce, ReduceTask};
use crate::apps::{AppMapper, AppReducer};
use crate::map::{open_lines, output_writer, MapResult, MapTask, TaskFailure};
use crate::part::PartWriter;
use crate::process::{Counters, KillSwitch};
use crate::reduce::{drain, input_records};
use crate::store::DATA_FILE;

/// The built-in apps: which one is the job's program.
pub struct App;

impl MapReduce for App {
    fn map(&self, task: &MapTask<'_>, switch: &KillSwitch) -> Result<MapResult, TaskFailure> {
        let app = app_of(&task.program.program)?;
        let mut out = output_writer(task, None, switch)?;
        let (mut lines_read, mut bytes_read) = (0u64, 0u64);
        for piece in task.pieces() {
            let mut mapper = AppMapper::new(app, &piece.file).map_err(TaskFailure::Command)?;
            let mut lines = open_lines(task.roots, piece)?;
            let mut emit = |k: &[u8], v: &[u8]| out.add(k, v);
            while let Some(run) = lines.next_lines()? {
                lines_read += mapper.map_lines(run, &mut emit)?;
                switch.check()?;
            }
            mapper.finish(&mut emit)?;
            bytes_read += lines.bytes_read();
        }
        let input = (lines_read, bytes_read);
        let records = out.records;
        let partition_bytes = out.finish()?;
        Ok(match &task.output_file {
            None => MapResult::new(partition_bytes, records, input, Counters::new()),
            Some(part) => {
                let part = part.create(task.roots, task.program.output_mode)?;
                let part = PartWriter::new(part, task.program.output_compression)?;
                let written = reduce_local(&task.output_dir, app, part)?;
                MapResult::new(Vec::new(), written, input, Counters::new())
            }
        })
    }

    fn reduce(&self, task: ReduceTask<'_>, switch: &KillSwitch) -> Result<(u64, Counters), TaskFailure> {
        let app = app_of(&task.program.program)?;
        let mut reducer = AppReducer::new(app, PartWriter::new(task.part, task.program.output_compression)?);
        let read = drain(task.merger, switch, |k, v| reducer.push(k, v))?;
        let (out, written) = reducer.finish()?;
        out.finish()?;
        Ok((written, input_records(read)))
    }
}

fn app_of(program: &Program) -> Result<&Builtin, TaskFailure> {
    match program {
        Program::Builtin(app) => Ok(app),
        other => Err(TaskFailure::Command(format!("{} is not a built-in app", other.kind()))),
    }
}

/// Map-only built-in jobs: the app's reduce function over this attempt's own sorted output.
fn reduce_local(dir: &Path, app: &Builtin, part: PartWriter) -> io::Result<u64> {
    let mut reader = RecordReader::new(BufReader::new(File::open(dir.join(DATA_FILE))?));
    let mut reducer = AppReducer::new(app, part);
    while reader.advance()? {
        reducer.push(reader.key(), reader.value())?;
    }
    let (out, records) = reducer.finish()?;
    out.finish()?;
    std::fs::remove_dir_all(dir)?;
    Ok(records)
}
