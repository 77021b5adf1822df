//! Compressed files: inputs ending in `.gz` (every member of a multi-member file, as
//! `gzip -d` reads it) and `.zst` are read decompressed; neither format can be entered in the
//! middle, so a compressed file is one split, read whole, as Hadoop does for codecs that
//! cannot split. Parts are written compressed on request (`--output-compression`).

use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use crate::location::Location;

/// A compression format of files, known by the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `.gz`: gzip, all members.
    Gzip,
    /// `.zst`: Zstandard, all frames.
    Zstd,
}

impl Compression {
    /// The format a file or object's name says it has, if any.
    pub fn of_location(location: &Location) -> Option<Self> {
        Self::of_file(Path::new(&*location.file_name()))
    }

    /// The format a file's name says it has, if any.
    pub fn of_file(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()? {
            "gz" => Some(Compression::Gzip),
            "zst" => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// The format `--output-compression` names: `gzip` (or `gz`), `zstd` (or `zst`).
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "gzip" | "gz" => Some(Compression::Gzip),
            "zstd" | "zst" => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// Its name, as `--output-compression` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// The extension of files in this format, with its dot: `.gz`, `.zst`.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Gzip => ".gz",
            Compression::Zstd => ".zst",
        }
    }

    /// Reads `input` decompressed.
    pub fn decoder(self, input: impl Read + Send + 'static) -> io::Result<Box<dyn Read + Send>> {
        let buffered = BufReader::with_capacity(256 << 10, input);
        Ok(match self {
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
        })
    }

    /// Writes compressed into `output`; [`Encoder::finish`] ends the stream.
    pub fn encoder<W: Write>(self, output: W) -> io::Result<Encoder<W>> {
        Ok(match self {
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(output, flate2::Compression::default())),
            Compression::Zstd => Encoder::Zstd(zstd::stream::write::Encoder::new(output, 3)?),
        })
    }
}

/// A stream being compressed, or passed through as it is.
pub enum Encoder<W: Write> {
    /// gzip, at the default level (6).
    Gzip(flate2::write::GzEncoder<W>),
    /// Zstandard, at the default level (3).
    Zstd(zstd::stream::write::Encoder<'static, W>),
    /// Not compressed.
    Plain(W),
}

impl<W: Write> Encoder<W> {
    /// `output` compressed as `compression` says, or as it is.
    pub fn new(output: W, compression: Option<Compression>) -> io::Result<Self> {
        match compression {
            Some(codec) => codec.encoder(output),
            None => Ok(Encoder::Plain(output)),
        }
    }

    /// Ends the compressed stream; returns the writer beneath.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
            Encoder::Plain(mut w) => {
                w.flush()?;
                Ok(w)
            }
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
            Encoder::Plain(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.write_all(buf),
            Encoder::Zstd(e) => e.write_all(buf),
            Encoder::Plain(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
            Encoder::Plain(w) => w.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;

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
            let codec = Compression::of_file(path).unwrap();
            codec
                .decoder(File::open(path).unwrap())
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            text
        };
        assert_eq!(read(&gz), "first\nsecond\n");
        assert_eq!(read(&zst), "third\n");
        assert_eq!(Compression::of_file(Path::new("/a/b.txt")), None);
    }

    #[test]
    fn what_an_encoder_writes_its_decoder_reads() {
        for codec in [Compression::Gzip, Compression::Zstd] {
            let mut encoder = codec.encoder(Vec::new()).unwrap();
            encoder.write_all(b"a\t1\nb\t2\n").unwrap();
            let bytes = encoder.finish().unwrap();
            let mut text = String::new();
            codec
                .decoder(io::Cursor::new(bytes))
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            assert_eq!(text, "a\t1\nb\t2\n", "{codec:?}");
            assert_eq!(Compression::named(codec.name()), Some(codec));
            assert_eq!(
                Compression::of_file(Path::new(&format!("part-00000{}", codec.extension()))),
                Some(codec)
            );
        }
        assert_eq!(Compression::named("lzo"), None);
    }
}
