//! Data roots: the directories jobs may read and write. A path is inside a root when it
//! resolves there once its symlinks are followed; files are opened with
//! `openat2(RESOLVE_BENEATH)` from the root itself, so that a symlink swapped in after the
//! coordinator checked a path cannot lead a worker out of the root.
//!
//! A root may also be an object-store prefix (`s3://bucket/data`), which admits the objects
//! beneath it in whole segments (`s3://bucket/data/x`, not `s3://bucket/data2`), and only
//! objects: a local path is inside a directory root or nowhere.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use weft_core::location::{Location, ObjectUrl};

/// A path outside every data root. The message is the same whether or not it exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is outside the data roots this cluster serves")]
pub struct Outside(pub Location);

/// The directories and object prefixes jobs may read and write; none: every path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataRoots {
    /// The directories, resolved.
    dirs: Vec<PathBuf>,
    /// The object prefixes.
    prefixes: Vec<ObjectUrl>,
}

impl DataRoots {
    /// The roots an operator named, resolved; each directory must be one.
    pub fn new(roots: &[Location]) -> io::Result<Self> {
        let mut resolved = Self::default();
        for root in roots {
            let root = match root {
                Location::Object(url) => {
                    resolved.prefixes.push(url.clone());
                    continue;
                }
                Location::Local(root) => root,
            };
            let canonical = root
                .canonicalize()
                .map_err(|e| io::Error::new(e.kind(), format!("data root {}: {e}", root.display())))?;
            if !canonical.is_dir() {
                let message = format!("data root {} is not a directory", root.display());
                return Err(io::Error::new(io::ErrorKind::InvalidInput, message));
            }
            resolved.dirs.push(canonical);
        }
        Ok(resolved)
    }

    /// Roots resolved elsewhere (the coordinator's, as an assignment carries them).
    pub fn resolved(roots: Vec<Location>) -> Self {
        let mut resolved = Self::default();
        for root in roots {
            match root {
                Location::Local(dir) => resolved.dirs.push(dir),
                Location::Object(url) => resolved.prefixes.push(url),
            }
        }
        resolved
    }

    /// The roots, resolved: the directories, then the prefixes.
    pub fn roots(&self) -> Vec<Location> {
        let dirs = self.dirs.iter().cloned().map(Location::Local);
        dirs.chain(self.prefixes.iter().cloned().map(Location::Object))
            .collect()
    }

    /// Whether every path is open (no roots).
    pub fn is_open(&self) -> bool {
        self.dirs.is_empty() && self.prefixes.is_empty()
    }

    /// `location` resolved ([`Self::resolve_path`] for a path), checked to be inside a root.
    pub fn resolve(&self, location: &Location) -> Result<Location, Outside> {
        match location {
            Location::Local(path) => self.resolve_path(path).map(Location::Local),
            Location::Object(url) => self.resolve_object(url).map(Location::Object),
        }
    }

    /// `path` with its symlinks followed as far as it exists (what does not exist yet is
    /// taken as written, without `..`), checked to be inside a root.
    pub fn resolve_path(&self, path: &Path) -> Result<PathBuf, Outside> {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        if self.is_open() {
            return Ok(absolute);
        }
        let outside = || Outside(Location::Local(path.to_path_buf()));
        let mut existing = absolute.as_path();
        let mut missing = Vec::new();
        let resolved = loop {
            match existing.canonicalize() {
                Ok(canonical) => break canonical,
                Err(_) => {
                    missing.push(existing.file_name().ok_or_else(outside)?.to_os_string());
                    existing = existing.parent().ok_or_else(outside)?;
                }
            }
        };
        let mut resolved = resolved;
        for name in missing.iter().rev() {
            if Path::new(name).components().any(|c| !matches!(c, Component::Normal(_))) {
                return Err(outside());
            }
            resolved.push(name);
        }
        if self.dirs.iter().any(|root| resolved.starts_with(root)) {
            Ok(resolved)
        } else {
            Err(outside())
        }
    }

    /// An object URL, checked to be beneath an object root.
    fn resolve_object(&self, url: &ObjectUrl) -> Result<ObjectUrl, Outside> {
        if self.is_open() || self.prefixes.iter().any(|root| url.is_within(root)) {
            Ok(url.clone())
        } else {
            Err(Outside(Location::Object(url.clone())))
        }
    }

    /// The root `path` lies under, and the rest of it.
    fn split<'a>(&self, path: &'a Path) -> io::Result<(&PathBuf, &'a Path)> {
        self.dirs
            .iter()
            .find_map(|root| path.strip_prefix(root).ok().map(|rest| (root, rest)))
            .ok_or_else(|| outside(path))
    }

    /// Opens `path` to read, never leaving its root.
    pub fn open(&self, path: &Path) -> io::Result<File> {
        let opened = if self.is_open() {
            File::open(path)
        } else {
            let (root, rest) = self.split(path)?;
            open_beneath(root, rest, libc::O_RDONLY, 0).or_else(|e| match e.raw_os_error() {
                Some(libc::ENOSYS) => self.open_checked(path, |p| File::open(p)),
                _ => Err(escape(e, path)),
            })
        };
        opened.map_err(|e| naming(e, path))
    }

    /// Creates `path` (it must not exist) to write and read back, with `mode`, never
    /// leaving its root.
    pub fn create(&self, path: &Path, mode: u32) -> io::Result<File> {
        let create = |p: &Path| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(mode)
                .custom_flags(libc::O_NOFOLLOW)
                .open(p)
        };
        let created = if self.is_open() {
            create(path)
        } else {
            let (root, rest) = self.split(path)?;
            let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL;
            open_beneath(root, rest, flags, mode).or_else(|e| match e.raw_os_error() {
                Some(libc::ENOSYS) => self.open_checked(path, create),
                _ => Err(escape(e, path)),
            })
        };
        created.map_err(|e| naming(e, path))
    }

    /// Where `openat2` is not allowed (an old kernel, a strict seccomp profile): resolves
    /// the path, checks it, and opens what was checked.
    fn open_checked(&self, path: &Path, open: impl Fn(&Path) -> io::Result<File>) -> io::Result<File> {
        let resolved = self
            .resolve_path(path)
            .map_err(|e| io::Error::new(io::ErrorKind::PermissionDenied, e))?;
        open(&resolved)
    }
}

