//! A part file a streaming command wrote straight into (a reducer's, or a map-only job's
//! mapper's): ended with a newline if the command left its last line open, so that parts
//! concatenate into whole lines; made durable; its lines counted.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// Completes `part` after its command exited; returns its lines (its output records).
pub fn finish_part(mut part: File) -> io::Result<u64> {
    let length = part.seek(SeekFrom::End(0))?;
    if length > 0 {
        part.seek(SeekFrom::Start(length - 1))?;
        let mut last = [0u8];
        part.read_exact(&mut last)?;
        if last[0] != b'\n' {
            part.write_all(b"\n")?;
        }
    }
    part.sync_all()?;
    part.seek(SeekFrom::Start(0))?;
    let mut buf = vec![0u8; 256 << 10];
    let mut lines = 0;
    loop {
        let n = part.read(&mut buf)?;
        if n == 0 {
            return Ok(lines);
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(content: &[u8]) -> (Vec<u8>, u64) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("part-00000");
        std::fs::write(&path, content).unwrap();
        let file = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
        let lines = finish_part(file).unwrap();
        (std::fs::read(&path).unwrap(), lines)
    }

    #[test]
    fn an_open_last_line_is_closed_and_every_line_counts() {
        assert_eq!(finished(b"a\t1\nb\t2"), (b"a\t1\nb\t2\n".to_vec(), 2));
        assert_eq!(finished(b"a\t1\n"), (b"a\t1\n".to_vec(), 1));
        assert_eq!(finished(b""), (Vec::new(), 0), "an empty part stays empty");
    }
}
