//! The single-core limit of wordcount: reads every file, counts maximal runs of alphabetic
//! characters (Rust's `char::is_alphabetic`, as weft's built-in app) in one hash map with a
//! fast hash, and writes `word<TAB>count` lines sorted bytewise.
//!
//!     wordcount-single OUTPUT-FILE INPUT...   (a directory means its files)

use std::collections::HashMap;
use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;

/// foldhash: the fastest hash for short keys we know (faster than FxHash here).
type Counts = HashMap<Box<[u8]>, u64, foldhash::fast::RandomState>;

fn count(text: &[u8], counts: &mut Counts) {
    let mut i = 0;
    let mut start = None;
    while i < text.len() {
        let b = text[i];
        let (alphabetic, width) = if b < 0x80 {
            (b.is_ascii_alphabetic(), 1)
        } else {
            let width = match b {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                _ => 4,
            };
            let end = (i + width).min(text.len());
            let c = std::str::from_utf8(&text[i..end]).ok().and_then(|s| s.chars().next());
            (c.is_some_and(char::is_alphabetic), width)
        };
        match (alphabetic, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                add(&text[s..i], counts);
                start = None;
            }
            _ => {}
        }
        i += width;
    }
    if let Some(s) = start {
        add(&text[s..], counts);
    }
}

fn add(word: &[u8], counts: &mut Counts) {
    match counts.get_mut(word) {
        Some(n) => *n += 1,
        None => {
            counts.insert(word.into(), 1);
        }
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
            files.extend(inside);
        } else {
            files.push(path);
        }
    }
    Ok(files)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(args.len() >= 2, "usage: wordcount-single OUTPUT-FILE INPUT...");
    let mut counts = Counts::default();
    let mut buffer = Vec::new();
    for file in files(&args[1..])? {
        buffer.clear();
        std::fs::File::open(&file)?.read_to_end(&mut buffer)?;
        count(&buffer, &mut counts);
    }
    let mut sorted: Vec<(Box<[u8]>, u64)> = counts.into_iter().collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&args[0])?);
    for (word, n) in sorted {
        out.write_all(&word)?;
        writeln!(out, "\t{n}")?;
    }
    out.flush()?;
    Ok(())
}
