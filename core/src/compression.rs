//! Compressed input files: `.gz` (every member of a multi-member file, as `gzip -d` reads
//! it) and `.zst` are read decompressed. Neither format can be entered in the middle, so a
//! compressed file is one split, read whole, as Hadoop does for codecs that cannot split.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

/// A compression format of input files, known by the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `.gz`: gzip, all members.
    Gzip,
    /// `.zst`: Zstandard, all frames.
    Zstd,
}

impl Compression {
    /// The format a file's name says it has, if any.
    pub fn of_path(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()? {
            "gz" => Some(Compression::Gzip),
            "zst" => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// Reads `file` decompressed.
    pub fn decoder(self, file: File) -> io::Result<Box<dyn Read + Send>> {
        let buffered = BufReader::with_capacity(256 << 10, file);
        Ok(match self {
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn every_gzip_member_and_zstd_frame_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("two-members.gz");
        let mut bytes = Vec::new();
        for part in ["first\n", "second\n"] {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(part.as_bytes()).unwrap();
            bytes.extend(encoder.finish().unwrap());
        }
        std::fs::write(&gz, bytes).unwrap();
        let zst = dir.path().join("lines.zst");
        std::fs::write(&zst, zstd::encode_all(&b"third\n"[..], 3).unwrap()).unwrap();
        let read = |path: &Path| {
            let mut text = String::new();
            let codec = Compression::of_path(path).unwrap();
            codec
                .decoder(File::open(path).unwrap())
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            text
        };
        assert_eq!(read(&gz), "first\nsecond\n");
        assert_eq!(read(&zst), "third\n");
        assert_eq!(Compression::of_path(Path::new("/a/b.txt")), None);
    }
}
