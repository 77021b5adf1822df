//! The apps that ship inside weft, run in the worker's process. An app is a [`LineApp`]: a
//! mapper per split that turns its lines into records, and a reducer per part that turns a
//! partition's records, in key order, into the part's lines. [`register`] names them; the
//! coordinator knows them by `weft_core::app::APPS`.
//!
//! A new app is a module here, a line in [`register`], and its entry in `APPS`.

mod grep;
mod in_process;
mod indexer;
mod sort;
mod wordcount;

use std::io::{self, Write};

use weft_core::app::App;
use weft_core::location::Location;

use self::in_process::InProcess;
use super::Programs;

/// Registers every app in `programs`, by the name `--app` takes.
pub fn register(programs: &mut Programs) {
    programs.register("wordcount", InProcess(wordcount::WordCount));
    programs.register("indexer", InProcess(indexer::Indexer));
    programs.register("grep", InProcess(grep::Grep));
    programs.register("sort", InProcess(sort::Sort));
}

/// Where a mapper's records go: `emit(key, value)`.
pub trait Emit: FnMut(&[u8], &[u8]) -> io::Result<()> {}
impl<F: FnMut(&[u8], &[u8]) -> io::Result<()>> Emit for F {}

/// An app that runs in the worker's process, over lines.
pub trait LineApp: Send + Sync + 'static {
    /// Its map side for one split.
    type Mapper: LineMapper;
    /// Its reduce side for one part, written to `W`.
    type Reducer<W: Write>: LineReducer<W>;

    /// The mapper of a split of `file`, for the job's `app` (its arguments).
    fn mapper(&self, app: &App, file: &Location) -> Result<Self::Mapper, AppError>;

    /// The reducer writing a part to `out`.
    fn reducer<W: Write>(&self, app: &App, out: W) -> Self::Reducer<W>;
}

/// An app's map side for one split.
pub trait LineMapper {
    /// Maps a run of whole lines (each ending in `\n` but perhaps the file's last one);
    /// returns how many lines it held.
    fn map_lines(&mut self, run: &[u8], emit: &mut impl Emit) -> io::Result<u64>;

    /// Emits what the mapper combined.
    fn finish(self, emit: &mut impl Emit) -> io::Result<()>;
}

/// An app's reduce side: a partition's records in key order in, the part's lines out.
pub trait LineReducer<W: Write> {
    /// Takes the next record; records come sorted by key.
    fn push(&mut self, key: &[u8], value: &[u8]) -> io::Result<()>;

    /// Writes what is left and returns the output and the lines written.
    fn finish(self) -> io::Result<(W, u64)>;
}

/// Why an app cannot run as the job asks.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// An argument it needs is missing or unusable (the coordinator checks them at submit,
    /// so this is a job from a peer that did not).
    #[error("invalid {arg} for the {app} app: {reason}")]
    BadArgument {
        /// The app.
        app: &'static str,
        /// The argument.
        arg: &'static str,
        /// Why.
        reason: String,
    },
}

/// Calls `map` on each line of `run` (without its `\n`), in one pass; returns how many
/// lines it held.
pub fn each_line(run: &[u8], mut map: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<u64> {
    let unended = u64::from(!run.is_empty() && !run.ends_with(b"\n"));
    let (mut start, mut lines) = (0, unended);
    for end in memchr::memchr_iter(b'\n', run) {
        map(&run[start..end])?;
        start = end + 1;
        lines += 1;
    }
    if start < run.len() {
        map(&run[start..])?;
    }
    Ok(lines)
}

/// How many lines `run` holds, for apps that scan it whole: a newline separates words
/// like any other non-letter.
pub fn count_lines(run: &[u8]) -> u64 {
    let unended = u64::from(!run.is_empty() && !run.ends_with(b"\n"));
    memchr::memchr_iter(b'\n', run).count() as u64 + unended
}

/// Calls `f` on every word of `line`: maximal runs of alphabetic characters (Rust's
/// `char::is_alphabetic`), case kept. Bytes that are not UTF-8 separate words.
pub fn for_each_word<'t>(line: &'t [u8], mut f: impl FnMut(&'t [u8])) {
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i < line.len() {
        let byte = line[i];
        let (alphabetic, width) = if byte < 0x80 {
            (byte.is_ascii_alphabetic(), 1)
        } else {
            crate::letters::wide_letter(&line[i..]).unwrap_or((false, 1))
        };
        match (alphabetic, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                f(&line[s..i]);
                start = None;
            }
            _ => {}
        }
        i += width;
    }
    if let Some(s) = start {
        f(&line[s..]);
    }
}

