//! What every kind of program's reduce shares: draining the merged records of a partition,
//! and the counters of what it read.

use std::io::{self, BufRead};

use weft_core::merge::Merger;
use weft_core::status::counters::REDUCE_INPUT_RECORDS;

use crate::process::{Counters, KillSwitch};

/// The counters of a reduce that read `n` records.
pub fn input_records(n: u64) -> Counters {
    Counters::from([(REDUCE_INPUT_RECORDS.to_string(), n)])
}

/// Feeds every record of `merger` to `take`, in order; returns how many there were.
pub fn drain<R: BufRead>(
    mut merger: Merger<R>,
    switch: &KillSwitch,
    mut take: impl FnMut(&[u8], &[u8]) -> io::Result<()>,
) -> io::Result<u64> {
    let mut n = 0u64;
    while merger.advance()? {
        take(merger.key(), merger.value())?;
        n += 1;
        if n.is_multiple_of(4096) {
            switch.check()?;
        }
    }
    Ok(n)
}
