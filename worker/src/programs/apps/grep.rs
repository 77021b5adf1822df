//! grep: input file, number of its lines matching the `pattern` argument (a Rust `regex`).

use std::io::{self, Write};

use regex::bytes::Regex;
use weft_core::app::App;
use weft_core::location::Location;

use super::wordcount::SumByKey;
use super::{each_line, format_u64, AppError, Emit, LineApp, LineMapper};

/// The grep app.
pub struct Grep;

impl LineApp for Grep {
    type Mapper = CountMatches;
    type Reducer<W: Write> = SumByKey<W>;

    fn mapper(&self, app: &App, file: &Location) -> Result<CountMatches, AppError> {
        let pattern = app.arg("pattern").unwrap_or_default();
        let regex = Regex::new(pattern).map_err(|e| AppError::BadArgument {
            app: "grep",
            arg: "pattern",
            reason: e.to_string(),
        })?;
        let path = match file {
            Location::Local(path) => path.as_os_str().as_encoded_bytes().to_vec(),
            Location::Object(url) => url.to_string().into_bytes(),
        };
        Ok(CountMatches { regex, path, count: 0 })
    }

    fn reducer<W: Write>(&self, _: &App, out: W) -> SumByKey<W> {
        SumByKey::new(out)
    }
}

/// The lines of a split that match.
pub struct CountMatches {
    regex: Regex,
    /// The input file's path.
    path: Vec<u8>,
    count: u64,
}

impl LineMapper for CountMatches {
    fn map_lines(&mut self, run: &[u8], _: &mut impl Emit) -> io::Result<u64> {
        let (regex, count) = (&self.regex, &mut self.count);
        each_line(run, |line| {
            *count += u64::from(regex.is_match(line));
            Ok(())
        })
    }

    fn finish(self, emit: &mut impl Emit) -> io::Result<()> {
        emit(&self.path, format_u64(&mut [0; 20], self.count))
    }
}
