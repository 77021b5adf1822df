//! The single-core limit of wordcount: the fastest single-threaded counter we can write, the
//! reference weft's per-core rate is held against. Counts maximal runs of alphabetic
//! characters (Rust's `char::is_alphabetic`, as weft's built-in app) and writes
//! `word<TAB>count` lines sorted bytewise.
//!
//! What makes it fast, as the published fastest word counters do: bytes are scanned with an
//! ASCII fast path (a class table; a character is decoded only at a non-ASCII byte, and one
//! of two or three bytes looked up in a table, `weft_worker::letters`, as weft's apps do), no
//! `String` or allocation is made per word, and words are counted in an open-addressing
//! table of small fixed entries over one arena of words (`weft_worker::word_counts`, the
//! table weft's own combining mapper counts into), each word's slot fetched into cache a few
//! words before it is counted.
//!
//!     wordcount-single OUTPUT-FILE INPUT...   (a directory means its files)

use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;

use weft_worker::word_counts::WordCounts as Counts;

/// Byte classes: an ASCII letter, any other ASCII byte, or the start of a non-ASCII char.
const LETTER: u8 = 1;
const OTHER: u8 = 0;
const WIDE: u8 = 2;

const CLASSES: [u8; 256] = {
    let mut classes = [WIDE; 256];
    let mut b = 0;
    while b < 128 {
        classes[b] = if (b as u8).is_ascii_alphabetic() { LETTER } else { OTHER };
        b += 1;
    }
    classes
};

/// Whether the character starting at `text[i]` (a non-ASCII byte) is alphabetic, and its
/// width in bytes (an invalid sequence counts as one non-letter of its lead byte's width).
fn wide_char(text: &[u8], i: usize) -> (bool, usize) {
    let width = match text[i] {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    };
    weft_worker::letters::wide_letter(&text[i..]).map_or((false, width), |(letter, _)| (letter, width))
}

fn count(text: &[u8], counts: &mut Counts) {
    let mut counts = counts.prefetching();
    let n = text.len();
    let mut i = 0;
    while i < n {
        // Skip to a word's start: ASCII non-letters in the fast loop.
        let class = CLASSES[text[i] as usize];
        if class == OTHER {
            i += 1;
            continue;
        }
        if class == WIDE {
            let (alphabetic, width) = wide_char(text, i);
            if !alphabetic {
                i += width;
                continue;
            }
        }
        // A word starts at i: ASCII letters in the fast loop, wide letters decoded.
        let start = i;
        loop {
            while i < n && CLASSES[text[i] as usize] == LETTER {
                i += 1;
            }
            if i < n && CLASSES[text[i] as usize] == WIDE {
                let (alphabetic, width) = wide_char(text, i);
                if alphabetic {
                    i += width;
                    continue;
                }
            }
            break;
        }
        counts.add(&text[start..i.min(n)]);
    }
}

fn files(inputs: &[String]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        let path = PathBuf::from(input);
        if path.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(&path)?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()?;
            inside.sort();
            files.extend(inside.into_iter().filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with(['.', '_']))
            }));
        } else {
            files.push(path);
        }
    }
    Ok(files)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(args.len() >= 2, "usage: wordcount-single OUTPUT-FILE INPUT...");
    let mut counts = Counts::new();
    let mut buffer = Vec::new();
    for file in files(&args[1..])? {
        buffer.clear();
        std::fs::File::open(&file)?.read_to_end(&mut buffer)?;
        count(&buffer, &mut counts);
    }
    let mut sorted: Vec<(&[u8], u64)> = counts.iter().collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&args[0])?);
    for (word, count) in sorted {
        out.write_all(word)?;
        writeln!(out, "\t{count}")?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(text: &str) -> Vec<(String, u64)> {
        let mut counts = Counts::new();
        count(text.as_bytes(), &mut counts);
        let mut words: Vec<(String, u64)> = counts
            .iter()
            .map(|(w, n)| (String::from_utf8(w.to_vec()).unwrap(), n))
            .collect();
        words.sort();
        words
    }

    #[test]
    fn words_are_runs_of_letters_ascii_or_not() {
        let got = counted("Über café, cafe; naïve 123 Москва\tМосква 東京 x2y ‿a");
        let want = [
            ("Über", 1),
            ("a", 1),
            ("cafe", 1),
            ("café", 1),
            ("naïve", 1),
            ("x", 1),
            ("y", 1),
            ("Москва", 2),
            ("東京", 1),
        ];
        let want: Vec<(String, u64)> = want.iter().map(|(w, n)| (w.to_string(), *n)).collect();
        let mut want = want;
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn the_table_grows_without_losing_a_count() {
        let text: String = (0..100_000).map(|i| format!("w{} ", to_letters(i))).collect();
        let got = counted(&format!("{text}{text}"));
        assert_eq!(got.len(), 100_000);
        assert!(got.iter().all(|(_, n)| *n == 2));
    }

    fn to_letters(mut i: usize) -> String {
        let mut s = String::new();
        loop {
            s.push((b'a' + (i % 26) as u8) as char);
            i /= 26;
            if i == 0 {
                return s;
            }
        }
    }
}
