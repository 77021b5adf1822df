//! The intermediate record format of map output and shuffle: a varint key length, a varint
//! value length, then the bytes. Keys and values may hold any byte, tabs and newlines too.

use std::io::{self, BufRead, Read, Write};

/// Appends one record to `out`.
pub fn encode(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    put_varint(out, key.len() as u64);
    put_varint(out, value.len() as u64);
    out.extend_from_slice(key);
    out.extend_from_slice(value);
}

/// Writes one record to `out`.
pub fn write_record(out: &mut impl Write, key: &[u8], value: &[u8]) -> io::Result<()> {
    // The two lengths on the stack: a record is written millions of times a task.
    let (k, k_len) = varint_bytes(key.len() as u64);
    let (v, v_len) = varint_bytes(value.len() as u64);
    let mut header = [0u8; 20];
    header[..k_len].copy_from_slice(&k[..k_len]);
    header[k_len..k_len + v_len].copy_from_slice(&v[..v_len]);
    out.write_all(&header[..k_len + v_len])?;
    out.write_all(key)?;
    out.write_all(value)
}

fn put_varint(out: &mut Vec<u8>, n: u64) {
    let (bytes, len) = varint_bytes(n);
    out.extend_from_slice(&bytes[..len]);
}

/// `n` as a varint: its bytes, and how many of them it takes.
#[inline]
fn varint_bytes(mut n: u64) -> ([u8; 10], usize) {
    let (mut bytes, mut len) = ([0u8; 10], 0);
    while n >= 0x80 {
        bytes[len] = (n as u8) | 0x80;
        len += 1;
        n >>= 7;
    }
    bytes[len] = n as u8;
    (bytes, len + 1)
}

/// A varint at the start of `bytes`: its value and length, or `None` if `bytes` ends
/// inside it (or it runs past ten bytes).
#[inline]
fn parse_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut n = 0u64;
    for (i, &byte) in bytes.iter().take(10).enumerate() {
        n |= ((byte & 0x7f) as u64) << (7 * i);
        if byte < 0x80 {
            return Some((n, i + 1));
        }
    }
    None
}

/// The largest record a reader accepts: past it, the data is taken as damaged.
pub const MAX_RECORD_BYTES: u64 = 1 << 32;

fn cut_short() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "record cut short")
}

/// Reads records one at a time, reusing one buffer.
pub struct RecordReader<R> {
    input: R,
    buf: Vec<u8>,
    key_len: usize,
}

impl<R: BufRead> RecordReader<R> {
    /// Reads records from `input`.
    pub fn new(input: R) -> Self {
        Self {
            input,
            buf: Vec::new(),
            key_len: 0,
        }
    }