/// A count as decimal digits, in `buf`.
pub fn format_u64(buf: &mut [u8; 20], mut n: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// The key a reducer is on: records come sorted by key, and a reducer writes out what it
/// gathered for one key when the next begins.
#[derive(Default)]
pub struct CurrentKey {
    key: Vec<u8>,
    started: bool,
}

impl CurrentKey {
    /// Whether `key` begins a new run of records (the first, or one that differs).
    pub fn is_new(&self, key: &[u8]) -> bool {
        !self.started || key != self.key.as_slice()
    }

    /// Moves on to `key`.
    pub fn begin(&mut self, key: &[u8]) {
        self.key.clear();
        self.key.extend_from_slice(key);
        self.started = true;
    }

    /// The key, once a record came.
    pub fn get(&self) -> Option<&[u8]> {
        self.started.then_some(self.key.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        let mut out = Vec::new();
        for_each_word(line.as_bytes(), |w| out.push(String::from_utf8(w.to_vec()).unwrap()));
        out
    }

    #[test]
    fn words_are_alphabetic_runs_with_case_kept() {
        assert_eq!(
            words("Hello, wörld! x2y  Straße_ok"),
            ["Hello", "wörld", "x", "y", "Straße", "ok"]
        );
        assert_eq!(words("123 -- ..."), Vec::<String>::new());
        assert_eq!(words("日本語 text"), ["日本語", "text"]);
    }

    #[test]
    fn invalid_utf8_separates_words() {
        let mut out = Vec::new();
        for_each_word(b"ab\xffcd", |w| out.push(w.to_vec()));
        assert_eq!(out, [b"ab".to_vec(), b"cd".to_vec()]);
    }

    /// What `app`'s mapper emits, sorted, for `text` given whole or cut into two runs.
    fn emitted<A: LineApp>(app: &A, args: &App, runs: &[&[u8]]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut records = Vec::new();
        let mut emit = |k: &[u8], v: &[u8]| {
            records.push((k.to_vec(), v.to_vec()));
            Ok(())
        };
        let mut mapper = app.mapper(args, &Location::local("/in/doc")).unwrap();
        let lines: u64 = runs.iter().map(|run| mapper.map_lines(run, &mut emit).unwrap()).sum();
        assert_eq!(lines, 4);
        mapper.finish(&mut emit).unwrap();
        records.sort();
        records
    }

    fn same_records_however_cut<A: LineApp>(app: A, args: App) {
        let text: &[u8] = b"b a\n\nc a\r\nlast";
        let (first, second) = text.split_at(4); // "b a\n" and the rest
        assert_eq!(
            emitted(&app, &args, &[first, second]),
            emitted(&app, &args, &[text]),
            "{args:?}"
        );
    }

    #[test]
    fn runs_of_lines_map_as_their_lines_do() {
        same_records_however_cut(wordcount::WordCount, App::new("wordcount"));
        same_records_however_cut(indexer::Indexer, App::new("indexer"));
        same_records_however_cut(sort::Sort, App::new("sort"));
        same_records_however_cut(grep::Grep, App::new("grep").with_arg("pattern", "a$"));
    }

    /// What `app`'s reducer writes for `records`.
    pub fn reduced<A: LineApp>(app: A, args: App, records: &[(&str, &str)]) -> (String, u64) {
        let mut reducer = app.reducer(&args, Vec::new());
        for (k, v) in records {
            reducer.push(k.as_bytes(), v.as_bytes()).unwrap();
        }
        let (out, lines) = reducer.finish().unwrap();
        (String::from_utf8(out).unwrap(), lines)
    }

    #[test]
    fn reducers_write_tab_separated_lines() {
        let counts = [("a", "2"), ("a", "3"), ("b", "1")];
        assert_eq!(
            reduced(wordcount::WordCount, App::new("wordcount"), &counts),
            ("a\t5\nb\t1\n".into(), 2)
        );
        let docs = [("x", "d2"), ("x", "d1"), ("x", "d2"), ("y", "d1")];
        assert_eq!(
            reduced(indexer::Indexer, App::new("indexer"), &docs),
            ("x\t2 d1,d2\ny\t1 d1\n".into(), 2)
        );
        let lines = [("a", ""), ("a", ""), ("b", "")];
        assert_eq!(reduced(sort::Sort, App::new("sort"), &lines), ("a\na\nb\n".into(), 3));
    }

    #[test]
    fn every_app_the_coordinator_knows_is_registered() {
        let programs = Programs::builtin();
        for kind in weft_core::app::APPS {
            let app = weft_core::spec::Program::app(kind.name);
            assert!(programs.of(&app).is_ok(), "{}", kind.name);
        }
    }
}
