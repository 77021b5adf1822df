//! Where a job's data lives: a path on a disk every node mounts, or an object in an
//! S3-compatible store, named `s3://bucket/key`. Both travel as paths (the spec's inputs and
//! output, a split's file); this module tells them apart and takes the URLs apart.

use std::fmt;
use std::path::Path;

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

impl ObjectUrl {
    /// The URL `path` holds, if it is one (`s3://…`); an error if it is a bad one.
    pub fn of_path(path: &Path) -> Option<Result<Self, BadUrl>> {
        let text = path.to_str()?;
        text.starts_with(S3_SCHEME).then(|| Self::parse(text))
    }

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

/// Whether `path` names an object store location rather than a file.
pub fn is_object(path: &Path) -> bool {
    path.to_str().is_some_and(|p| p.starts_with(S3_SCHEME))
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
        assert!(ObjectUrl::of_path(Path::new("/data/in")).is_none());
        assert!(is_object(Path::new("s3://b/k")) && !is_object(Path::new("b/k")));
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
