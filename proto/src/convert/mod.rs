//! The one place where wire messages become the core's domain types and back: the client
//! and the coordinator's client API ([`job`]), the worker session and its assignments and
//! reports ([`session`]), task batches ([`batch`]). Every conversion that can meet a
//! malformed message returns a [`ConvertError`] that names what was wrong.

mod batch;
mod job;
mod session;

pub use batch::{batch_from_wire, results_from_wire, results_to_wire};
pub use job::{program_from_wire, program_to_wire, spec_from_stored_v1, status_from_wire, status_to_wire};
pub use session::Received;

use weft_core::spec::SpecError;
use weft_core::work::{BadId, UnknownHandler};

/// A wire message that does not make a domain value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// A required part is missing.
    #[error("the message has no {0}")]
    Missing(&'static str),
    /// An id that does not parse.
    #[error(transparent)]
    BadId(#[from] BadId),
    /// A job spec or program that is not valid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A queue task names no known handler.
    #[error("task {index}: {source}")]
    Handler {
        /// Its position in the batch.
        index: usize,
        /// The name.
        source: UnknownHandler,
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
