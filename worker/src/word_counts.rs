//! A table of word counts built for speed on large vocabularies: open addressing (linear
//! probing, a power-of-two size, grown at half full) over 32-byte entries (hash, count, a
//! word of up to 8 bytes in the entry itself, a longer one in one arena), so that a lookup
//! of a short word touches one cache line and nothing else, bytes are compared only on a
//! full hash match, and no word is its own allocation. A [`Prefetching`] counter fetches a
//! word's slot into cache as the word comes and counts it a few words later, so that the
//! misses of a vocabulary larger than the cache overlap. The wordcount's combining mapper
//! counts through one; so does the single-thread reference in `bench/`.

use std::hash::BuildHasher;

/// One counted word: 32 bytes, two to a cache line.
#[derive(Clone, Copy, Default)]
#[repr(C, align(32))]
struct Entry {
    hash: u64,
    count: u64,
    /// A word of up to `INLINE` bytes, zero-padded; a longer word's first bytes.
    inline: [u8; INLINE],
    /// Where a longer word is in the arena.
    offset: u32,
    /// `0`: an empty slot.
    len: u32,
}

const INLINE: usize = 8;

/// A word's first `INLINE` bytes, zero-padded (compared as one machine word).
#[inline]
fn prefix(word: &[u8]) -> [u8; INLINE] {
    let mut bytes = [0u8; INLINE];
    let n = word.len().min(INLINE);
    bytes[..n].copy_from_slice(&word[..n]);
    bytes
}

/// Words and how often each was added.
pub struct WordCounts {
    entries: Vec<Entry>,
    arena: Vec<u8>,
    used: usize,
    hasher: foldhash::fast::FixedState,
}

const INITIAL_SLOTS: usize = 1 << 16;

impl Default for WordCounts {
    fn default() -> Self {
        Self::new()
    }
}

impl WordCounts {
    pub fn new() -> Self {
        Self {
            entries: vec![Entry::default(); INITIAL_SLOTS],
            arena: Vec::with_capacity(1 << 20),
            used: 0,
            hasher: foldhash::fast::FixedState::with_seed(0x5eed),
        }
    }

    /// Distinct words held.
    pub fn len(&self) -> usize {
        self.used
    }

    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// Counts one more of `word` (not empty).
    #[inline]
    pub fn add(&mut self, word: &[u8]) {
        self.add_hashed(word, self.hasher.hash_one(word));
    }

    /// Counts words added to the returned counter a few words late, each word's slot fetched
    /// into cache when it is added: with a vocabulary larger than the cache most lookups
    /// miss, and this way the misses overlap instead of waiting one behind another. Every
    /// word is counted once the counter is dropped.
    pub fn prefetching<'t>(&mut self) -> Prefetching<'t, '_> {
        Prefetching {
            counts: self,
            ring: [(&[][..], 0); AHEAD],
            next: 0,
            held: 0,
        }
    }

    /// Where `hash`'s probe starts, fetched into cache.
    #[inline]
    fn prefetch(&self, hash: u64) {
        let entry = &self.entries[hash as usize & (self.entries.len() - 1)];
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint to the cache; it reads nothing the program sees and
        // does not fault, and the address is an entry of the table anyway.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((entry as *const Entry).cast::<i8>());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = entry;
    }

    #[inline]
    fn add_hashed(&mut self, word: &[u8], hash: u64) {
        debug_assert!(!word.is_empty());
        let inline = prefix(word);
        let mask = self.entries.len() - 1;
        let mut slot = hash as usize & mask;
        let (entries, arena) = (&mut self.entries, &self.arena);
        loop {
            let entry = &mut entries[slot];
            if entry.len == 0 {
                break;
            }
            if entry.hash == hash
                && entry.inline == inline
                && entry.len as usize == word.len()
                && (word.len() <= INLINE || &arena[entry.offset as usize..entry.offset as usize + word.len()] == word)
            {
                entry.count += 1;
                return;
            }
            slot = (slot + 1) & mask;
        }
        let mut offset = 0;
        if word.len() > INLINE {
            offset = u32::try_from(self.arena.len()).expect("a word table's arena stays under 4 GiB");
            self.arena.extend_from_slice(word);
        }
        self.entries[slot] = Entry {
            hash,
            count: 1,
            inline,
            offset,
            len: word.len() as u32,
        };
        self.used += 1;
        if self.used * 2 > self.entries.len() {
            self.grow();
        }
    }

    fn grow(&mut self) {
        let size = self.entries.len() * 2;
        let old = std::mem::replace(&mut self.entries, vec![Entry::default(); size]);
        let mask = size - 1;
        for entry in old.into_iter().filter(|e| e.len > 0) {
            let mut slot = entry.hash as usize & mask;
            while self.entries[slot].len != 0 {
                slot = (slot + 1) & mask;
            }
            self.entries[slot] = entry;
        }
    }

    /// Every word and its count, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], u64)> {
        self.entries
            .iter()
            .filter(|e| e.len > 0)
            .map(|e| (self.word(e), e.count))
    }

    /// Empties the table, keeping its memory.
    pub fn clear(&mut self) {
        self.entries.fill(Entry::default());
        self.arena.clear();
        self.used = 0;
    }

    fn word<'a>(&'a self, entry: &'a Entry) -> &'a [u8] {
        let len = entry.len as usize;
        if len <= INLINE {
            &entry.inline[..len]
        } else {
            &self.arena[entry.offset as usize..entry.offset as usize + len]
        }
    }
}

