//! Which weft versions work together (the README's version-skew policy, enforced where a
//! worker registers): a worker may run the coordinator's minor version or the one before
//! it, within one major version, and never a newer one, so that a rolling upgrade moves
//! every coordinator first, then the workers. Patch versions mix freely.

use std::fmt;

/// This build's version, as its `Cargo.toml` says.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A worker that names no version predates the field that carries it: weft 0.1.
const UNNAMED: Version = Version {
    major: 0,
    minor: 1,
    patch: 0,
};

/// `MAJOR.MINOR.PATCH` (a pre-release or build suffix is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// Incompatible changes.
    pub major: u64,
    /// Releases: a worker may be one behind its coordinator.
    pub minor: u64,
    /// Fixes: any mix works.
    pub patch: u64,
}

impl Version {
    /// `text` as a version; `None` if it is not `MAJOR.MINOR.PATCH`. An empty text is the
    /// version of a worker older than the field (0.1.0).
    pub fn parse(text: &str) -> Option<Self> {
        if text.is_empty() {
            return Some(UNNAMED);
        }
        let core = text.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
        let version = Self {
            major: parts.next()??,
            minor: parts.next()??,
            patch: parts.next()??,
        };
        parts.next().is_none().then_some(version)
    }

    /// This build's.
    pub fn current() -> Self {
        Self::parse(VERSION).expect("Cargo.toml's version is MAJOR.MINOR.PATCH")
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Why a worker may not join a coordinator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkewError {
    /// Its version is not one.
    #[error("the worker names its version {0:?}, which is not MAJOR.MINOR.PATCH")]
    Unreadable(String),
    /// It is newer than the coordinator.
    #[error(
        "a weft {worker} worker cannot join a weft {coordinator} coordinator: a worker is never newer than its \
         coordinator; upgrade every coordinator before the workers"
    )]
    Newer {
        /// The worker's version.
        worker: Version,
        /// The coordinator's.
        coordinator: Version,
    },
    /// It is more than one minor version older, or of another major version.
    #[error(
        "a weft {worker} worker cannot join a weft {coordinator} coordinator: a worker may run its coordinator's \
         minor version or the one before it; upgrade this worker"
    )]
    TooOld {
        /// The worker's version.
        worker: Version,
        /// The coordinator's.
        coordinator: Version,
    },
}

/// Whether a worker of version `worker` (as it registers; empty from workers older than
/// the field) may join a coordinator of version `coordinator`.
pub fn worker_may_join(worker: &str, coordinator: Version) -> Result<Version, SkewError> {
    let parsed = Version::parse(worker).ok_or_else(|| SkewError::Unreadable(worker.to_string()))?;
    let (w, c) = ((parsed.major, parsed.minor), (coordinator.major, coordinator.minor));
    if w > c {
        return Err(SkewError::Newer {
            worker: parsed,
            coordinator,
        });
    }
    if parsed.major != coordinator.major || parsed.minor + 1 < coordinator.minor {
        return Err(SkewError::TooOld {
            worker: parsed,
            coordinator,
        });
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    #[test]
    fn a_worker_may_be_one_minor_version_behind_and_never_ahead() {
        let coordinator = v("1.4.2");
        for ok in ["1.4.0", "1.4.9", "1.3.0", "1.3.7-rc.1"] {
            assert!(worker_may_join(ok, coordinator).is_ok(), "{ok}");
        }
        assert!(matches!(
            worker_may_join("1.5.0", coordinator),
            Err(SkewError::Newer { .. })
        ));
        assert!(matches!(
            worker_may_join("2.0.0", coordinator),
            Err(SkewError::Newer { .. })
        ));
        assert!(matches!(
            worker_may_join("1.2.9", coordinator),
            Err(SkewError::TooOld { .. })
        ));
        assert!(matches!(
            worker_may_join("0.9.0", coordinator),
            Err(SkewError::TooOld { .. })
        ));
        assert!(matches!(
            worker_may_join("one", coordinator),
            Err(SkewError::Unreadable(_))
        ));
        assert!(matches!(
            worker_may_join("1.4", coordinator),
            Err(SkewError::Unreadable(_))
        ));
        // A worker from before the field is 0.1.
        assert_eq!(worker_may_join("", v("0.2.0")), Ok(v("0.1.0")));
        assert!(worker_may_join("", v("0.3.0")).is_err());
        assert!(worker_may_join(VERSION, Version::current()).is_ok());
        let said = worker_may_join("1.5.0", coordinator).unwrap_err().to_string();
        assert!(said.contains("upgrade every coordinator before the workers"), "{said}");
    }
}
