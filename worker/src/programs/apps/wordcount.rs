//! wordcount: word, count. The mapper sums its split's counts in memory (flushing past
//! [`COMBINE_KEYS`] words); the reducer sums the mappers' counts. grep's reducer is the same
//! sum.

use std::io::{self, Write};

use weft_core::app::App;
use weft_core::location::Location;

use super::{count_lines, for_each_word, format_u64, AppError, CurrentKey, Emit, LineApp, LineMapper, LineReducer};
use crate::word_counts::WordCounts;

/// Distinct words a mapper holds before it flushes them.
const COMBINE_KEYS: usize = 1 << 20;

/// The wordcount app.
pub struct WordCount;

impl LineApp for WordCount {
    type Mapper = CountWords;
    type Reducer<W: Write> = SumByKey<W>;

    fn mapper(&self, _: &App, _: &Location) -> Result<CountWords, AppError> {
        Ok(CountWords(WordCounts::new()))
    }

    fn reducer<W: Write>(&self, _: &App, out: W) -> SumByKey<W> {
        SumByKey::new(out)
    }
}

/// word → count, summed in the mapper.
pub struct CountWords(WordCounts);

impl LineMapper for CountWords {
    fn map_lines(&mut self, run: &[u8], emit: &mut impl Emit) -> io::Result<u64> {
        let mut counter = self.0.prefetching();
        for_each_word(run, |word| counter.add(word));
        drop(counter);
        if self.0.len() >= COMBINE_KEYS {
            flush_counts(&mut self.0, emit)?;
        }
        Ok(count_lines(run))
    }

    fn finish(mut self, emit: &mut impl Emit) -> io::Result<()> {
        flush_counts(&mut self.0, emit)
    }
}

fn flush_counts(counts: &mut WordCounts, emit: &mut impl Emit) -> io::Result<()> {
    let mut number = [0; 20];
    for (word, count) in counts.iter() {
        emit(word, format_u64(&mut number, count))?;
    }
    counts.clear();
    Ok(())
}

/// key, the sum of its records' counts.
pub struct SumByKey<W> {
    out: W,
    key: CurrentKey,
    sum: u64,
    lines: u64,
}

impl<W: Write> SumByKey<W> {
    /// A reducer writing to `out`.
    pub fn new(out: W) -> Self {
        Self {
            out,
            key: CurrentKey::default(),
            sum: 0,
            lines: 0,
        }
    }

    fn flush_key(&mut self) -> io::Result<()> {
        let Some(key) = self.key.get() else {
            return Ok(());
        };
        self.out.write_all(key)?;
        self.out.write_all(b"\t")?;
        let mut buf = [0; 20];
        self.out
            .write_all(format_u64(&mut buf, std::mem::take(&mut self.sum)))?;
        self.lines += 1;
        self.out.write_all(b"\n")
    }
}

impl<W: Write> LineReducer<W> for SumByKey<W> {
    fn push(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        if self.key.is_new(key) {
            self.flush_key()?;
            self.key.begin(key);
        }
        self.sum += parse_u64(value)?;
        Ok(())
    }

    fn finish(mut self) -> io::Result<(W, u64)> {
        self.flush_key()?;
        self.out.flush()?;
        Ok((self.out, self.lines))
    }
}

fn parse_u64(value: &[u8]) -> io::Result<u64> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "a count that is not a number"))
}
