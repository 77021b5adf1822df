//! Input splits: cutting files into byte ranges, and reading the lines a range owns.
//!
//! A line belongs to the split in which its first byte lies, so a split's reader skips the
//! line it starts in the middle of and reads past its end to finish its last line
//! (Hadoop's `LineRecordReader` rule): no line is cut, none is read twice.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::compression::Compression;
use crate::location::Location;

/// A byte range of one input file: the input of one map task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The file or object.
    pub file: Location,
    /// First byte of the range.
    pub start: u64,
    /// Bytes in the range.
    pub length: u64,
}

/// How far past the split size a file's last split may run rather than leave a small split
/// of its own (Hadoop's `SPLIT_SLOP`): a file of 1.05 × the split size is one task, not two.
pub const SPLIT_SLOP: f64 = 1.1;

/// Cuts each `(file, size)` into ranges of `split_size` bytes, the last one up to
/// [`SPLIT_SLOP`] times that; empty files give none, and a compressed one is one split.
pub fn plan_splits(files: &[(Location, u64)], split_size: u64) -> Vec<Split> {
    assert!(split_size > 0, "split size is validated before planning");
    let mut splits = Vec::new();
    for (file, size) in files {
        if Compression::of_location(file).is_some() {
            // A compressed file cannot be entered in the middle: one split, read whole.
            if *size > 0 {
                splits.push(Split {
                    file: file.clone(),
                    start: 0,
                    length: *size,
                });
            }
            continue;
        }
        let mut start = 0;
        while start < *size {
            let left = size - start;
            let length = if left as f64 > split_size as f64 * SPLIT_SLOP {
                split_size
            } else {
                left
            };
            splits.push(Split {
                file: file.clone(),
                start,
                length,
            });
            start += length;
        }
    }
    splits
}

/// Like [`plan_splits`], with files smaller than `combine` bytes packed together, whole and
/// in order, into map inputs of about `combine` bytes each (Hadoop's
/// `CombineFileInputFormat`): each map input is its first split and the whole files after it.
pub fn plan_packed_splits(files: &[(Location, u64)], split_size: u64, combine: u64) -> Vec<(Split, Vec<Split>)> {
    let (small, large): (Vec<_>, Vec<_>) = files.iter().cloned().partition(|(_, size)| *size < combine);
    let mut inputs: Vec<(Split, Vec<Split>)> = plan_splits(&large, split_size)
        .into_iter()
        .map(|split| (split, Vec::new()))
        .collect();
    let mut pack: Vec<Split> = Vec::new();
    let mut packed = 0;
    for (file, size) in small {
        if size == 0 {
            continue;
        }
        pack.push(Split {
            file,
            start: 0,
            length: size,
        });
        packed += size;
        if packed >= combine {
            let mut pieces = std::mem::take(&mut pack).into_iter();
            inputs.push((pieces.next().expect("a piece"), pieces.collect()));
            packed = 0;
        }
    }
    let mut pieces = pack.into_iter();
    if let Some(first) = pieces.next() {
        inputs.push((first, pieces.collect()));
    }
    inputs
}

/// Reads the lines a split owns, without their `\n`.
pub struct SplitLines<R> {
    reader: R,
    begin: u64,
    pos: u64,
    end: u64,
    /// Bytes of the reader's buffer the last line took, consumed before the next.
    taken: usize,
    /// A line that ran past the reader's buffer, put together here.
    long_line: Vec<u8>,
}

/// Lines from any reader, for files read whole (compressed ones) or in part.
pub type AnyLines = SplitLines<Box<dyn BufRead + Send>>;

impl AnyLines {
    /// Opens `split`'s file positioned at the first line the split owns (a compressed file,
    /// which is one split, is read whole and decompressed).
    pub fn open(path: &Path, split: &Split) -> io::Result<Self> {
        Self::in_file(File::open(path)?, split)
    }

    /// Reads `split`'s lines from `file`, its file opened already.
    pub fn in_file(file: File, split: &Split) -> io::Result<Self> {
        if let Some(codec) = Compression::of_location(&split.file) {
            let decoded = BufReader::with_capacity(256 << 10, codec.decoder(file)?);
            return Ok(SplitLines::whole(Box::new(decoded)));
        }
        let lines = SplitLines::new(BufReader::with_capacity(256 << 10, file), split.start, split.length)?;
        Ok(lines.boxed())
    }
}

