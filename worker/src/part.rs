//! A part file being written: its lines counted, its last line closed if the writer left it
//! open (so that parts concatenate into whole lines), compressed if the job asks, made
//! durable. A streaming command writes an uncompressed part straight into the file, which
//! [`finish_part`] completes; a compressed one goes through a pipe into a [`PartWriter`].

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::process::{ChildStdout, Stdio};
use std::thread::JoinHandle;

use weft_core::compression::{Compression, Encoder};

/// Completes `part` after a command wrote into it; returns its lines (its output records).
pub fn finish_part(mut part: File) -> io::Result<u64> {
    let length = part.seek(SeekFrom::End(0))?;
    if length > 0 {
        part.seek(SeekFrom::Start(length - 1))?;
        let mut last = [0u8];
        part.read_exact(&mut last)?;
        if last[0] != b'\n' {
            part.write_all(b"\n")?;
        }
    }
    part.sync_all()?;
    part.seek(SeekFrom::Start(0))?;
    let mut buf = vec![0u8; 256 << 10];
    let mut lines = 0;
    loop {
        let n = part.read(&mut buf)?;
        if n == 0 {
            return Ok(lines);
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
}

/// Writes a part file, compressed or not, counting its lines.
pub struct PartWriter {
    out: Encoder<BufWriter<File>>,
    /// Written and not yet counted and passed on: a reducer writes a line in pieces (a key,
    /// then a newline), and counting and passing on each piece cost more than its bytes.
    pending: Vec<u8>,
    lines: u64,
    last: Option<u8>,
}

/// How much a [`PartWriter`] gathers before it counts and passes on.
const PENDING_BYTES: usize = 64 << 10;

impl PartWriter {
    /// Writes into `file` (created, empty), compressed as `compression` says.
    pub fn new(file: File, compression: Option<Compression>) -> io::Result<Self> {
        Ok(Self {
            out: Encoder::new(BufWriter::with_capacity(1 << 20, file), compression)?,
            pending: Vec::with_capacity(PENDING_BYTES),
            lines: 0,
            last: None,
        })
    }

    /// Closes an open last line, ends the compressed stream and makes the file durable;
    /// returns its lines.
    pub fn finish(mut self) -> io::Result<u64> {
        if self.last_written().is_some_and(|b| b != b'\n') {
            self.write_all(b"\n")?;
        }
        self.pass_on()?;
        let file = self.out.finish()?.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(self.lines)
    }

    /// The last byte written, passed on or not.
    fn last_written(&self) -> Option<u8> {
        self.pending.last().copied().or(self.last)
    }

    /// Counts the lines of `bytes` and writes them on.
    fn count_and_write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let Some(&last) = bytes.last() {
            self.lines += memchr::memchr_iter(b'\n', bytes).count() as u64;
            self.last = Some(last);
        }
        self.out.write_all(bytes)
    }

    /// Counts and writes on what is pending.
    fn pass_on(&mut self) -> io::Result<()> {
        let pending = std::mem::take(&mut self.pending);
        let written = self.count_and_write(&pending);
        self.pending = pending;
        self.pending.clear();
        written
    }
}

impl Write for PartWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.pending.len() + buf.len() > PENDING_BYTES {
            self.pass_on()?;
        }
        if buf.len() >= PENDING_BYTES {
            self.count_and_write(buf)?;
        } else {
            self.pending.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.pass_on()?;
        self.out.flush()
    }
}

/// Where a streaming command's stdout goes: straight into the part file, or (compressed)
/// through a pipe into a writer that a thread feeds.
pub enum CommandOutput {
    /// Written by the command itself.
    File(File),
    /// Compressed by weft.
    Compressed(PartWriter),
}

impl CommandOutput {
    /// The part `file` (created, empty) as a command's output.
    pub fn new(file: File, compression: Option<Compression>) -> io::Result<Self> {
        Ok(match compression {
            None => CommandOutput::File(file),
            Some(_) => CommandOutput::Compressed(PartWriter::new(file, compression)?),
        })
    }

