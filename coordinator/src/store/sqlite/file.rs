//! The database file: opened (or created) with the pragmas the store relies on, refused if
//! it is not an SQLite database, and checked before each commit to be the file opened.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use crate::store::StoreError;

/// Opens (or creates) the database at `path`: WAL, `synchronous=FULL`, a busy timeout;
/// a file that is not an SQLite database is refused as corrupt.
pub(super) fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let corrupt = |e: rusqlite::Error| StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE)
        .map_err(corrupt)?;
    conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(corrupt)?;
    // Any damage to the header shows here: SQLite refuses a file that is not a database.
    conn.pragma_update(None, "journal_mode", "WAL").map_err(corrupt)?;
    conn.pragma_update(None, "synchronous", "FULL").map_err(corrupt)?;
    Ok(conn)
}

/// The database file a writer opened: the same inode at the same path, beginning with
/// SQLite's header. Checked before each commit (a `stat` and a 16-byte read), since SQLite
/// writes on through its open descriptor into a file removed or replaced under it, and its
/// cache hides a file written over.
pub(super) struct DatabaseFile {
    path: Option<PathBuf>,
    id: Option<(u64, u64)>,
}

impl DatabaseFile {
    /// The first bytes of every SQLite database.
    const HEADER: &'static [u8; 16] = b"SQLite format 3\0";

    pub(super) fn of(conn: &Connection) -> Self {
        let path = conn.path().filter(|p| !p.is_empty()).map(PathBuf::from);
        let id = path
            .as_deref()
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| (m.dev(), m.ino()));
        Self { path, id }
    }

    /// How the file is no longer the one opened, if it is not.
    pub(super) fn changed(&self) -> Option<String> {
        let (path, id) = (self.path.as_deref()?, self.id?);
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Some("it was removed while the coordinator ran".into())
            }
            Err(_) => return None,
        };
        if (meta.dev(), meta.ino()) != id {
            return Some("it was replaced while the coordinator ran".into());
        }
        let mut header = [0u8; 16];
        let read =
            std::fs::File::open(path).and_then(|f| std::os::unix::fs::FileExt::read_exact_at(&f, &mut header, 0));
        match read {
            Ok(()) if &header != Self::HEADER => {
                Some("it was written over while the coordinator ran: it no longer begins as an SQLite database".into())
            }
            _ => None,
        }
    }
}