impl<R: BufRead> SplitLines<R> {
    /// Every line of `reader`, from its start.
    pub fn whole(reader: R) -> Self {
        Self {
            reader,
            begin: 0,
            pos: 0,
            end: u64::MAX,
            taken: 0,
            long_line: Vec::new(),
        }
    }
}

impl<R: BufRead + Send + 'static> SplitLines<R> {
    /// The same lines through a boxed reader.
    pub fn boxed(self) -> AnyLines {
        SplitLines {
            reader: Box::new(self.reader),
            begin: self.begin,
            pos: self.pos,
            end: self.end,
            taken: self.taken,
            long_line: self.long_line,
        }
    }
}

impl<R: BufRead + Seek> SplitLines<R> {
    /// Reads the lines of `reader` that start in `[start, start + length)`.
    pub fn new(mut reader: R, start: u64, length: u64) -> io::Result<Self> {
        reader.seek(SeekFrom::Start(start.saturating_sub(1)))?;
        Self::positioned(reader, start, length)
    }
}

impl<R: BufRead> SplitLines<R> {
    /// Reads the lines that start in `[start, start + length)` from `reader`, which is
    /// positioned at byte `start - 1` of its file (at 0 if `start` is 0): a stream of a range
    /// of an object, say, which cannot seek.
    pub fn positioned(mut reader: R, start: u64, length: u64) -> io::Result<Self> {
        let mut pos = start;
        if start > 0 {
            // The line that holds byte start-1 belongs to an earlier split.
            let mut skipped = Vec::new();
            pos = start - 1 + reader.read_until(b'\n', &mut skipped)? as u64;
        }
        Ok(Self {
            reader,
            begin: pos,
            pos,
            end: start + length,
            taken: 0,
            long_line: Vec::new(),
        })
    }
}

impl<R: BufRead> SplitLines<R> {
    /// The next line, without its `\n`, or `None` when the split is done. The line is read
    /// in place from the reader's buffer, copied only when it runs past the buffer's end.
    pub fn next_line(&mut self) -> io::Result<Option<&[u8]>> {
        let line = self.next_run(|buffer, _| memchr::memchr(b'\n', buffer).map(|at| at + 1))?;
        Ok(line.map(|line| line.strip_suffix(b"\n").unwrap_or(line)))
    }

    /// The next run of whole lines the split owns, each with its `\n` (a file's last line
    /// may lack one), or `None` when the split is done: a buffer's worth at a time, read in
    /// place, for maps that need no line boundaries (a line longer than the buffer is
    /// copied and comes alone).
    pub fn next_lines(&mut self) -> io::Result<Option<&[u8]>> {
        self.next_run(|buffer, owned| {
            // Lines that start in buffer[..owned] are the split's; the last of them ends at
            // the first newline at or after owned - 1 (as in line_range).
            match memchr::memchr(b'\n', &buffer[owned - 1..]) {
                Some(at) => Some(owned + at),
                None => memchr::memrchr(b'\n', buffer).map(|at| at + 1),
            }
        })
    }

    /// The next whole lines: `cut(buffer, owned)` says how many bytes of the reader's buffer
    /// to take (ending in a newline), given that lines starting in `buffer[..owned]` are the
    /// split's; `None` takes one line, copied past the buffer's end.
    fn next_run(&mut self, cut: impl FnOnce(&[u8], usize) -> Option<usize>) -> io::Result<Option<&[u8]>> {
        self.reader.consume(std::mem::take(&mut self.taken));
        if self.pos >= self.end {
            return Ok(None);
        }
        let cut = {
            let buffer = self.reader.fill_buf()?;
            if buffer.is_empty() {
                return Ok(None);
            }
            let owned = usize::try_from(self.end - self.pos).map_or(buffer.len(), |n| n.min(buffer.len()));
            cut(buffer, owned)
        };
        if let Some(cut) = cut {
            self.taken = cut;
            self.pos += cut as u64;
            // The same buffer again: fill_buf reads nothing while it holds unconsumed bytes.
            return Ok(Some(&self.reader.fill_buf()?[..cut]));
        }
        self.long_line.clear();
        self.pos += self.reader.read_until(b'\n', &mut self.long_line)? as u64;
        Ok(Some(&self.long_line))
    }

    /// The file position after the last line read.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Bytes of the lines read so far.
    pub fn bytes_read(&self) -> u64 {
        self.pos - self.begin
    }
}

