//! Every coordinator error mapped to one gRPC status code, in one place.

use std::fmt::Display;
use weft_storage::StorageError;

use tonic::{Code, Status};
use weft_core::spec::SpecError;
use weft_core::split::InputError;

use crate::jobs::SubmitError;
use crate::output::{DirError, OutputError};
use crate::plan::PlanError;
use crate::store::StoreError;

/// Why the coordinator could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    /// The state directory cannot be used.
    #[error("cannot use state directory {path}: {source}")]
    StateDir {
        /// The directory.
        path: std::path::PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The state database cannot be used.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The listener's address cannot be read.
    #[error("cannot read the listener's address: {0}")]
    Listen(std::io::Error),
    /// It would serve on the network unsecured.
    #[error(transparent)]
    Exposed(#[from] weft_auth::listen::Exposed),
    /// Its TLS material cannot be used.
    #[error(transparent)]
    Tls(#[from] weft_auth::tls::TlsError),
    /// Its token book cannot be read.
    #[error(transparent)]
    Tokens(#[from] weft_auth::tokens::BookError),
    /// A data root cannot be used.
    #[error("{0}")]
    DataRoots(std::io::Error),
    /// It led its PostgreSQL state and another coordinator took the lease (or it could not
    /// renew it in time): it stopped so as to change nothing more.
    #[error("stopped: no longer the leader ({0}); start it again to stand by")]
    Deposed(String),
}

impl From<PlanError> for Status {
    fn from(e: PlanError) -> Self {
        let code = match &e {
            PlanError::Spec(_) => Code::InvalidArgument,
            PlanError::Input(InputError::Unreadable { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Code::NotFound
            }
            PlanError::Input(_) => Code::InvalidArgument,
            PlanError::Output(OutputError::Dir(DirError::NotEmpty(_) | DirError::InUse(_))) => Code::AlreadyExists,
            PlanError::Output(OutputError::Dir(DirError::Unusable { .. })) => Code::FailedPrecondition,
            PlanError::Output(OutputError::Objects(e)) | PlanError::Objects(e) => storage_code(e),
            PlanError::UnknownDependency(_) => Code::NotFound,
            PlanError::Outside(_) => Code::PermissionDenied,
            PlanError::TooManySplits { .. } => Code::InvalidArgument,
        };
        Status::new(code, e.to_string())
    }
}

/// The status of an object store's answer.
fn storage_code(e: &StorageError) -> Code {
    match e {
        StorageError::BadUrl(_) => Code::InvalidArgument,
        StorageError::NoBucket { .. } | StorageError::NotFound(_) => Code::NotFound,
        StorageError::Denied { .. } => Code::PermissionDenied,
        StorageError::NotEmpty(_) => Code::AlreadyExists,
        StorageError::Other { .. } => Code::Unavailable,
        StorageError::Io { .. } => Code::Internal,
    }
}

impl From<StoreError> for Status {
    fn from(e: StoreError) -> Self {
        let code = match &e {
            StoreError::DiskFull { .. } => Code::ResourceExhausted,
            StoreError::WriterGone(_) | StoreError::Postgres { .. } | StoreError::Deposed(_) => Code::Unavailable,
            _ => Code::Internal,
        };
        Status::new(code, e.to_string())
    }
}

impl From<SubmitError> for Status {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Plan(e) => e.into(),
            SubmitError::Store(e) => e.into(),
            SubmitError::TooManyJobs { .. } => Status::resource_exhausted(e.to_string()),
        }
    }
}

/// A job spec that is not valid.
pub fn invalid_spec(e: SpecError) -> Status {
    Status::invalid_argument(e.to_string())
}

/// A request that does not make sense (a malformed message, an unknown handler).
pub fn invalid_request(why: impl Display) -> Status {
    Status::invalid_argument(why.to_string())
}

/// A job id that names no job.
pub fn unknown_job(id: &str) -> Status {
    Status::not_found(format!("no job {id:?} on this coordinator"))
}