    /// Advances to the next record; false at the end of the input.
    pub fn advance(&mut self) -> io::Result<bool> {
        if self.advance_in_buffer()? {
            return Ok(true);
        }
        let Some(key_len) = self.varint(true)? else {
            return Ok(false);
        };
        let Some(value_len) = self.varint(false)? else {
            return Err(cut_short());
        };
        let total = key_len
            .checked_add(value_len)
            .filter(|n| *n <= MAX_RECORD_BYTES)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("a record of {key_len} + {value_len} bytes: the data is damaged"),
                )
            })?;
        // Grows with what is there: a damaged length cannot make it allocate what is not.
        self.buf.clear();
        (&mut self.input).take(total).read_to_end(&mut self.buf)?;
        if self.buf.len() as u64 != total {
            return Err(cut_short());
        }
        self.key_len = key_len as usize;
        Ok(true)
    }

    /// The fast path of [`Self::advance`]: the next record whole in the input's buffer,
    /// taken in one copy; false (nothing consumed) if it is not all there.
    #[inline]
    fn advance_in_buffer(&mut self) -> io::Result<bool> {
        let buffered = self.input.fill_buf()?;
        let Some((key_len, a)) = parse_varint(buffered) else {
            return Ok(false);
        };
        let Some((value_len, b)) = parse_varint(&buffered[a..]) else {
            return Ok(false);
        };
        let (header, total) = (a + b, key_len.saturating_add(value_len));
        if total > (buffered.len() - header) as u64 {
            return Ok(false);
        }
        let total = total as usize;
        self.buf.clear();
        self.buf.extend_from_slice(&buffered[header..header + total]);
        self.key_len = key_len as usize;
        self.input.consume(header + total);
        Ok(true)
    }

    /// The current record's key.
    pub fn key(&self) -> &[u8] {
        &self.buf[..self.key_len]
    }

    /// The current record's value.
    pub fn value(&self) -> &[u8] {
        &self.buf[self.key_len..]
    }

    /// Reads a varint; `None` at a clean end of input when `eof_ok`.
    fn varint(&mut self, eof_ok: bool) -> io::Result<Option<u64>> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let mut byte = [0u8];
            if self.input.read(&mut byte)? == 0 {
                if eof_ok && shift == 0 {
                    return Ok(None);
                }
                return Err(cut_short());
            }
            n |= ((byte[0] & 0x7f) as u64) << shift;
            if byte[0] < 0x80 {
                return Ok(Some(n));
            }
        }
        Err(io::Error::new(io::ErrorKind::InvalidData, "record length overflows"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_with_any_bytes() {
        let records: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (b"key".to_vec(), b"value".to_vec()),
            (b"".to_vec(), b"".to_vec()),
            (b"tab\there".to_vec(), b"new\nline".to_vec()),
            (vec![0xff; 300], vec![7; 20_000]),
        ];
        let mut encoded = Vec::new();
        for (k, v) in &records {
            encode(&mut encoded, k, v);
        }
        let mut written = Vec::new();
        for (k, v) in &records {
            write_record(&mut written, k, v).unwrap();
        }
        assert_eq!(encoded, written);
        let mut reader = RecordReader::new(&encoded[..]);
        let mut back = Vec::new();
        while reader.advance().unwrap() {
            back.push((reader.key().to_vec(), reader.value().to_vec()));
        }
        assert_eq!(back, records);
    }

    #[test]
    fn records_read_alike_whole_in_the_buffer_or_across_refills() {
        let records: Vec<(Vec<u8>, Vec<u8>)> = (0..200usize)
            .map(|i| (vec![b'k'; i % 13], vec![(i % 251) as u8; (i * 37) % 300]))
            .collect();
        let mut encoded = Vec::new();
        for (k, v) in &records {
            encode(&mut encoded, k, v);
        }
        for capacity in [1, 2, 3, 7, 64, 1000, 1 << 16] {
            let mut reader = RecordReader::new(io::BufReader::with_capacity(capacity, &encoded[..]));
            let mut back = Vec::new();
            while reader.advance().unwrap() {
                back.push((reader.key().to_vec(), reader.value().to_vec()));
            }
            assert_eq!(back, records, "buffer of {capacity} bytes");
        }
    }

    #[test]
    fn a_cut_record_is_an_error() {
        let mut encoded = Vec::new();
        encode(&mut encoded, b"key", b"value");
        encoded.pop();
        let mut reader = RecordReader::new(&encoded[..]);
        assert!(reader.advance().is_err());
        // Cut inside its lengths.
        let mut reader = RecordReader::new(&[0x85u8][..]);
        assert!(reader.advance().is_err());
    }

    #[test]
    fn a_damaged_length_is_an_error_not_an_allocation() {
        let mut damaged = Vec::new();
        put_varint(&mut damaged, u64::MAX / 2);
        put_varint(&mut damaged, 1);
        damaged.extend_from_slice(b"xy");
        let mut reader = RecordReader::new(&damaged[..]);
        assert_eq!(reader.advance().unwrap_err().kind(), io::ErrorKind::InvalidData);
        // Eleven bytes of continuation: no varint ends.
        let mut reader = RecordReader::new(&[0xffu8; 11][..]);
        assert_eq!(reader.advance().unwrap_err().kind(), io::ErrorKind::InvalidData);
    }
}
