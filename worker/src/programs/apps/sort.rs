//! sort: the input lines, sorted bytewise. Each line is a key; its jobs' range partitioner
//! (`weft_core::app::APPS` says so) makes the parts in order the sorted input.

use std::io::{self, Write};

use weft_core::app::App;
use weft_core::location::Location;

use super::{each_line, AppError, Emit, LineApp, LineMapper, LineReducer};

/// The sort app.
pub struct Sort;

impl LineApp for Sort {
    type Mapper = LinesAsKeys;
    type Reducer<W: Write> = KeysAsLines<W>;

    fn mapper(&self, _: &App, _: &Location) -> Result<LinesAsKeys, AppError> {
        Ok(LinesAsKeys)
    }

    fn reducer<W: Write>(&self, _: &App, out: W) -> KeysAsLines<W> {
        KeysAsLines { out, lines: 0 }
    }
}

/// Every line, as a key.
pub struct LinesAsKeys;

impl LineMapper for LinesAsKeys {
    fn map_lines(&mut self, run: &[u8], emit: &mut impl Emit) -> io::Result<u64> {
        each_line(run, |line| emit(line, b""))
    }

    fn finish(self, _: &mut impl Emit) -> io::Result<()> {
        Ok(())
    }
}

/// Every key, as a line.
pub struct KeysAsLines<W> {
    out: W,
    lines: u64,
}

impl<W: Write> LineReducer<W> for KeysAsLines<W> {
    fn push(&mut self, key: &[u8], _: &[u8]) -> io::Result<()> {
        self.out.write_all(key)?;
        self.lines += 1;
        self.out.write_all(b"\n")
    }

    fn finish(mut self) -> io::Result<(W, u64)> {
        self.out.flush()?;
        Ok((self.out, self.lines))
    }
}
