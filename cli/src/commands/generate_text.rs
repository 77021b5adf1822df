//! `weft generate-text`: sample input for trying weft and for tests and benchmarks: prose-like
//! lines of words drawn from a Zipf-distributed vocabulary, seeded so that runs repeat.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Flags of `weft generate-text`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write into.
    #[arg(long, value_name = "DIR")]
    output: PathBuf,
    /// Number of files.
    #[arg(long, default_value_t = 4)]
    files: u32,
    /// Size of each file, like 16MiB.
    #[arg(long, default_value = "4MiB", value_parser = weft_auth::flags::bytes)]
    size: u64,
    /// Distinct words.
    #[arg(long, default_value_t = 50_000)]
    vocabulary: usize,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Only ASCII letters in words (no ß, ö, ñ, é): the same as `--letters ascii`.
    #[arg(long, conflicts_with = "letters")]
    ascii: bool,
    /// Which letters words are made of: `ascii`, `latin` (ASCII with ß, ö, ñ, é) or `world`
    /// (Latin, Cyrillic and CJK syllables, as multilingual text mixes them).
    #[arg(long, value_enum, default_value = "latin")]
    letters: Letters,
}

/// The syllables words are made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Letters {
    /// ASCII letters only, so that tools that are not Unicode-aware split words the same way.
    Ascii,
    /// ASCII letters with a few accented Latin ones.
    Latin,
    /// Latin, Cyrillic and CJK.
    World,
}

impl Letters {
    fn syllables(self) -> &'static [&'static str] {
        match self {
            Letters::Ascii => &SYLLABLES[..ASCII_SYLLABLES],
            Letters::Latin => &SYLLABLES[..LATIN_SYLLABLES],
            Letters::World => &SYLLABLES,
        }
    }
}

/// Writes the sample text.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Args {
        output,
        files,
        size,
        vocabulary,
        seed,
        ascii,
        letters,
    } = args;
    let letters = if ascii { Letters::Ascii } else { letters };
    generate(&output, files, size, vocabulary.max(1), seed, letters)?;
    eprintln!("wrote {files} files of {size} bytes to {}", output.display());
    Ok(ExitCode::SUCCESS)
}

const SYLLABLES: [&str; 36] = [
    "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "an", "el", "or", "um", "be", "da", "fi", "go", "ha", "je", "qu",
    "wy", "zé", "ño", "ß", "ö", "да", "ни", "ко", "жи", "ще", "ры", "山", "水", "火", "木", "日", "語",
];
/// The syllables that are plain ASCII letters, for `--letters ascii`.
const ASCII_SYLLABLES: usize = 20;
/// The syllables of `--letters latin`.
const LATIN_SYLLABLES: usize = 24;
const PUNCTUATION: [&str; 6] = [",", ".", ";", "!", "?", " -"];

/// Writes `files` files of about `bytes_per_file` bytes each into `dir`, words made of
/// `letters`.
pub fn generate(
    dir: &Path,
    files: u32,
    bytes_per_file: u64,
    vocabulary: usize,
    seed: u64,
    letters: Letters,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut rng = StdRng::seed_from_u64(seed);
    let syllables = letters.syllables();
    let words: Vec<String> = (0..vocabulary).map(|i| word(i, syllables, &mut rng)).collect();
    // Zipf with s = 1.1: cumulative weights, sampled by binary search.
    let mut cumulative = Vec::with_capacity(vocabulary);
    let mut total = 0.0;
    for rank in 1..=vocabulary {
        total += 1.0 / (rank as f64).powf(1.1);
        cumulative.push(total);
    }
    for f in 0..files {
        let path = dir.join(format!("text-{f:04}.txt"));
        let mut out = BufWriter::new(File::create(&path).with_context(|| format!("cannot create {}", path.display()))?);
        let mut written = 0u64;
        while written < bytes_per_file {
            let mut line = String::new();
            let length = rng.random_range(0..16usize) + rng.random_range(0..16usize);
            for i in 0..length {
                let pick = rng.random_range(0.0..total);
                let w = &words[cumulative.partition_point(|c| *c < pick).min(vocabulary - 1)];
                if i == 0 || rng.random_range(0..12) == 0 {
                    capitalize(w, &mut line);
                } else {
                    line.push_str(w);
                }
                if rng.random_range(0..8) == 0 {
                    line.push_str(PUNCTUATION[rng.random_range(0..PUNCTUATION.len())]);
                }
                line.push(' ');
            }
            line.pop();
            line.push('\n');
            out.write_all(line.as_bytes())?;
            written += line.len() as u64;
        }
        out.flush()?;
    }
    Ok(())
}

fn word(index: usize, syllables: &[&str], rng: &mut StdRng) -> String {
    let count = 1 + index.to_string().len() / 2 + rng.random_range(0..2);
    (0..count)
        .map(|_| syllables[rng.random_range(0..syllables.len())])
        .collect()
}

fn capitalize(word: &str, out: &mut String) {
    let mut chars = word.chars();
    if let Some(first) = chars.next() {
        out.extend(first.to_uppercase());
        out.push_str(chars.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_repeats_with_the_seed() {
        let dir = tempfile::tempdir().unwrap();
        generate(&dir.path().join("a"), 2, 5000, 1000, 7, Letters::Latin).unwrap();
        generate(&dir.path().join("b"), 2, 5000, 1000, 7, Letters::Latin).unwrap();
        let a = std::fs::read(dir.path().join("a/text-0001.txt")).unwrap();
        let b = std::fs::read(dir.path().join("b/text-0001.txt")).unwrap();
        assert_eq!(a, b);
        assert!(a.len() >= 5000);
    }

    #[test]
    fn ascii_text_has_only_ascii() {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), 1, 20_000, 1000, 3, Letters::Ascii).unwrap();
        let text = std::fs::read(dir.path().join("text-0000.txt")).unwrap();
        assert!(text.is_ascii());
        assert!(SYLLABLES[..ASCII_SYLLABLES].iter().all(|s| s.is_ascii()));
        assert!(!SYLLABLES[ASCII_SYLLABLES].is_ascii());
    }

    #[test]
    fn world_text_mixes_scripts_and_latin_text_has_no_cyrillic_or_cjk() {
        let dir = tempfile::tempdir().unwrap();
        generate(&dir.path().join("world"), 1, 50_000, 1000, 3, Letters::World).unwrap();
        generate(&dir.path().join("latin"), 1, 50_000, 1000, 3, Letters::Latin).unwrap();
        let world = std::fs::read_to_string(dir.path().join("world/text-0000.txt")).unwrap();
        let latin = std::fs::read_to_string(dir.path().join("latin/text-0000.txt")).unwrap();
        let cyrillic = |c: char| ('\u{400}'..='\u{4ff}').contains(&c);
        let cjk = |c: char| ('\u{4e00}'..='\u{9fff}').contains(&c);
        assert!(world.chars().any(cyrillic) && world.chars().any(cjk) && world.chars().any(|c| c == 'ß'));
        assert!(!latin.chars().any(|c| cyrillic(c) || cjk(c)) && !latin.is_ascii());
        assert!(SYLLABLES.iter().all(|s| s.chars().all(char::is_alphabetic)));
    }
}
