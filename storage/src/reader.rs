//! Reading objects: a range of an object as a blocking `Read` that streams (a bounded queue
//! of the response's chunks between the request and the reader, so memory stays flat
//! whatever the object's size), and a split's lines read through it by the rule splits
//! follow on files (skip the line the split starts inside, finish the last one past its
//! end).

use std::io::{self, BufReader, Read};

use bytes::Bytes;
use futures::StreamExt;
use object_store::{GetOptions, GetRange, ObjectStore};
use weft_core::compression::Compression;
use weft_core::location::ObjectUrl;
use weft_core::split::{AnyLines, Split, SplitLines};

use crate::client::{path, spawn, store};
use crate::StorageError;

/// Chunks of a response held between its request and its reader: with the chunks a
/// server's HTTP frames make (16–64 KiB), a few MiB at most.
const QUEUED_CHUNKS: usize = 64;

/// An object from byte `from` to its end, as it arrives.
pub struct ObjectReader {
    chunks: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl ObjectReader {
    /// Starts reading `url` from byte `from`.
    pub fn open(url: &ObjectUrl, from: u64) -> Result<Self, StorageError> {
        let store = store(&url.bucket)?;
        let (tx, rx) = tokio::sync::mpsc::channel(QUEUED_CHUNKS);
        let url = url.clone();
        spawn(async move {
            let options = GetOptions {
                range: (from > 0).then_some(GetRange::Offset(from)),
                ..GetOptions::default()
            };
            let mut stream = match store.get_opts(&path(&url), options).await {
                Ok(result) => result.into_stream(),
                Err(e) => {
                    let _ = tx
                        .send(Err(StorageError::of(e, &url.to_string(), &url.bucket).into()))
                        .await;
                    return;
                }
            };
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| StorageError::of(e, &url.to_string(), &url.bucket).into());
                // Waits while the queue is full; a reader gone ends the request.
                if tx.send(chunk).await.is_err() {
                    return;
                }
            }
        });
        Ok(Self {
            chunks: rx,
            current: Bytes::new(),
        })
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            // Parks this (blocking) thread until the next chunk; callable anywhere.
            match futures::executor::block_on(self.chunks.recv()) {
                Some(chunk) => self.current = chunk?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// The lines `split` owns of object `url` (its file); a compressed object is read whole,
/// decompressed.
pub fn open_lines(url: &ObjectUrl, split: &Split) -> io::Result<AnyLines> {
    if let Some(codec) = Compression::of_location(&split.file) {
        let decoded = codec.decoder(ObjectReader::open(url, 0)?)?;
        return Ok(SplitLines::whole(Box::new(BufReader::with_capacity(
            256 << 10,
            decoded,
        ))));
    }
    let reader = ObjectReader::open(url, split.start.saturating_sub(1))?;
    let lines = SplitLines::positioned(BufReader::with_capacity(256 << 10, reader), split.start, split.length)?;
    Ok(lines.boxed())
}

/// The bytes of the lines `split` owns of object `url` (decompressed, for a compressed
/// object), for a streaming mapper's stdin.
pub fn open_range(url: &ObjectUrl, split: &Split) -> io::Result<Box<dyn Read + Send>> {
    Ok(Box::new(LinesRead {
        lines: open_lines(url, split)?,
        run: Vec::new(),
        at: 0,
    }))
}

/// A split's lines as bytes again.
struct LinesRead {
    lines: AnyLines,
    run: Vec<u8>,
    at: usize,
}

impl Read for LinesRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.run.len() {
            self.run.clear();
            self.at = 0;
            match self.lines.next_lines()? {
                Some(run) => self.run.extend_from_slice(run),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.run.len() - self.at);
        buf[..n].copy_from_slice(&self.run[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