/// The exact byte range `[begin, end)` holding the lines `split` owns (what
/// [`SplitLines`] reads) in `file`, `split`'s file opened already, so the range can be
/// copied as it is.
pub fn line_range_in(file: &File, split: &Split) -> io::Result<(u64, u64)> {
    let mut reader = BufReader::new(file);
    line_range_of(&mut reader, split.start, split.length)
}

fn line_range_of<R: BufRead + Seek>(reader: &mut R, start: u64, length: u64) -> io::Result<(u64, u64)> {
    let begin = SplitLines::new(&mut *reader, start, length)?.position();
    let end = start + length;
    if begin >= end {
        return Ok((begin, begin));
    }
    // The last line owned starts before `end` and runs to the first newline at or after end-1.
    reader.seek(SeekFrom::Start(end - 1))?;
    let mut rest = Vec::new();
    let read = reader.read_until(b'\n', &mut rest)? as u64;
    Ok((begin, end - 1 + read))
}

/// The files a list of inputs stands for, with their sizes: files as they are; a
/// directory's regular files (not hidden, not starting with `_`) sorted by name, and with
/// `recursive` those of its subdirectories too (skipping such names at every level); a
/// glob (`*`, `?`, `[...]` in a path that does not exist as written) the paths it matches,
/// each expanded in turn.
pub fn expand_inputs(inputs: &[PathBuf], recursive: bool) -> Result<Vec<(PathBuf, u64)>, InputError> {
    let mut files = Vec::new();
    for input in inputs {
        if is_glob(input) && !input.exists() {
            let matches = glob_matches(input)?;
            if matches.is_empty() {
                return Err(InputError::NoMatch(input.clone()));
            }
            for path in matches {
                add_input(&path, recursive, &mut files)?;
            }
        } else {
            add_input(input, recursive, &mut files)?;
        }
    }
    if files.is_empty() {
        return Err(InputError::NoFiles(inputs.to_vec()));
    }
    Ok(files)
}

/// Whether a path holds a glob's special characters.
pub fn is_glob(path: &Path) -> bool {
    path.to_str().is_some_and(|p| p.contains(['*', '?', '[']))
}

fn glob_matches(pattern: &Path) -> Result<Vec<PathBuf>, InputError> {
    let text = pattern.to_str().unwrap_or_default();
    let bad = |e: glob::PatternError| InputError::BadGlob {
        pattern: text.to_string(),
        reason: e.msg.to_string(),
    };
    let options = glob::MatchOptions {
        require_literal_leading_dot: true,
        ..glob::MatchOptions::new()
    };
    let mut matches = Vec::new();
    for entry in glob::glob_with(text, options).map_err(bad)? {
        let path = entry.map_err(|e| InputError::Unreadable {
            path: e.path().to_path_buf(),
            source: io::Error::new(e.error().kind(), e.error().to_string()),
        })?;
        matches.push(path);
    }
    matches.sort();
    Ok(matches)
}