    /// The command's stdout.
    pub fn stdio(&self) -> io::Result<Stdio> {
        Ok(match self {
            CommandOutput::File(file) => Stdio::from(file.try_clone()?),
            CommandOutput::Compressed(_) => Stdio::piped(),
        })
    }

    /// Copies a command's piped stdout in, on a thread of its own, until the command closes
    /// it; a file written by the command itself is handed back at once.
    pub fn collect(self, stdout: Option<ChildStdout>) -> Collecting {
        match (self, stdout) {
            (CommandOutput::Compressed(mut writer), Some(mut stdout)) => {
                Collecting::Copying(std::thread::spawn(move || {
                    io::copy(&mut stdout, &mut writer)?;
                    Ok(writer)
                }))
            }
            (output, _) => Collecting::Done(output),
        }
    }

    /// Completes the part; returns its lines.
    pub fn finish(self) -> io::Result<u64> {
        match self {
            CommandOutput::File(file) => finish_part(file),
            CommandOutput::Compressed(writer) => writer.finish(),
        }
    }
}

/// A command's output being collected.
pub enum Collecting {
    /// A thread copies the pipe into the writer.
    Copying(JoinHandle<io::Result<PartWriter>>),
    /// Nothing to copy.
    Done(CommandOutput),
}

impl Collecting {
    /// The output, once the command has closed its stdout.
    pub fn join(self) -> io::Result<CommandOutput> {
        match self {
            Collecting::Copying(thread) => thread
                .join()
                .map_err(|_| io::Error::other("the output copier panicked"))?
                .map(CommandOutput::Compressed),
            Collecting::Done(output) => Ok(output),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(content: &[u8]) -> (Vec<u8>, u64) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("part-00000");
        std::fs::write(&path, content).unwrap();
        let file = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
        let lines = finish_part(file).unwrap();
        (std::fs::read(&path).unwrap(), lines)
    }

    #[test]
    fn an_open_last_line_is_closed_and_every_line_counts() {
        assert_eq!(finished(b"a\t1\nb\t2"), (b"a\t1\nb\t2\n".to_vec(), 2));
        assert_eq!(finished(b"a\t1\n"), (b"a\t1\n".to_vec(), 1));
        assert_eq!(finished(b""), (Vec::new(), 0), "an empty part stays empty");
    }

    #[test]
    fn writes_of_any_size_land_in_order_and_count() {
        let dir = tempfile::tempdir().unwrap();
        // Pieces of a line, whole lines, and writes past what the writer gathers.
        let mut want = Vec::new();
        let path = dir.path().join("part-00000");
        let mut writer = PartWriter::new(File::create(&path).unwrap(), None).unwrap();
        for i in 0..20_000usize {
            let piece = match i % 1000 {
                999 => vec![b'x'; PENDING_BYTES + i],
                500 => b"\n\n".repeat(PENDING_BYTES / 3),
                _ => format!("{i}").into_bytes(),
            };
            writer.write_all(&piece).unwrap();
            want.extend_from_slice(&piece);
            if i % 3 == 0 {
                writer.write_all(b"\n").unwrap();
                want.push(b'\n');
            }
        }
        writer.write_all(b"open").unwrap();
        want.extend_from_slice(b"open\n");
        let lines = writer.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), want);
        assert_eq!(lines, want.iter().filter(|&&b| b == b'\n').count() as u64);
    }

    #[test]
    fn a_compressed_part_is_closed_and_counted_before_compression() {
        let dir = tempfile::tempdir().unwrap();
        for codec in [Compression::Gzip, Compression::Zstd] {
            let path = dir.path().join(format!("part-00000{}", codec.extension()));
            let mut writer = PartWriter::new(File::create(&path).unwrap(), Some(codec)).unwrap();
            writer.write_all(b"a\t1\nb\t2").unwrap();
            assert_eq!(writer.finish().unwrap(), 2);
            let mut text = String::new();
            codec
                .decoder(File::open(&path).unwrap())
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            assert_eq!(text, "a\t1\nb\t2\n");
        }
    }
}
