//! The output committer for an object-store prefix, where there is no rename: every attempt
//! that writes a part gets a multipart upload to the part's final key, begun here; the
//! attempt fills it and reports its pieces' tags; at job commit the committed attempts'
//! uploads are completed, then `_SUCCESS` is written, and every other upload (losers,
//! failed attempts) is aborted. A job that ends without succeeding aborts them all and
//! deletes any part it completed. Workers never complete an upload, so the first attempt
//! to commit is the only one whose bytes can become the part.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use weft_core::location::ObjectUrl;
use weft_core::work::AttemptId;
use weft_storage::{upload, StorageError};

use super::names::{is_part_name, part_name, SUCCESS_MARKER};
use crate::store::UploadRecord;

/// A job's output prefix and the uploads begun into it.
#[derive(Debug)]
pub struct ObjectOutput {
    prefix: ObjectUrl,
    suffix: &'static str,
    uploads: Mutex<Uploads>,
}

#[derive(Debug, Default)]
struct Uploads {
    /// Every upload begun and not yet completed or aborted, by attempt.
    open: HashMap<AttemptId, Upload>,
    /// The committed attempt of each part, and its pieces' tags.
    committed: BTreeMap<u32, (AttemptId, Vec<String>)>,
}

#[derive(Debug, Clone)]
struct Upload {
    part: u32,
    id: String,
}

impl ObjectOutput {
    /// The output at `prefix`, whose parts end in `suffix`.
    pub fn new(prefix: ObjectUrl, suffix: &'static str) -> Self {
        Self {
            prefix,
            suffix,
            uploads: Mutex::default(),
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &ObjectUrl {
        &self.prefix
    }

    /// Part `part`'s object.
    pub fn part_url(&self, part: u32) -> ObjectUrl {
        self.prefix.join(&part_name(part, self.suffix))
    }

    fn abort_all(&self, uploads: impl Iterator<Item = Upload>) {
        for upload in uploads {
            let url = self.part_url(upload.part);
            if let Err(e) = upload::abort(&url, &upload.id) {
                tracing::warn!(part = %url, error = %e, "cannot abort an upload: a bucket lifecycle rule must");
            }
        }
    }

    /// Begins `attempt`'s upload of part `part`: returns the part's URL and the upload's id.
    pub fn begin(&self, part: u32, attempt: AttemptId) -> Result<(ObjectUrl, String), StorageError> {
        let url = self.part_url(part);
        let id = upload::begin(&url)?;
        let upload = Upload { part, id: id.clone() };
        self.uploads.lock().expect("uploads lock").open.insert(attempt, upload);
        Ok((url, id))
    }

    /// Records that `attempt` is part `part`'s committed attempt, with its pieces' tags.
    pub fn commit(&self, part: u32, attempt: AttemptId, tags: Vec<String>) {
        let mut uploads = self.uploads.lock().expect("uploads lock");
        uploads.committed.insert(part, (attempt, tags));
    }

    /// Takes back, after a restart, an upload whose attempt had committed: it is completed
    /// at job commit, and its task is not run again.
    pub fn restore(&self, upload: &UploadRecord, tags: Vec<String>) {
        let mut uploads = self.uploads.lock().expect("uploads lock");
        let open = Upload {
            part: upload.part,
            id: upload.id.clone(),
        };
        uploads.open.insert(upload.attempt, open);
        uploads.committed.insert(upload.part, (upload.attempt, tags));
    }

    /// Whether part `part` has a committed upload.
    pub fn has_committed(&self, part: u32) -> bool {
        self.uploads.lock().expect("uploads lock").committed.contains_key(&part)
    }

    /// Completes the committed uploads, aborts the rest, writes `_SUCCESS`; each step only
    /// while `may_act` (this coordinator leads): one that stops leading midway leaves the
    /// rest to its successor, which completes them from the store.
    pub fn succeed(&self, may_act: &dyn Fn() -> bool) -> Result<(), StorageError> {
        let stop = |url: &ObjectUrl| StorageError::Other {
            url: url.to_string(),
            detail: "this coordinator no longer leads: the output is left to the one that does".into(),
        };
        let (committed, mut open) = {
            let mut uploads = self.uploads.lock().expect("uploads lock");
            (
                std::mem::take(&mut uploads.committed),
                std::mem::take(&mut uploads.open),
            )
        };
        for (part, (attempt, tags)) in committed {
            let upload = open.remove(&attempt).ok_or_else(|| StorageError::Other {
                url: self.part_url(part).to_string(),
                detail: format!("attempt {attempt} committed the part but no upload of it is known"),
            })?;
            if !may_act() {
                return Err(stop(&self.part_url(upload.part)));
            }
            upload::complete(&self.part_url(upload.part), &upload.id, &tags)?;
        }
        if !may_act() {
            return Err(stop(&self.prefix));
        }
        self.abort_all(open.into_values());
        if !may_act() {
            return Err(stop(&self.prefix));
        }
        upload::put(&self.prefix.join(SUCCESS_MARKER), Vec::new())
    }

    /// Aborts every open upload and deletes the parts completed: the job did not succeed.
    pub fn abandon(&self) {
        let open = {
            let mut uploads = self.uploads.lock().expect("uploads lock");
            uploads.committed.clear();
            std::mem::take(&mut uploads.open)
        };
        self.abort_all(open.into_values());
        if let Err(e) = upload::delete_beneath(&self.prefix, is_part_name) {
            tracing::warn!(output = %self.prefix, error = %e, "cannot delete the parts of a job that did not succeed");
        }
    }
}

/// Aborts uploads a coordinator that stopped left open, whose attempts never committed.
pub fn abort_left_open<'a>(uploads: impl IntoIterator<Item = &'a UploadRecord>) {
    for upload in uploads {
        let aborted = upload::abort(&upload.url, &upload.id);
        if let Err(e) = aborted {
            tracing::warn!(part = %upload.url, error = %e, "cannot abort an upload left open: a bucket lifecycle rule must");
        }
    }
}