fn add_input(input: &Path, recursive: bool, files: &mut Vec<(PathBuf, u64)>) -> Result<(), InputError> {
    let unreadable = |path: &Path| {
        let path = path.to_path_buf();
        move |source| InputError::Unreadable { path, source }
    };
    let meta = std::fs::metadata(input).map_err(unreadable(input))?;
    if !meta.is_dir() {
        files.push((absolute(input), meta.len()));
        return Ok(());
    }
    let mut found = Vec::new();
    let mut subdirs = Vec::new();
    for entry in std::fs::read_dir(input).map_err(unreadable(input))? {
        let entry = entry.map_err(unreadable(input))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        let path = entry.path();
        let meta = std::fs::metadata(&path).map_err(unreadable(&path))?;
        if meta.is_file() {
            found.push((absolute(&path), meta.len()));
        } else if meta.is_dir() && recursive {
            subdirs.push(path);
        }
    }
    found.sort();
    files.extend(found);
    subdirs.sort();
    for dir in subdirs {
        add_input(&dir, true, files)?;
    }
    Ok(())
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Why the inputs of a job cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A path that does not exist or cannot be read.
    #[error("cannot read input {path}: {source}")]
    Unreadable {
        /// The path.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// Directories with no file in them.
    #[error("no input files in {0:?} (a directory stands for the files directly in it; --recursive takes its subdirectories too)")]
    NoFiles(Vec<PathBuf>),
    /// A glob that matches nothing.
    #[error("no input matches {0}")]
    NoMatch(PathBuf),
    /// A glob that does not parse.
    #[error("bad glob {pattern:?}: {reason}")]
    BadGlob {
        /// The glob.
        pattern: String,
        /// What is wrong.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// The lines a split reads, through a buffer so small that most lines run past it.
    fn lines_of(data: &[u8], start: u64, length: u64) -> Vec<Vec<u8>> {
        let buffered = BufReader::with_capacity(4, Cursor::new(data.to_vec()));
        let mut reader = SplitLines::new(buffered, start, length).unwrap();
        let mut out = Vec::new();
        while let Some(line) = reader.next_line().unwrap() {
            out.push(line.to_vec());
        }
        out
    }

    #[test]
    fn planning_covers_every_byte_once() {
        let splits = plan_splits(
            &[
                (Location::local("a"), 10),
                (Location::local("b"), 0),
                (Location::local("c"), 3),
            ],
            4,
        );
        let ranges: Vec<_> = splits.iter().map(|s| (s.file.to_text(), s.start, s.length)).collect();
        assert_eq!(
            ranges,
            vec![
                ("a".to_string(), 0, 4),
                ("a".to_string(), 4, 4),
                ("a".to_string(), 8, 2),
                ("c".to_string(), 0, 3)
            ]
        );
    }

    #[test]
    fn a_last_split_within_the_slop_joins_the_one_before() {
        let lengths = |size, split_size| -> Vec<u64> {
            plan_splits(&[(Location::local("f"), size)], split_size)
                .iter()
                .map(|s| s.length)
                .collect()
        };
        assert_eq!(lengths(105, 100), vec![105], "5% over the split size: one split");
        assert_eq!(lengths(110, 100), vec![110]);
        assert_eq!(lengths(111, 100), vec![100, 11]);
        assert_eq!(lengths(305, 100), vec![100, 100, 105]);
    }

    /// Every way of cutting these texts gives back each line exactly once, uncut.
    #[test]
    fn no_line_is_cut_or_repeated_whatever_the_split_size() {
        let texts: [&[u8]; 5] = [
            b"alpha\nbeta\n\ngamma delta\nepsilon",
            b"a\nb\nc\n",
            b"\n\n\n",
            b"one long line without a newline",
            b"x\n\ny\r\nlast\n",
        ];
        for text in texts {
            let whole = lines_of(text, 0, text.len() as u64);
            for split_size in 1..=text.len() as u64 + 1 {
                let splits = plan_splits(&[(Location::local("t"), text.len() as u64)], split_size);
                let joined: Vec<Vec<u8>> = splits.iter().flat_map(|s| lines_of(text, s.start, s.length)).collect();
                assert_eq!(
                    joined,
                    whole,
                    "split size {split_size} of {:?}",
                    String::from_utf8_lossy(text)
                );
            }
        }
    }

    /// Runs of lines, whatever the buffer and split sizes, are exactly the split's lines.
    #[test]
    fn runs_of_lines_are_exactly_the_bytes_a_split_owns() {
        let texts: [&[u8]; 4] = [
            b"alpha\nbeta\n\ngamma delta\nepsilon",
            b"a\nb\nc\n",
            b"\n\n\n",
            b"one long line without a newline",
        ];
        for text in texts {
            for capacity in [1, 2, 3, 5, 8, 64] {
                for split_size in 1..=text.len() as u64 + 1 {
                    let mut joined = Vec::new();
                    for split in plan_splits(&[(Location::local("t"), text.len() as u64)], split_size) {
                        let (begin, end) =
                            line_range_of(&mut Cursor::new(text.to_vec()), split.start, split.length).unwrap();
                        let buffered = BufReader::with_capacity(capacity, Cursor::new(text.to_vec()));
                        let mut reader = SplitLines::new(buffered, split.start, split.length).unwrap();
                        let mut runs = Vec::new();
                        while let Some(run) = reader.next_lines().unwrap() {
                            runs.extend_from_slice(run);
                        }
                        let context = format!("{split:?}, buffer {capacity}, {:?}", String::from_utf8_lossy(text));
                        assert_eq!(runs, &text[begin as usize..end as usize], "{context}");
                        assert_eq!(reader.bytes_read(), end - begin, "{context}");
                        joined.extend(runs);
                    }
                    assert_eq!(joined, text, "split size {split_size}, buffer {capacity}");
                }
            }
        }
    }

    #[test]
    fn line_ranges_hold_exactly_the_lines_a_split_reads() {
        let text = b"alpha\nbeta\n\ngamma delta\nepsilon";
        for split_size in 1..=text.len() as u64 {
            for split in plan_splits(&[(Location::local("t"), text.len() as u64)], split_size) {
                let (begin, end) = line_range_of(&mut Cursor::new(text.to_vec()), split.start, split.length).unwrap();
                let mut expected = Vec::new();
                for line in lines_of(text, split.start, split.length) {
                    expected.extend_from_slice(&line);
                    expected.push(b'\n');
                }
                let got = &text[begin as usize..end as usize];
                let got_lines = String::from_utf8_lossy(got).trim_end_matches('\n').to_string();
                let expected_lines = String::from_utf8_lossy(&expected).trim_end_matches('\n').to_string();
                assert_eq!(got_lines, expected_lines, "split {split:?}");
            }
        }
    }

    #[test]
    fn a_split_starting_on_a_line_start_owns_that_line() {
        let text = b"ab\ncd\nef\n";
        assert_eq!(lines_of(text, 3, 3), vec![b"cd".to_vec()]);
        assert_eq!(lines_of(text, 4, 3), vec![b"ef".to_vec()]);
    }

    #[test]
    fn directories_expand_to_their_visible_files_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.txt"), "bb").unwrap();
        std::fs::write(dir.path().join("a.txt"), "a").unwrap();
        std::fs::write(dir.path().join("_SUCCESS"), "").unwrap();
        std::fs::write(dir.path().join(".hidden"), "h").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let files = expand_inputs(&[dir.path().to_path_buf()], false).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|(p, n)| (p.file_name().unwrap().to_str().unwrap().to_string(), *n))
            .collect();
        assert_eq!(names, vec![("a.txt".to_string(), 1), ("b.txt".to_string(), 2)]);
        let missing = expand_inputs(&[dir.path().join("nope")], false).unwrap_err();
        assert!(missing.to_string().contains("nope"), "{missing}");
    }

    #[test]
    fn small_files_pack_into_inputs_of_about_the_combine_size() {
        let files: Vec<(Location, u64)> = (0..10)
            .map(|i| (Location::local(format!("/s{i}")), 30))
            .chain([(Location::local("/big"), 210), (Location::local("/empty"), 0)])
            .collect();
        let inputs = plan_packed_splits(&files, 100, 100);
        let shape: Vec<usize> = inputs.iter().map(|(_, more)| 1 + more.len()).collect();
        // The big file in splits of 100 and 110 (the slop), then packs of 4, 4 and 2 files.
        assert_eq!(shape, [1, 1, 4, 4, 2]);
        assert_eq!((inputs[1].0.start, inputs[1].0.length), (100, 110));
        let packed: u64 = inputs[2..]
            .iter()
            .flat_map(|(s, more)| std::iter::once(s).chain(more))
            .map(|s| s.length)
            .sum();
        assert_eq!(packed, 300);
    }

    #[test]
    fn trees_and_globs_expand_skipping_hidden_names_at_every_level() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for path in [
            "2026-11-01/a",
            "2026-11-01/_tmp/x",
            "2026-11-02/deep/b",
            "2026-11-02/.git/c",
            "2026-10-31/d",
        ] {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "line\n").unwrap();
        }
        let names = |files: Vec<(PathBuf, u64)>| -> Vec<String> {
            files
                .iter()
                .map(|(p, _)| p.strip_prefix(root).unwrap().to_str().unwrap().to_string())
                .collect()
        };
        let tree = expand_inputs(&[root.to_path_buf()], true).unwrap();
        assert_eq!(names(tree), ["2026-10-31/d", "2026-11-01/a", "2026-11-02/deep/b"]);
        let flat = expand_inputs(&[root.to_path_buf()], false).unwrap_err();
        assert!(flat.to_string().contains("--recursive"), "{flat}");
        let november = expand_inputs(&[root.join("2026-11-*")], true).unwrap();
        assert_eq!(names(november), ["2026-11-01/a", "2026-11-02/deep/b"]);
        let none = expand_inputs(&[root.join("2027-*")], true).unwrap_err();
        assert!(none.to_string().contains("no input matches"), "{none}");
    }
}
