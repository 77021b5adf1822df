//! Writing parts without rename. Object stores cannot rename atomically, so a part is made
//! the way Hadoop's S3A magic committer makes it: the coordinator begins a multipart upload
//! to the part's final key for each attempt that writes one ([`begin`]), the attempt uploads
//! its file's pieces into it ([`upload_file`]) and reports their tags, and the coordinator
//! completes the committed attempt's upload at job commit ([`complete`]) and aborts every
//! other ([`abort`]). A worker never completes an upload, so a zombie or a backup cannot
//! make a part the coordinator did not choose.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::multipart::{MultipartStore, PartId};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use weft_core::location::ObjectUrl;

use crate::client::{path, store, wait};
use crate::StorageError;

/// S3's smallest part but the last.
pub const MIN_PART: u64 = 5 << 20;
/// S3's most parts in one upload.
pub const MAX_PARTS: u64 = 10_000;
/// The part size weft uses for files that fit 10,000 of them.
const PART: u64 = 16 << 20;

/// The size of each piece (but the last) of a `length`-byte file: 16 MiB, or more for a
/// file too large for 10,000 of those.
pub fn piece_size(length: u64) -> u64 {
    PART.max(length.div_ceil(MAX_PARTS).next_multiple_of(1 << 20))
}

fn failed(url: &ObjectUrl) -> impl Fn(object_store::Error) -> StorageError + '_ {
    move |e| StorageError::of(e, &url.to_string(), &url.bucket)
}

/// Begins a multipart upload to `url`; returns its id.
pub fn begin(url: &ObjectUrl) -> Result<String, StorageError> {
    let store = store(&url.bucket)?;
    let url = url.clone();
    wait(async move { store.create_multipart(&path(&url)).await.map_err(failed(&url)) })
}

/// Uploads the file at `file` as the pieces of upload `id` to `url`; returns the pieces'
/// tags, in order. At most one piece is in memory at a time.
pub fn upload_file(url: &ObjectUrl, id: &str, file: &Path) -> Result<Vec<String>, StorageError> {
    let store = store(&url.bucket)?;
    let local = |e: std::io::Error| StorageError::Other {
        url: url.to_string(),
        detail: format!("reading {}: {e}", file.display()),
    };
    let mut input = File::open(file).map_err(local)?;
    let length = input.metadata().map_err(local)?.len();
    let piece = piece_size(length);
    let mut tags = Vec::new();
    let mut sent = 0;
    loop {
        let size = piece.min(length - sent) as usize;
        let mut bytes = vec![0u8; size];
        input.read_exact(&mut bytes).map_err(local)?;
        let (store, url_owned, id, index) = (store.clone(), url.clone(), id.to_string(), tags.len());
        let part = wait(async move {
            let payload = PutPayload::from(Bytes::from(bytes));
            store
                .put_part(&path(&url_owned), &id, index, payload)
                .await
                .map_err(failed(&url_owned))
        })?;
        tags.push(part.content_id);
        sent += size as u64;
        if sent >= length {
            return Ok(tags);
        }
    }
}

/// Completes upload `id` to `url` from its pieces' `tags`: the object appears whole.
pub fn complete(url: &ObjectUrl, id: &str, tags: &[String]) -> Result<(), StorageError> {
    let store = store(&url.bucket)?;
    let (url, id) = (url.clone(), id.to_string());
    let parts = tags.iter().map(|t| PartId { content_id: t.clone() }).collect();
    wait(async move {
        store
            .complete_multipart(&path(&url), &id, parts)
            .await
            .map(|_| ())
            .map_err(failed(&url))
    })
}

/// Aborts upload `id` to `url`; one that is gone already (completed or aborted) is fine.
pub fn abort(url: &ObjectUrl, id: &str) -> Result<(), StorageError> {
    let store = store(&url.bucket)?;
    let (url, id) = (url.clone(), id.to_string());
    wait(async move {
        match store.abort_multipart(&path(&url), &id).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(failed(&url)(e)),
        }
    })
}

/// Writes a small object (like `_SUCCESS`) in one request.
pub fn put(url: &ObjectUrl, bytes: Vec<u8>) -> Result<(), StorageError> {
    let store = store(&url.bucket)?;
    let url = url.clone();
    wait(async move {
        store
            .put(&path(&url), PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(failed(&url))
    })
}

/// Deletes the objects beneath `prefix` whose names `doomed` picks; returns how
/// many.
pub fn delete_beneath(
    prefix: &ObjectUrl,
    doomed: impl Fn(&str) -> bool + Send + 'static,
) -> Result<usize, StorageError> {
    let store = store(&prefix.bucket)?;
    let prefix = prefix.clone();
    wait(async move {
        let key = (!prefix.key.is_empty()).then(|| path(&prefix));
        let listed: Vec<_> = store.list(key.as_ref()).try_collect().await.map_err(failed(&prefix))?;
        let mut deleted = 0;
        for meta in listed {
            let name = meta.location.filename().unwrap_or_default().to_string();
            if doomed(&name) {
                store.delete(&meta.location).await.map_err(failed(&prefix))?;
                deleted += 1;
            }
        }
        Ok(deleted)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_keep_to_s3_s_limits() {
        assert_eq!(piece_size(0), 16 << 20);
        assert_eq!(piece_size(1 << 30), 16 << 20);
        for length in [160u64 << 30, 1 << 40, 5 << 40] {
            let piece = piece_size(length);
            assert!(piece >= MIN_PART);
            assert!(length.div_ceil(piece) <= MAX_PARTS, "{length}: {piece}");
        }
    }
}
