//! What goes wrong talking to an object store, said so that a user can act on it.

use weft_core::location::BadUrl;

/// Why an object store request failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The URL is malformed.
    #[error(transparent)]
    BadUrl(#[from] BadUrl),
    /// The bucket does not exist.
    #[error("bucket {bucket:?} does not exist at {endpoint}: create it, or check the URL and AWS_ENDPOINT_URL")]
    NoBucket {
        /// The bucket.
        bucket: String,
        /// The endpoint asked.
        endpoint: String,
    },
    /// The credentials were refused.
    #[error("the object store refused access to {url}: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the role) ({detail})")]
    Denied {
        /// What was asked for.
        url: String,
        /// What the store said.
        detail: String,
    },
    /// No object there.
    #[error("no object at {0}")]
    NotFound(String),
    /// The output prefix holds objects already.
    #[error("output {0} is not empty: choose a new prefix or empty this one")]
    NotEmpty(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Anything else the store or the network said.
    #[error("{url}: {detail}")]
    Other {
        /// What was asked for.
        url: String,
        /// What went wrong.
        detail: String,
    },
}

impl StorageError {
    /// Classifies an `object_store` error about `url` in `bucket`.
    pub(crate) fn of(e: object_store::Error, url: &str, bucket: &str) -> Self {
        let detail = e.to_string();
        match e {
            object_store::Error::NotFound { .. } if detail.contains("NoSuchBucket") => Self::no_bucket(bucket),
            object_store::Error::NotFound { .. } => Self::NotFound(url.to_string()),
            object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
                Self::Denied {
                    url: url.to_string(),
                    detail: short(&detail),
                }
            }
            _ if detail.contains("NoSuchBucket") => Self::no_bucket(bucket),
            _ if [
                "InvalidAccessKeyId",
                "SignatureDoesNotMatch",
                "AccessDenied",
                "403 Forbidden",
            ]
            .iter()
            .any(|code| detail.contains(code)) =>
            {
                Self::Denied {
                    url: url.to_string(),
                    detail: short(&detail),
                }
            }
            _ => Self::Other {
                url: url.to_string(),
                detail: short(&detail),
            },
        }
    }

    fn no_bucket(bucket: &str) -> Self {
        Self::NoBucket {
            bucket: bucket.to_string(),
            endpoint: std::env::var("AWS_ENDPOINT_URL")
                .or_else(|_| std::env::var("AWS_ENDPOINT"))
                .unwrap_or_else(|_| "AWS S3".to_string()),
        }
    }
}

/// A store's message without the XML body it may quote at length.
fn short(detail: &str) -> String {
    const MAX: usize = 400;
    match detail.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &detail[..at]),
        None => detail.to_string(),
    }
}

impl From<StorageError> for std::io::Error {
    fn from(e: StorageError) -> Self {
        let kind = match e {
            StorageError::NotFound(_) | StorageError::NoBucket { .. } => std::io::ErrorKind::NotFound,
            StorageError::Denied { .. } => std::io::ErrorKind::PermissionDenied,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}