/// How many words a [`Prefetching`] counter holds back: enough to cover a miss to memory
/// while the scanner finds the next words.
const AHEAD: usize = 16;

/// A counter into a [`WordCounts`] that fetches each word's slot when the word comes and
/// counts it `AHEAD` words later (see [`WordCounts::prefetching`]).
pub struct Prefetching<'t, 'c> {
    counts: &'c mut WordCounts,
    /// Words added and not yet counted, with their hashes.
    ring: [(&'t [u8], u64); AHEAD],
    next: usize,
    held: usize,
}

impl<'t> Prefetching<'t, '_> {
    /// Counts one more of `word` (not empty), soon.
    #[inline]
    pub fn add(&mut self, word: &'t [u8]) {
        let hash = self.counts.hasher.hash_one(word);
        self.counts.prefetch(hash);
        let (due, due_hash) = std::mem::replace(&mut self.ring[self.next], (word, hash));
        if self.held == AHEAD {
            self.counts.add_hashed(due, due_hash);
        } else {
            self.held += 1;
        }
        self.next = (self.next + 1) % AHEAD;
    }
}

impl Drop for Prefetching<'_, '_> {
    fn drop(&mut self) {
        // The oldest held word is the next slot's when the ring is full, else the first.
        let first = if self.held == AHEAD { self.next } else { 0 };
        for i in 0..self.held {
            let (word, hash) = self.ring[(first + i) % AHEAD];
            self.counts.add_hashed(word, hash);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(counts: &WordCounts) -> Vec<(Vec<u8>, u64)> {
        let mut words: Vec<(Vec<u8>, u64)> = counts.iter().map(|(w, n)| (w.to_vec(), n)).collect();
        words.sort();
        words
    }

    #[test]
    fn counts_each_word_and_grows_without_losing_a_count() {
        let mut counts = WordCounts::new();
        let words: Vec<String> = (0..200_000).map(|i| format!("w{i}")).collect();
        for _ in 0..2 {
            for w in &words {
                counts.add(w.as_bytes());
            }
        }
        counts.add(b"w7");
        assert_eq!(counts.len(), 200_000);
        let got = sorted(&counts);
        assert_eq!(got.len(), 200_000);
        assert!(got.iter().all(|(w, n)| *n == if w == b"w7" { 3 } else { 2 }));
    }

    #[test]
    fn a_prefetching_counter_counts_every_word_it_was_given_once_dropped() {
        let words: Vec<String> = (0..150_000).map(|i| format!("w{}", i % 70_000)).collect();
        for taken in [0, 1, AHEAD - 1, AHEAD, AHEAD + 1, 3 * AHEAD + 5, words.len()] {
            let (mut plain, mut prefetched) = (WordCounts::new(), WordCounts::new());
            let mut counter = prefetched.prefetching();
            for w in &words[..taken] {
                plain.add(w.as_bytes());
                counter.add(w.as_bytes());
            }
            drop(counter);
            assert_eq!(sorted(&prefetched), sorted(&plain), "{taken} words");
        }
    }

    #[test]
    fn a_cleared_table_counts_afresh() {
        let mut counts = WordCounts::new();
        counts.add("Москва".as_bytes());
        counts.add(b"a");
        counts.clear();
        assert!(counts.is_empty());
        counts.add(b"a");
        assert_eq!(sorted(&counts), vec![(b"a".to_vec(), 1)]);
    }
}
