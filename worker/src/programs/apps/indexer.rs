//! indexer: word, `N doc1,doc2,...`: the documents (input files' base names) each word is
//! in, and how many.

use std::collections::BTreeSet;
use std::io::{self, Write};

// A fast hash, seeded per process: SipHash was a fifth of wordcount's map time.
use foldhash::{HashSet, HashSetExt};
use weft_core::app::App;
use weft_core::location::Location;

use super::{count_lines, for_each_word, AppError, CurrentKey, Emit, LineApp, LineMapper, LineReducer};

/// The indexer app.
pub struct Indexer;

impl LineApp for Indexer {
    type Mapper = WordsOfDoc;
    type Reducer<W: Write> = DocsByWord<W>;

    fn mapper(&self, _: &App, file: &Location) -> Result<WordsOfDoc, AppError> {
        let doc = match file {
            Location::Local(path) => path
                .file_name()
                .map_or_else(Vec::new, |n| n.as_encoded_bytes().to_vec()),
            Location::Object(url) => url.file_name().as_bytes().to_vec(),
        };
        Ok(WordsOfDoc {
            doc,
            words: HashSet::new(),
        })
    }

    fn reducer<W: Write>(&self, _: &App, out: W) -> DocsByWord<W> {
        DocsByWord {
            out,
            word: CurrentKey::default(),
            docs: BTreeSet::new(),
            lines: 0,
        }
    }
}

/// The words seen in a split of one document.
pub struct WordsOfDoc {
    /// The file's base name.
    doc: Vec<u8>,
    words: HashSet<Vec<u8>>,
}

impl LineMapper for WordsOfDoc {
    fn map_lines(&mut self, run: &[u8], _: &mut impl Emit) -> io::Result<u64> {
        let words = &mut self.words;
        for_each_word(run, |word| {
            if !words.contains(word) {
                words.insert(word.to_vec());
            }
        });
        Ok(count_lines(run))
    }

    fn finish(self, emit: &mut impl Emit) -> io::Result<()> {
        self.words.iter().try_for_each(|w| emit(w, &self.doc))
    }
}

/// word, `N doc1,doc2,...`.
pub struct DocsByWord<W> {
    out: W,
    word: CurrentKey,
    docs: BTreeSet<Vec<u8>>,
    lines: u64,
}

impl<W: Write> DocsByWord<W> {
    fn flush_word(&mut self) -> io::Result<()> {
        let Some(word) = self.word.get() else {
            return Ok(());
        };
        self.out.write_all(word)?;
        write!(self.out, "\t{} ", self.docs.len())?;
        for (i, doc) in std::mem::take(&mut self.docs).iter().enumerate() {
            if i > 0 {
                self.out.write_all(b",")?;
            }
            self.out.write_all(doc)?;
        }
        self.lines += 1;
        self.out.write_all(b"\n")
    }
}

impl<W: Write> LineReducer<W> for DocsByWord<W> {
    fn push(&mut self, word: &[u8], doc: &[u8]) -> io::Result<()> {
        if self.word.is_new(word) {
            self.flush_word()?;
            self.word.begin(word);
        }
        if !self.docs.contains(doc) {
            self.docs.insert(doc.to_vec());
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<(W, u64)> {
        self.flush_word()?;
        self.out.flush()?;
        Ok((self.out, self.lines))
    }
}