/// `EXDEV` is how `RESOLVE_BENEATH` refuses a path that leads out.
/// An error of the system's (which names no file) with the file it concerns; one of ours
/// already names it.
pub fn naming(e: io::Error, path: &Path) -> io::Error {
    if e.get_ref().is_some() {
        return e;
    }
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn escape(e: io::Error, path: &Path) -> io::Error {
    match e.raw_os_error() {
        Some(libc::EXDEV) | Some(libc::ELOOP) => outside(path),
        _ => e,
    }
}

fn outside(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        Outside(Location::Local(path.to_path_buf())),
    )
}

/// `openat2(root, rest, flags, mode, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`.
fn open_beneath(root: &Path, rest: &Path, flags: i32, mode: u32) -> io::Result<File> {
    let root = File::open(root)?;
    let rest = CString::new(rest.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path holding a NUL byte"))?;
    // SAFETY: open_how is plain integers; all-zero is its empty value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.mode = u64::from(mode);
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: every pointer is valid for the call, and the size is that of `how`.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            rest.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor the kernel just opened for us, owned by nothing else.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{symlink, PermissionsExt};

    use super::*;

    #[test]
    fn paths_inside_are_resolved_and_paths_outside_refused_alike() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        std::fs::create_dir_all(root.join("in")).unwrap();
        std::fs::write(root.join("in/a.txt"), "a").unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        symlink(dir.path().join("secret"), root.join("in/escape")).unwrap();
        let roots = DataRoots::new(&[Location::local(&root)]).unwrap();
        let root = root.canonicalize().unwrap();

        assert_eq!(roots.resolve_path(&root.join("in/a.txt")), Ok(root.join("in/a.txt")));
        assert_eq!(
            roots.resolve_path(&root.join("new/out")),
            Ok(root.join("new/out")),
            "not yet there"
        );
        for outside in [
            dir.path().join("secret"),
            dir.path().join("no-such-file"),
            root.join("in/escape"),
            root.join("../secret"),
            root.join("in/../../secret"),
            PathBuf::from("/etc/passwd"),
            PathBuf::from("/etc/no-such"),
        ] {
            let refused = roots
                .resolve(&Location::Local(outside.clone()))
                .unwrap_err()
                .to_string();
            assert_eq!(
                refused,
                format!("{} is outside the data roots this cluster serves", outside.display())
            );
        }
        assert!(
            DataRoots::default().resolve_path(Path::new("/etc/passwd")).is_ok(),
            "no roots: open"
        );
        assert!(DataRoots::new(&[Location::local(dir.path().join("none"))]).is_err());
    }

    #[test]
    fn opening_never_leaves_the_root_even_through_a_symlink_swapped_in_later() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        std::fs::create_dir_all(root.join("out")).unwrap();
        std::fs::write(root.join("in.txt"), "inside").unwrap();
        std::fs::create_dir_all(dir.path().join("elsewhere")).unwrap();
        let roots = DataRoots::new(&[Location::local(&root)]).unwrap();
        let root = root.canonicalize().unwrap();

        let mut text = String::new();
        std::io::Read::read_to_string(&mut roots.open(&root.join("in.txt")).unwrap(), &mut text).unwrap();
        assert_eq!(text, "inside");
        let part = roots.create(&root.join("out/part"), 0o640).unwrap();
        assert_eq!(part.metadata().unwrap().permissions().mode() & 0o777, 0o640 & !umask());

        // The output directory becomes a symlink out of the root after the check.
        std::fs::remove_dir_all(root.join("out")).unwrap();
        symlink(dir.path().join("elsewhere"), root.join("out")).unwrap();
        let refused = roots.create(&root.join("out/part"), 0o640).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::PermissionDenied, "{refused}");
        assert_eq!(
            std::fs::read_dir(dir.path().join("elsewhere")).unwrap().count(),
            0,
            "nothing created outside"
        );
        assert!(roots.open(Path::new("/etc/passwd")).is_err());
    }

    fn umask() -> u32 {
        // SAFETY: umask has no preconditions; it is set back at once.
        unsafe {
            let mask = libc::umask(0o022);
            libc::umask(mask);
            mask
        }
    }

    #[test]
    fn object_roots_admit_whole_segments_only() {
        let roots = DataRoots::new(&[Location::parse("s3://b/data/").unwrap()]).unwrap();
        let resolve = |p: &str| roots.resolve(&Location::parse(p).unwrap());
        assert_eq!(
            resolve("s3://b/data/in/x").unwrap(),
            Location::parse("s3://b/data/in/x").unwrap()
        );
        assert!(resolve("s3://b/data").is_ok());
        assert!(resolve("s3://b/data2/x").is_err());
        assert!(resolve("s3://other/data/x").is_err());
        assert!(Location::parse("s3://b/data/../secret").is_err(), "no climbing out");
        assert!(resolve("/tmp").is_err(), "an object root admits no local path");
    }
}
