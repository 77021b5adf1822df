//! The objects an input URL stands for, as a directory stands for its files: the object
//! itself if the key names one; else the objects directly beneath the prefix (every one
//! beneath it, `--recursive`); a key with a wildcard (`s3://logs/2026-11-*`) matches as a
//! glob (a wildcard matches across `/`). Names starting with `_` or `.` (markers like `_SUCCESS`, hidden files) are skipped.

use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use weft_core::location::ObjectUrl;

use crate::client::{path, store, wait};
use crate::StorageError;

/// The objects `url` stands for, with their sizes, sorted by key.
pub fn list_objects(url: &ObjectUrl, recursive: bool) -> Result<Vec<(ObjectUrl, u64)>, StorageError> {
    let store = store(&url.bucket)?;
    let url = url.clone();
    wait(async move {
        let failed = |e| StorageError::of(e, &url.to_string(), &url.bucket);
        let wildcard = url.key.find(['*', '?', '[']);
        let pattern = match wildcard {
            Some(_) => Some(glob::Pattern::new(&url.key).map_err(|e| StorageError::Other {
                url: url.to_string(),
                detail: format!("bad pattern: {e}"),
            })?),
            None => None,
        };
        if pattern.is_none() && !url.key.is_empty() {
            match store.head(&path(&url)).await {
                Ok(meta) => return Ok(vec![(url.clone(), meta.size)]),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(failed(e)),
            }
        }
        // Everything beneath the literal part of the key.
        let base = match wildcard {
            Some(at) => url.key[..at].rsplit_once('/').map_or("", |(dir, _)| dir).to_string(),
            None => url.key.clone(),
        };
        let prefix = (!base.is_empty()).then(|| object_store::path::Path::from(base.as_str()));
        let metas: Vec<_> = if recursive || pattern.is_some() {
            store.list(prefix.as_ref()).try_collect().await.map_err(failed)?
        } else {
            store
                .list_with_delimiter(prefix.as_ref())
                .await
                .map_err(failed)?
                .objects
        };
        let mut objects = Vec::new();
        for meta in metas {
            let key = meta.location.to_string();
            let relative = key.strip_prefix(&base).unwrap_or(&key).trim_start_matches('/');
            if relative.split('/').any(|segment| segment.starts_with(['_', '.'])) || key.ends_with('/') {
                continue;
            }
            if pattern.as_ref().is_some_and(|pattern| !pattern.matches(&key)) {
                continue;
            }
            let object = ObjectUrl {
                bucket: url.bucket.clone(),
                key,
            };
            objects.push((object, meta.size));
        }
        if objects.is_empty() {
            return Err(StorageError::NotFound(url.to_string()));
        }
        objects.sort();
        Ok(objects)
    })
}
