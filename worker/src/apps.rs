//! The built-in apps: their map functions (with in-map combining where it helps) and their
//! reduce functions over a partition's records grouped by key.

use std::collections::BTreeSet;
use std::io::{self, Write};

// A fast hash, seeded per process: SipHash was a fifth of wordcount's map time.
use foldhash::{HashSet, HashSetExt};
use regex::bytes::Regex;
use weft_core::location::Location;
use weft_core::spec::Builtin;

use crate::word_counts::WordCounts;

/// Distinct keys a combining mapper holds before it flushes them.
const COMBINE_KEYS: usize = 1 << 20;

/// A built-in app's map side for one split.
pub enum AppMapper {
    /// word → count, summed in the mapper.
    WordCount(WordCounts),
    /// words seen in this split's file.
    Indexer {
        /// The file's base name.
        doc: Vec<u8>,
        /// Words seen.
        words: HashSet<Vec<u8>>,
    },
    /// lines matching in this split.
    Grep {
        /// The pattern.
        regex: Regex,
        /// The input file's path.
        path: Vec<u8>,
        /// Matching lines so far.
        count: u64,
    },
    /// every line, as a key.
    Sort,
}

impl AppMapper {
    /// The mapper of `app` for a split of `file`.
    pub fn new(app: &Builtin, file: &Location) -> Result<Self, String> {
        Ok(match app {
            Builtin::WordCount => AppMapper::WordCount(WordCounts::new()),
            Builtin::Indexer => AppMapper::Indexer {
                doc: match file {
                    Location::Local(path) => path
                        .file_name()
                        .map_or_else(Vec::new, |n| n.as_encoded_bytes().to_vec()),
                    Location::Object(url) => url.file_name().as_bytes().to_vec(),
                },
                words: HashSet::new(),
            },
            Builtin::Grep { pattern } => AppMapper::Grep {
                regex: Regex::new(pattern).map_err(|e| format!("invalid pattern: {e}"))?,
                path: match file {
                    Location::Local(path) => path.as_os_str().as_encoded_bytes().to_vec(),
                    Location::Object(url) => url.to_string().into_bytes(),
                },
                count: 0,
            },
            Builtin::Sort => AppMapper::Sort,
        })
    }

    /// Maps one line; records go to `emit(key, value)`.
    pub fn map(&mut self, line: &[u8], emit: &mut impl FnMut(&[u8], &[u8]) -> io::Result<()>) -> io::Result<()> {
        match self {
            AppMapper::WordCount(counts) => {
                let mut counter = counts.prefetching();
                for_each_word(line, |word| counter.add(word));
                drop(counter);
                if counts.len() >= COMBINE_KEYS {
                    flush_counts(counts, emit)?;
                }
            }
            AppMapper::Indexer { words, .. } => for_each_word(line, |word| {
                if !words.contains(word) {
                    words.insert(word.to_vec());
                }
            }),
            AppMapper::Grep { regex, count, .. } => {
                if regex.is_match(line) {
                    *count += 1;
                }
            }
            AppMapper::Sort => emit(line, b"")?,
        }
        Ok(())
    }

    /// Maps a run of whole lines (each ending in `\n` but perhaps the file's last one);
    /// returns how many lines it held. Word apps scan the run in one pass: a newline
    /// separates words like any other non-letter.
    pub fn map_lines(&mut self, run: &[u8], emit: &mut impl FnMut(&[u8], &[u8]) -> io::Result<()>) -> io::Result<u64> {
        let unended = u64::from(!run.is_empty() && !run.ends_with(b"\n"));
        match self {
            AppMapper::WordCount(_) | AppMapper::Indexer { .. } => {
                self.map(run, emit)?;
                Ok(memchr::memchr_iter(b'\n', run).count() as u64 + unended)
            }
            AppMapper::Grep { .. } | AppMapper::Sort => {
                // One pass: the newlines found split the lines and count them.
                let (mut start, mut lines) = (0, unended);
                for end in memchr::memchr_iter(b'\n', run) {
                    self.map(&run[start..end], emit)?;
                    start = end + 1;
                    lines += 1;
                }
                if start < run.len() {
                    self.map(&run[start..], emit)?;
                }
                Ok(lines)
            }
        }
    }

    /// Emits what the mapper combined.
    pub fn finish(self, emit: &mut impl FnMut(&[u8], &[u8]) -> io::Result<()>) -> io::Result<()> {
        match self {
            AppMapper::WordCount(mut counts) => flush_counts(&mut counts, emit),
            AppMapper::Indexer { doc, words } => words.iter().try_for_each(|w| emit(w, &doc)),
            AppMapper::Grep { path, count, .. } => emit(&path, count.to_string().as_bytes()),
            AppMapper::Sort => Ok(()),
        }
    }
}

fn flush_counts(counts: &mut WordCounts, emit: &mut impl FnMut(&[u8], &[u8]) -> io::Result<()>) -> io::Result<()> {
    let mut number = itoa_buf();
    for (word, count) in counts.iter() {
        emit(word, format_u64(&mut number, count))?;
    }
    counts.clear();
    Ok(())
}

fn itoa_buf() -> [u8; 20] {
    [0; 20]
}

