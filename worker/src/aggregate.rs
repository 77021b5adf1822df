//! The built-in `aggregate` reducer and combiner, in the spirit of Hadoop's Aggregate
//! package: `--reducer aggregate` (and `--combiner aggregate`) runs in the worker, no
//! process started. A mapper names the aggregation in each key, `TYPE:key<TAB>value`:
//!
//! - `LongValueSum`, `LongValueMax`, `LongValueMin`: integers; `DoubleValueSum`: numbers;
//! - `StringValueMax`, `StringValueMin`: bytewise;
//! - `UniqValueCount`: how many distinct values;
//! - `ValueHistogram`: values (optionally `value<TAB>count`), reported as Hadoop does:
//!   `distinct<TAB>min<TAB>median<TAB>max<TAB>mean<TAB>stddev` of the counts per value.
//!
//! The reducer writes `key<TAB>result`; the combiner writes records the reducer reads again
//! (`TYPE:key<TAB>partial`).

use std::collections::BTreeMap;
use std::io;

/// The command that names the built-in.
pub const COMMAND: &str = "aggregate";

/// Whether a streaming command is the built-in aggregate.
pub fn is_aggregate(command: &str) -> bool {
    command.trim() == COMMAND
}

/// The aggregation types, as keys name them.
const TYPES: [&str; 8] = [
    "LongValueSum",
    "LongValueMax",
    "LongValueMin",
    "DoubleValueSum",
    "StringValueMax",
    "StringValueMin",
    "UniqValueCount",
    "ValueHistogram",
];

/// One key's aggregation so far.
enum Partial {
    LongSum(i64),
    LongMax(i64),
    LongMin(i64),
    DoubleSum(f64),
    StringMax(Vec<u8>),
    StringMin(Vec<u8>),
    Uniq(std::collections::BTreeSet<Vec<u8>>),
    Histogram(BTreeMap<Vec<u8>, u64>),
}

/// Reduces (or combines) sorted records key by key, handing each result to `emit` as a key
/// and a value.
pub struct Aggregate<F: FnMut(&[u8], &[u8]) -> io::Result<()>> {
    emit: F,
    /// Whether it writes partial records for a reducer (a combiner) or results.
    combining: bool,
    current: Option<(Vec<u8>, usize, Partial)>,
    /// Records written.
    pub written: u64,
}

fn bad(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("aggregate: {message}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn integer(value: &[u8]) -> io::Result<i64> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| bad(format!("{:?} is not an integer", text(value))))
}

fn number(value: &[u8]) -> io::Result<f64> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| bad(format!("{:?} is not a number", text(value))))
}

impl Partial {
    fn start(kind: &str, value: &[u8]) -> io::Result<Self> {
        let mut partial = match kind {
            "LongValueSum" => Partial::LongSum(0),
            "LongValueMax" => Partial::LongMax(i64::MIN),
            "LongValueMin" => Partial::LongMin(i64::MAX),
            "DoubleValueSum" => Partial::DoubleSum(0.0),
            "StringValueMax" => Partial::StringMax(value.to_vec()),
            "StringValueMin" => Partial::StringMin(value.to_vec()),
            "UniqValueCount" => Partial::Uniq(Default::default()),
            _ => Partial::Histogram(BTreeMap::new()),
        };
        partial.add(value)?;
        Ok(partial)
    }

    fn add(&mut self, value: &[u8]) -> io::Result<()> {
        match self {
            Partial::LongSum(sum) => *sum = sum.saturating_add(integer(value)?),
            Partial::LongMax(max) => *max = (*max).max(integer(value)?),
            Partial::LongMin(min) => *min = (*min).min(integer(value)?),
            Partial::DoubleSum(sum) => *sum += number(value)?,
            Partial::StringMax(max) if value > max.as_slice() => *max = value.to_vec(),
            Partial::StringMin(min) if value < min.as_slice() => *min = value.to_vec(),
            Partial::StringMax(_) | Partial::StringMin(_) => {}
            Partial::Uniq(seen) => {
                seen.insert(value.to_vec());
            }
            Partial::Histogram(counts) => {
                let (item, count) = match value.iter().rposition(|&b| b == b'\t') {
                    Some(tab) => (&value[..tab], integer(&value[tab + 1..])?.max(0) as u64),
                    None => (value, 1),
                };
                *counts.entry(item.to_vec()).or_default() += count;
            }
        }
        Ok(())
    }

    /// The values a combiner passes on: one for most types, one per distinct value for
    /// the counting ones.
    fn partials(&self) -> Vec<Vec<u8>> {
        match self {
            Partial::Uniq(seen) => seen.iter().cloned().collect(),
            Partial::Histogram(counts) => counts
                .iter()
                .map(|(item, n)| [item.as_slice(), b"\t", n.to_string().as_bytes()].concat())
                .collect(),
            other => vec![other.result()],
        }
    }

