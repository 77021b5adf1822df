//! The one place where wire messages become the core's domain types and back: the client
//! and the coordinator's client API ([`job`]), the worker session and its assignments and
//! reports ([`session`]), task batches ([`batch`]). Every conversion that can meet a
//! malformed message returns a [`ConvertError`] that names what was wrong.

mod batch;
mod job;
mod session;

pub use batch::{
    batch_from_wire, batch_part, batch_parts, handlers_from_wire, handlers_to_wire, pad, positioned_results_to_wire,
    results_from_wire, results_to_wire, settings_from_wire, task_to_wire, tasks_from_wire, unserved_from_wire,
    unserved_to_wire,
};
pub use job::{
    counts_from_wire, counts_to_wire, files_from_wire, files_to_wire, program_from_wire, program_to_wire,
    spec_from_stored_v1, status_from_wire, status_to_wire, worker_from_wire, worker_to_wire,
};
pub use session::{reports_to_wire, to_worker_wire, Received};

use prost::Message;
use weft_core::location::BadUrl;
use weft_core::spec::SpecError;
use weft_core::work::{BadHandlerName, BadId};

/// A wire message that does not make a domain value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// A required part is missing.
    #[error("the message has no {0}")]
    Missing(&'static str),
    /// An id that does not parse.
    #[error(transparent)]
    BadId(#[from] BadId),
    /// An `s3://` URL that names no object.
    #[error(transparent)]
    BadLocation(#[from] BadUrl),
    /// A job spec or program that is not valid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A queue task's handler name is not a name.
    #[error("task {index}: {source}")]
    Handler {
        /// Its position in the batch.
        index: usize,
        /// The name.
        source: BadHandlerName,
    },
    /// A name that names nothing of its kind (a task kind, an outcome).
    #[error("unknown {what} {name:?}")]
    UnknownName {
        /// What kind of name.
        what: &'static str,
        /// The name.
        name: String,
    },
    /// Bytes that do not decode as the message they should be.
    #[error("cannot decode {what}: {detail}")]
    Decode {
        /// The message.
        what: &'static str,
        /// What prost said.
        detail: String,
    },
}

/// The largest message a weft peer accepts (and sends) by default: what clients, workers
/// and the coordinator's readers of worker logs set on their connections, and the
/// coordinator's `--max-message` unless told otherwise.
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// A message carrying at most this many bytes of items: well under the
/// [`MAX_MESSAGE_BYTES`] a peer accepts, leaving room for the rest of the message.
pub const MESSAGE_BUDGET: usize = 8 << 20;

/// `items` cut into runs of at most `budget` encoded bytes each (an item larger than the
/// budget alone in its run), in order; never an empty run, at least one.
pub fn split_by_size<T: Message>(items: Vec<T>, budget: usize) -> Vec<Vec<T>> {
    let mut runs = vec![Vec::new()];
    let mut size = 0;
    for item in items {
        // The item's tag and length prefix.
        let len = item.encoded_len() + 8;
        let current = runs.last_mut().expect("never empty");
        if !current.is_empty() && size + len > budget {
            runs.push(Vec::new());
            size = 0;
        }
        size += len;
        runs.last_mut().expect("never empty").push(item);
    }
    runs
}
