//! Where a job's data lives: a path on a disk every node mounts, or an object in an
//! S3-compatible store, named `s3://bucket/key`. A [`Location`] is told apart once, where
//! it enters as text (the command line, a wire message, the store), and travels typed from
//! there: the spec's inputs and output, a split's file, the data roots, a part's target.

use std::fmt;
use std::path::{Path, PathBuf};

/// The scheme of object-store URLs.
pub const S3_SCHEME: &str = "s3://";

/// An object, or a prefix of objects, in a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectUrl {
    /// The bucket.
    pub bucket: String,
    /// The key (or prefix), without a leading or trailing `/`; empty: the whole bucket.
    pub key: String,
}

/// Why a URL names no object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url:?} is not an object URL: {why} (write s3://bucket/prefix)")]
pub struct BadUrl {
    /// What was given.
    pub url: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// A file or directory on a disk, or an object or prefix in an object store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Location {
    /// A path on a disk every node mounts.
    Local(PathBuf),
    /// An object, or a prefix of objects.
    Object(ObjectUrl),
}

impl Location {
    /// The location `text` names: an object for `s3://…` (an error if a bad URL), else a path.
    pub fn parse(text: &str) -> Result<Self, BadUrl> {
        match text.starts_with(S3_SCHEME) {
            true => Ok(Location::Object(ObjectUrl::parse(text)?)),
            false => Ok(Location::Local(PathBuf::from(text))),
        }
    }

    /// The location a path as typed names (a path that is not UTF-8 is a local one).
    pub fn from_path(path: PathBuf) -> Result<Self, BadUrl> {
        match path.to_str() {
            Some(text) if text.starts_with(S3_SCHEME) => Ok(Location::Object(ObjectUrl::parse(text)?)),
            _ => Ok(Location::Local(path)),
        }
    }

    /// A local path.
    pub fn local(path: impl Into<PathBuf>) -> Self {
        Location::Local(path.into())
    }

    /// The path, if local.
    pub fn as_local(&self) -> Option<&Path> {
        match self {
            Location::Local(path) => Some(path),
            Location::Object(_) => None,
        }
    }

    /// The URL, if an object.
    pub fn as_object(&self) -> Option<&ObjectUrl> {
        match self {
            Location::Local(_) => None,
            Location::Object(url) => Some(url),
        }
    }

    /// Whether nothing was given (an empty path).
    pub fn is_empty(&self) -> bool {
        matches!(self, Location::Local(path) if path.as_os_str().is_empty())
    }

    /// As text, a path that is not UTF-8 shown lossily (paths a job names are checked to
    /// be text).
    pub fn to_text(&self) -> String {
        match self {
            Location::Local(path) => path.to_string_lossy().into_owned(),
            Location::Object(url) => url.to_string(),
        }
    }

    /// Its path as text, `None` for a local path that is not UTF-8.
    pub fn as_str(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            Location::Local(path) => path.to_str().map(std::borrow::Cow::Borrowed),
            Location::Object(url) => Some(std::borrow::Cow::Owned(url.to_string())),
        }
    }

    /// Its last segment (a file's name), empty for none.
    pub fn file_name(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Location::Local(path) => path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
            Location::Object(url) => std::borrow::Cow::Borrowed(url.file_name()),
        }
    }

    /// Whether this is `root` or beneath it: in whole path components on a disk (as
    /// written, not resolved), in whole segments in an object store.
    pub fn is_within(&self, root: &Location) -> bool {
        match (self, root) {
            (Location::Local(path), Location::Local(root)) => path.starts_with(root),
            (Location::Object(url), Location::Object(root)) => url.is_within(root),
            _ => false,
        }
    }

    /// The file or object `name` beneath this one.
    pub fn join(&self, name: &str) -> Self {
        match self {
            Location::Local(path) => Location::Local(path.join(name)),
            Location::Object(url) => Location::Object(url.join(name)),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(path) => write!(f, "{}", path.display()),
            Location::Object(url) => write!(f, "{url}"),
        }
    }
}

impl From<ObjectUrl> for Location {
    fn from(url: ObjectUrl) -> Self {
        Location::Object(url)
    }
}

impl ObjectUrl {
    /// Parses `s3://bucket/key`.
    pub fn parse(text: &str) -> Result<Self, BadUrl> {
        let bad = |why| BadUrl {
            url: text.to_string(),
            why,
        };
        let rest = text
            .strip_prefix(S3_SCHEME)
            .ok_or_else(|| bad("it does not start with s3://"))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("it names no bucket"));
        }
        let key = key.trim_matches('/');
        if key.split('/').any(|segment| segment == "." || segment == "..") || key.contains("//") {
            return Err(bad("its key has an empty, '.' or '..' segment"));
        }
        Ok(Self {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }

    /// The object `name` beneath this prefix.
    pub fn join(&self, name: &str) -> Self {
        let key = match self.key.as_str() {
            "" => name.to_string(),
            prefix => format!("{prefix}/{name}"),
        };
        Self {
            bucket: self.bucket.clone(),
            key,
        }
    }

    /// Whether this is `root` or beneath it, in whole segments: `s3://b/data` holds
    /// `s3://b/data/x` but not `s3://b/data2`.
    pub fn is_within(&self, root: &ObjectUrl) -> bool {
        self.bucket == root.bucket
            && (root.key.is_empty()
                || self.key == root.key
                || self
                    .key
                    .strip_prefix(&root.key)
                    .is_some_and(|rest| rest.starts_with('/')))
    }

    /// The last segment of the key.
    pub fn file_name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or("")
    }
}

impl fmt::Display for ObjectUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{S3_SCHEME}{}", self.bucket)?;
        if !self.key.is_empty() {
            write!(f, "/{}", self.key)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_come_apart_and_back_together() {
        let url = ObjectUrl::parse("s3://bucket/data/in/").unwrap();
        assert_eq!((url.bucket.as_str(), url.key.as_str()), ("bucket", "data/in"));
        assert_eq!(url.to_string(), "s3://bucket/data/in");
        assert_eq!(url.join("part-00000").to_string(), "s3://bucket/data/in/part-00000");
        assert_eq!(
            ObjectUrl::parse("s3://bucket").unwrap().join("a").to_string(),
            "s3://bucket/a"
        );
        assert!(ObjectUrl::parse("s3:///key").is_err());
        assert!(ObjectUrl::parse("s3://b/a/../c").is_err());
        assert_eq!(Location::parse("/data/in").unwrap(), Location::local("/data/in"));
        assert_eq!(
            Location::from_path("s3://b/k".into()).unwrap(),
            Location::Object(ObjectUrl::parse("s3://b/k").unwrap())
        );
        assert!(Location::parse("s3:///k").is_err());
        assert_eq!(
            Location::parse("s3://b/k/").unwrap().join("x").to_string(),
            "s3://b/k/x"
        );
        assert_eq!(Location::local("/a/b.gz").file_name(), "b.gz");
    }

    #[test]
    fn a_root_holds_whole_segments_only() {
        let root = ObjectUrl::parse("s3://b/data").unwrap();
        let within = |u: &str| ObjectUrl::parse(u).unwrap().is_within(&root);
        assert!(within("s3://b/data") && within("s3://b/data/x/y"));
        assert!(!within("s3://b/data2") && !within("s3://b/dat") && !within("s3://c/data/x"));
        assert!(ObjectUrl::parse("s3://b/any")
            .unwrap()
            .is_within(&ObjectUrl::parse("s3://b").unwrap()));
    }
}