    /// The final value.
    fn result(&self) -> Vec<u8> {
        match self {
            Partial::LongSum(n) | Partial::LongMax(n) | Partial::LongMin(n) => n.to_string().into_bytes(),
            Partial::DoubleSum(x) => format!("{x:?}").into_bytes(),
            Partial::StringMax(s) | Partial::StringMin(s) => s.clone(),
            Partial::Uniq(seen) => seen.len().to_string().into_bytes(),
            Partial::Histogram(counts) => histogram_report(counts.values().copied().collect()).into_bytes(),
        }
    }
}

/// Hadoop's `ValueHistogram` report of the counts per distinct value: how many distinct
/// values, then the least, median (`counts[n / 2]` sorted), greatest and mean count, and
/// the population standard deviation.
fn histogram_report(mut counts: Vec<u64>) -> String {
    counts.sort_unstable();
    let n = counts.len();
    if n == 0 {
        return "0".into();
    }
    let mean = counts.iter().sum::<u64>() as f64 / n as f64;
    let variance = counts.iter().map(|&c| (c as f64 - mean).powi(2)).sum::<f64>() / n as f64;
    format!(
        "{n}\t{}\t{}\t{}\t{mean:?}\t{:?}",
        counts[0],
        counts[n / 2],
        counts[n - 1],
        variance.sqrt()
    )
}

impl<F: FnMut(&[u8], &[u8]) -> io::Result<()>> Aggregate<F> {
    /// A reducer (`combining` false) or combiner handing its records to `emit`.
    pub fn new(emit: F, combining: bool) -> Self {
        Self {
            emit,
            combining,
            current: None,
            written: 0,
        }
    }

    /// Takes the next record; records come sorted by key.
    pub fn push(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        if let Some((current, _, partial)) = &mut self.current {
            if current.as_slice() == key {
                return partial.add(value);
            }
        }
        self.flush_key()?;
        let colon = key
            .iter()
            .position(|&b| b == b':')
            .filter(|&c| std::str::from_utf8(&key[..c]).is_ok_and(|kind| TYPES.contains(&kind)))
            .ok_or_else(|| {
                bad(format!(
                    "key {:?} names no aggregation: start it with one of {}, and a colon",
                    text(key),
                    TYPES.join(", ")
                ))
            })?;
        let kind = std::str::from_utf8(&key[..colon]).expect("checked above");
        self.current = Some((key.to_vec(), colon, Partial::start(kind, value)?));
        Ok(())
    }

    fn flush_key(&mut self) -> io::Result<()> {
        let Some((key, colon, partial)) = self.current.take() else {
            return Ok(());
        };
        if self.combining {
            for value in partial.partials() {
                self.write(&key, &value)?;
            }
        } else {
            self.write(&key[colon + 1..], &partial.result())?;
        }
        Ok(())
    }

    fn write(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        (self.emit)(key, value)?;
        self.written += 1;
        Ok(())
    }

    /// Hands on the last key; returns the records emitted.
    pub fn finish(mut self) -> io::Result<u64> {
        self.flush_key()?;
        Ok(self.written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(records: &[(&str, &str)], combining: bool) -> String {
        let mut out = String::new();
        let emit = |k: &[u8], v: &[u8]| {
            out += &format!("{}\t{}\n", text(k), text(v));
            Ok(())
        };
        let mut aggregate = Aggregate::new(emit, combining);
        for (k, v) in records {
            aggregate.push(k.as_bytes(), v.as_bytes()).unwrap();
        }
        aggregate.finish().unwrap();
        out
    }

    #[test]
    fn each_type_reduces_as_hadoop_does() {
        let records = [
            ("LongValueMax:a", "3"),
            ("LongValueMax:a", "-7"),
            ("LongValueSum:w", "2"),
            ("LongValueSum:w", "5"),
            ("UniqValueCount:u", "x"),
            ("UniqValueCount:u", "y"),
            ("UniqValueCount:u", "x"),
            ("ValueHistogram:h", "a"),
            ("ValueHistogram:h", "a"),
            ("ValueHistogram:h", "b\t3"),
            ("ValueHistogram:h", "c"),
        ];
        let out = run(&records, false);
        assert_eq!(out, "a\t3\nw\t7\nu\t2\nh\t3\t1\t2\t3\t2.0\t0.816496580927726\n");
    }

    #[test]
    fn a_combiner_passes_on_what_the_reducer_reads_again() {
        let first = run(
            &[
                ("UniqValueCount:u", "x"),
                ("UniqValueCount:u", "x"),
                ("UniqValueCount:u", "y"),
            ],
            true,
        );
        assert_eq!(first, "UniqValueCount:u\tx\nUniqValueCount:u\ty\n");
        let sums = run(&[("LongValueSum:w", "2"), ("LongValueSum:w", "5")], true);
        assert_eq!(sums, "LongValueSum:w\t7\n");
    }

    #[test]
    fn a_key_without_a_type_or_a_bad_number_fails_clearly() {
        let mut aggregate = Aggregate::new(|_: &[u8], _: &[u8]| Ok(()), false);
        let err = aggregate.push(b"word", b"1").unwrap_err().to_string();
        assert!(
            err.contains("names no aggregation") && err.contains("LongValueSum"),
            "{err}"
        );
        let err = aggregate.push(b"LongValueSum:w", b"many").unwrap_err().to_string();
        assert!(err.contains("not an integer"), "{err}");
    }
}
