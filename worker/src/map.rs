//! A map attempt: reads the lines its split owns, runs the built-in app or the streaming
//! mapper on them, and writes partitioned, sorted output (or, for a map-only job, the part
//! file itself).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use weft_auth::paths::DataRoots;
use weft_core::compression::Compression;
use weft_core::location::Location;
use weft_core::partition::Partitioner;
use weft_core::record::RecordReader;
use weft_core::spec::{Builtin, Program};
use weft_core::split::{line_range_in, AnyLines, Split, SplitLines};
use weft_core::work::JobProgram;

use crate::apps::{AppMapper, AppReducer};
use crate::mapout::{Combiner, MapOutputWriter};
use crate::part::{CommandOutput, PartWriter};
use crate::process::{Counters, KillSwitch, Shell, TaskEnv};
use crate::store::DATA_FILE;
use crate::upload::PartTarget;
use weft_core::status::counters::{MAP_INPUT_BYTES, MAP_INPUT_RECORDS, MAP_OUTPUT_RECORDS};

/// What a finished map attempt reports.
#[derive(Debug)]
pub struct MapResult {
    /// Bytes per partition (empty for map-only jobs).
    pub partition_bytes: Vec<u64>,
    /// Records written.
    pub records: u64,
    /// Built-in and user counters.
    pub counters: Counters,
}

impl MapResult {
    fn new(partition_bytes: Vec<u64>, records: u64, input: (u64, u64), mut counters: Counters) -> Self {
        counters.insert(MAP_INPUT_RECORDS.into(), input.0);
        counters.insert(MAP_INPUT_BYTES.into(), input.1);
        counters.insert(MAP_OUTPUT_RECORDS.into(), records);
        Self {
            partition_bytes,
            records,
            counters,
        }
    }
}

/// Everything a map attempt needs.
pub struct MapTask<'a> {
    /// The job's program.
    pub program: &'a JobProgram,
    /// Where its files may be: inputs are opened, and parts created, beneath these.
    pub roots: &'a DataRoots,
    /// The input.
    pub split: &'a Split,
    /// Whole files read after it (a task that packs small files).
    pub more: &'a [Split],
    /// Reduce tasks of the job; 0 for map-only.
    pub reduce_tasks: u32,
    /// Map-only jobs: the part to write.
    pub output_file: Option<PartTarget>,
    /// Where partitioned output goes (unused by map-only streaming).
    pub output_dir: PathBuf,
    /// Where and how streaming commands run.
    pub env: TaskEnv,
    /// Sort buffer size.
    pub sort_buffer: usize,
}

/// Runs a map attempt to its end.
pub fn run_map(task: MapTask<'_>, switch: &KillSwitch) -> Result<MapResult, String> {
    let result = match &task.program.program {
        Program::Builtin(app) => map_builtin(&task, app, switch),
        Program::Streaming { mapper, combiner, .. } => map_streaming(&task, mapper, combiner.as_deref(), switch),
    };
    result.map_err(|e| match e {
        TaskFailure::Io(e) if switch.tripped() => format!("stopped: {e}"),
        TaskFailure::Io(e) => format!("map I/O error: {e}"),
        TaskFailure::Command(reason) => reason,
    })
}

/// How a task fails: an I/O error, or a command that failed.
pub enum TaskFailure {
    /// Reading, writing or spilling failed.
    Io(io::Error),
    /// A streaming command failed; the reason names it.
    Command(String),
}

impl From<io::Error> for TaskFailure {
    fn from(e: io::Error) -> Self {
        TaskFailure::Io(e)
    }
}

fn writer(task: &MapTask<'_>, combiner: Option<Combiner>, switch: &KillSwitch) -> io::Result<MapOutputWriter> {
    let split_points = &task.program.split_points;
    let (partitioner, partitions) = if !split_points.is_empty() {
        let partitions = split_points.len() as u32 + 1;
        (
            Partitioner::Range {
                points: split_points.clone(),
            },
            partitions,
        )
    } else {
        let partitions = task.reduce_tasks.max(1);
        let fields = task.program.setup.keys.hashed_fields();
        (Partitioner::Hash { partitions, fields }, partitions)
    };
    MapOutputWriter::create(
        task.output_dir.clone(),
        partitioner,
        partitions,
        task.sort_buffer,
        combiner,
        switch.clone(),
    )
}

impl MapTask<'_> {
    /// The pieces of input it reads, in order.
    fn pieces(&self) -> impl Iterator<Item = &Split> {
        std::iter::once(self.split).chain(self.more)
    }
}

fn map_builtin(task: &MapTask<'_>, app: &Builtin, switch: &KillSwitch) -> Result<MapResult, TaskFailure> {
    let mut out = writer(task, None, switch)?;
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

fn map_streaming(
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
            Some(writer(task, combiner, switch)?)
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
        let (lines, bytes) = feeder
            .join()
            .map_err(|_| TaskFailure::Command("input feeder panicked".into()))??;
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

/// The lines `split` owns, from a file beneath the data roots or from an object store.
fn open_lines(roots: &DataRoots, split: &Split) -> io::Result<AnyLines> {
    match &split.file {
        Location::Object(url) => weft_storage::reader::open_lines(url, split),
        Location::Local(path) => SplitLines::in_file(roots.open(path)?, split),
    }
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