fn format_u64(buf: &mut [u8; 20], mut n: u64) -> &[u8] {
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

/// A built-in app's reduce side: consumes a partition's records in key order and writes
/// the part file.
pub struct AppReducer<W: Write> {
    app: Builtin,
    out: W,
    key: Vec<u8>,
    sum: u64,
    docs: BTreeSet<Vec<u8>>,
    started: bool,
    /// Lines written.
    pub records: u64,
}

impl<W: Write> AppReducer<W> {
    /// A reducer for `app` writing to `out`.
    pub fn new(app: &Builtin, out: W) -> Self {
        Self {
            app: app.clone(),
            out,
            key: Vec::new(),
            sum: 0,
            docs: BTreeSet::new(),
            started: false,
            records: 0,
        }
    }

    /// Takes the next record; records come sorted by key.
    pub fn push(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        if let Builtin::Sort = self.app {
            self.out.write_all(key)?;
            self.records += 1;
            return self.out.write_all(b"\n");
        }
        if !self.started || key != self.key.as_slice() {
            self.flush_key()?;
            self.key.clear();
            self.key.extend_from_slice(key);
            self.started = true;
        }
        match self.app {
            Builtin::Indexer => {
                if !self.docs.contains(value) {
                    self.docs.insert(value.to_vec());
                }
            }
            _ => self.sum += parse_u64(value)?,
        }
        Ok(())
    }

    fn flush_key(&mut self) -> io::Result<()> {
        if !self.started {
            return Ok(());
        }
        self.out.write_all(&self.key)?;
        self.out.write_all(b"\t")?;
        match self.app {
            Builtin::Indexer => {
                write!(self.out, "{} ", self.docs.len())?;
                for (i, doc) in std::mem::take(&mut self.docs).iter().enumerate() {
                    if i > 0 {
                        self.out.write_all(b",")?;
                    }
                    self.out.write_all(doc)?;
                }
            }
            _ => {
                let mut buf = itoa_buf();
                self.out
                    .write_all(format_u64(&mut buf, std::mem::take(&mut self.sum)))?;
            }
        }
        self.records += 1;
        self.out.write_all(b"\n")
    }

    /// Writes the last key and returns the output.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        self.flush_key()?;
        self.out.flush()?;
        Ok((self.out, self.records))
    }
}

fn parse_u64(value: &[u8]) -> io::Result<u64> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "a count that is not a number"))
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

    /// What a mapper emits, sorted, for lines given one at a time or as runs.
    fn emitted(
        app: &Builtin,
        feed: impl FnOnce(&mut AppMapper, &mut dyn FnMut(&[u8], &[u8]) -> io::Result<()>),
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut records = Vec::new();
        let mut emit = |k: &[u8], v: &[u8]| {
            records.push((k.to_vec(), v.to_vec()));
            Ok(())
        };
        let mut mapper = AppMapper::new(app, &Location::local("/in/doc")).unwrap();
        feed(&mut mapper, &mut emit);
        mapper.finish(&mut emit).unwrap();
        records.sort();
        records
    }

    #[test]
    fn runs_of_lines_map_as_their_lines_do() {
        let text = b"b a\n\nc a\r\nlast";
        let apps = [
            Builtin::WordCount,
            Builtin::Indexer,
            Builtin::Sort,
            Builtin::Grep { pattern: "a$".into() },
        ];
        for app in apps {
            let by_line = emitted(&app, |mapper, emit| {
                for line in text.split(|&b| b == b'\n') {
                    mapper.map(line, &mut |k: &[u8], v: &[u8]| emit(k, v)).unwrap();
                }
            });
            let by_runs = emitted(&app, |mapper, emit| {
                let (first, second) = text.split_at(4); // "b a\n" and the rest
                assert_eq!(
                    mapper.map_lines(first, &mut |k: &[u8], v: &[u8]| emit(k, v)).unwrap(),
                    1
                );
                assert_eq!(
                    mapper.map_lines(second, &mut |k: &[u8], v: &[u8]| emit(k, v)).unwrap(),
                    3
                );
            });
            assert_eq!(by_runs, by_line, "{app:?}");
        }
    }

    #[test]
    fn invalid_utf8_separates_words() {
        let mut out = Vec::new();
        for_each_word(b"ab\xffcd", |w| out.push(w.to_vec()));
        assert_eq!(out, [b"ab".to_vec(), b"cd".to_vec()]);
    }

    #[test]
    fn reducers_write_tab_separated_lines() {
        let mut r = AppReducer::new(&Builtin::WordCount, Vec::new());
        for (k, v) in [("a", "2"), ("a", "3"), ("b", "1")] {
            r.push(k.as_bytes(), v.as_bytes()).unwrap();
        }
        let (out, records) = r.finish().unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "a\t5\nb\t1\n");
        assert_eq!(records, 2);

        let mut r = AppReducer::new(&Builtin::Indexer, Vec::new());
        for (k, v) in [("x", "d2"), ("x", "d1"), ("x", "d2"), ("y", "d1")] {
            r.push(k.as_bytes(), v.as_bytes()).unwrap();
        }
        let (out, _) = r.finish().unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "x\t2 d1,d2\ny\t1 d1\n");
    }
}
