//! The apps as a kind of program: [`InProcess`] runs a [`LineApp`] in the worker's
//! process, its mapper over each piece of the task's input and its reducer over the merged
//! partition; a map-only job runs the reducer over the attempt's own sorted output.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

use weft_core::app::App;
use weft_core::record::RecordReader;
use weft_core::spec::Program;

use super::{LineApp, LineMapper, LineReducer};
use crate::map::{open_lines, output_writer, MapResult, MapTask};
use crate::part::PartWriter;
use crate::process::{Counters, KillSwitch};
use crate::programs::{MapReduce, ReduceTask, TaskFailure};
use crate::reduce::{drain, input_records};
use crate::store::DATA_FILE;

/// An app that runs in the worker's process, as a kind of program.
pub struct InProcess<A>(pub A);

impl<A: LineApp> MapReduce for InProcess<A> {
    fn map(&self, task: &MapTask<'_>, switch: &KillSwitch) -> Result<MapResult, TaskFailure> {
        let app = app_of(&task.program.program)?;
        let mut out = output_writer(task, None, switch)?;
        let (mut lines_read, mut bytes_read) = (0u64, 0u64);
        for piece in task.pieces() {
            let mut mapper = self.0.mapper(app, &piece.file)?;
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
                let written = self.reduce_local(&task.output_dir, app, part)?;
                MapResult::new(Vec::new(), written, input, Counters::new())
            }
        })
    }

    fn reduce(&self, task: ReduceTask<'_>, switch: &KillSwitch) -> Result<(u64, Counters), TaskFailure> {
        let app = app_of(&task.program.program)?;
        let part = PartWriter::new(task.part, task.program.output_compression)?;
        let mut reducer = self.0.reducer(app, part);
        let read = drain(task.merger, switch, |k, v| reducer.push(k, v))?;
        let (out, written) = reducer.finish()?;
        out.finish()?;
        Ok((written, input_records(read)))
    }
}

impl<A: LineApp> InProcess<A> {
    /// Map-only jobs: the app's reducer over this attempt's own sorted output.
    fn reduce_local(&self, dir: &Path, app: &App, part: PartWriter) -> io::Result<u64> {
        let mut reader = RecordReader::new(BufReader::new(File::open(dir.join(DATA_FILE))?));
        let mut reducer = self.0.reducer(app, part);
        while reader.advance()? {
            reducer.push(reader.key(), reader.value())?;
        }
        let (out, records) = reducer.finish()?;
        out.finish()?;
        std::fs::remove_dir_all(dir)?;
        Ok(records)
    }
}

fn app_of(program: &Program) -> Result<&App, TaskFailure> {
    match program {
        Program::App(app) => Ok(app),
        other => Err(TaskFailure::NotThisKind {
            given: other.kind().to_string(),
            expected: "an app",
        }),
    }
}
