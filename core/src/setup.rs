//! What a streaming job's tasks get beyond their commands: the files shipped with the job
//! (Hadoop's `-files`), environment variables (`-cmdenv`), the layout of keys for a
//! secondary sort (`stream.num.map.output.key.fields`, `KeyFieldBasedPartitioner`), and a
//! memory limit on the task's processes.

use std::sync::Arc;

/// The most bytes a job's shipped files may have together: they travel in the submission
/// and are kept in the coordinator's database.
pub const MAX_SHIPPED_BYTES: u64 = 8 << 20;
/// The most tab-separated fields a key may span.
pub const MAX_KEY_FIELDS: u32 = 64;
/// The smallest `--task-memory`: below it not even a shell starts.
pub const MIN_TASK_MEMORY: u64 = 16 << 20;

/// A file shipped with a job: every attempt finds it in its working directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippedFile {
    /// Its name in the attempt's directory: a plain file name.
    pub name: String,
    /// Its bytes, as they were at submit.
    pub contents: Arc<[u8]>,
    /// Whether it is made executable (as its source was).
    pub executable: bool,
}

/// How the tasks of a streaming job run, beyond their commands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskSetup {
    /// Variables added to the commands' environment.
    pub env: Vec<(String, String)>,
    /// How records split into key and value.
    pub keys: KeyLayout,
    /// A limit on the memory of the task's processes, bytes.
    pub task_memory: Option<u64>,
}

impl TaskSetup {
    /// The first flag that is set, by name, to tell a user which one a program cannot take.
    pub fn first_set_flag(&self) -> Option<&'static str> {
        if !self.env.is_empty() {
            Some("--env")
        } else if self.keys.fields != 1 {
            Some("--key-fields")
        } else if self.keys.partition_fields.is_some() {
            Some("--partition-fields")
        } else if self.task_memory.is_some() {
            Some("--task-memory")
        } else {
            None
        }
    }
}

/// Where a record's key ends: after its first `fields` tab-separated fields; the
/// partitioner hashes only the first `partition_fields` of them (all when `None`). Keys sort
/// bytewise, so records with equal leading fields sort by the fields after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyLayout {
    /// Fields in the key (at least 1).
    pub fields: u32,
    /// Fields the partitioner hashes; `None`: the whole key.
    pub partition_fields: Option<u32>,
}

impl Default for KeyLayout {
    fn default() -> Self {
        Self {
            fields: 1,
            partition_fields: None,
        }
    }
}

impl KeyLayout {
    /// Splits a line (its newline, if any, dropped) into key and value: the key is its first
    /// `fields` fields, the value what follows the tab after them. A line with fewer fields
    /// is all key.
    pub fn split<'a>(&self, line: &'a [u8]) -> (&'a [u8], &'a [u8]) {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        match nth_tab(line, self.fields) {
            Some(tab) => (&line[..tab], &line[tab + 1..]),
            None => (line, b""),
        }
    }

    /// How many leading fields of a key the partitioner hashes; `None`: all of it.
    pub fn hashed_fields(&self) -> Option<u32> {
        self.partition_fields.filter(|&k| k < self.fields)
    }

    /// The part of a key the partitioner hashes.
    pub fn partition_key<'a>(&self, key: &'a [u8]) -> &'a [u8] {
        self.hashed_fields().map_or(key, |k| leading_fields(key, k))
    }

    /// Whether this is the default layout: one field, hashed whole.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// The first `n` tab-separated fields of `bytes` (all of it when it has no more).
pub fn leading_fields(bytes: &[u8], n: u32) -> &[u8] {
    nth_tab(bytes, n).map_or(bytes, |tab| &bytes[..tab])
}

/// The position of the `n`-th tab (1-based) in `bytes`.
fn nth_tab(bytes: &[u8], n: u32) -> Option<usize> {
    bytes
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\t')
        .nth(n as usize - 1)
        .map(|(i, _)| i)
}

/// Why a job's setup was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SetupError {
    /// A variable name that is not a shell name.
    #[error("--env {0:?}: a variable's name is letters, digits and _, not starting with a digit")]
    BadEnvName(String),
    /// A variable weft sets itself.
    #[error("--env {0}: weft sets this variable for every task; choose another name")]
    ReservedEnv(String),
    /// A NUL byte in a value.
    #[error("--env {0}: the value holds a NUL byte")]
    NulInEnv(String),
    /// A key of no fields, or too many.
    #[error("--key-fields must be between 1 and {MAX_KEY_FIELDS}, got {0}")]
    BadKeyFields(u32),
    /// More partition fields than key fields.
    #[error("--partition-fields {partition} must be between 1 and --key-fields ({key})")]
    BadPartitionFields {
        /// What was asked.
        partition: u32,
        /// The key's fields.
        key: u32,
    },
    /// A memory limit too small to start anything.
    #[error("--task-memory {0} bytes is too small: give at least 16MiB")]
    TaskMemoryTooSmall(u64),
    /// A shipped file's name that is not a plain name.
    #[error("--file {0:?}: a shipped file is named by its file name alone (no '/', not '.' or '..')")]
    BadFileName(String),
    /// Two shipped files of one name.
    #[error("--file: two files are named {0:?}; each lands in the task's directory under its own name")]
    DuplicateFile(String),
    /// Shipped files too large together.
    #[error("--file: the shipped files hold {total} bytes, past the limit of {max} (8 MiB): put large data in the job's input, or on storage every worker reads")]
    FilesTooLarge {
        /// Their size.
        total: u64,
        /// The limit.
        max: u64,
    },
}

/// Variables every task gets from weft (and Hadoop's names for the same): `--env` may not set
/// them.
pub fn is_reserved_env(name: &str) -> bool {
    name.starts_with("WEFT_") || name.starts_with("mapreduce_") || name == "TMPDIR"
}

impl TaskSetup {
    /// Checks the variables, the key layout and the memory limit.
    pub fn validate(&self) -> Result<(), SetupError> {
        for (name, value) in &self.env {
            let mut chars = name.chars();
            let shell_name = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !shell_name {
                return Err(SetupError::BadEnvName(name.clone()));
            }
            if is_reserved_env(name) {
                return Err(SetupError::ReservedEnv(name.clone()));
            }
            if value.contains('\0') {
                return Err(SetupError::NulInEnv(name.clone()));
            }
        }
        let key = self.keys.fields;
        if !(1..=MAX_KEY_FIELDS).contains(&key) {
            return Err(SetupError::BadKeyFields(key));
        }
        if let Some(partition) = self.keys.partition_fields {
            if !(1..=key).contains(&partition) {
                return Err(SetupError::BadPartitionFields { partition, key });
            }
        }
        if let Some(memory) = self.task_memory {
            if memory < MIN_TASK_MEMORY {
                return Err(SetupError::TaskMemoryTooSmall(memory));
            }
        }
        Ok(())
    }
}

/// Checks shipped files: plain, distinct names, and not too large together.
pub fn validate_files(files: &[ShippedFile]) -> Result<(), SetupError> {
    let mut names = std::collections::HashSet::new();
    let mut total = 0u64;
    for file in files {
        let plain = !file.name.is_empty()
            && file.name != "."
            && file.name != ".."
            && !file.name.contains('/')
            && !file.name.contains('\0');
        if !plain {
            return Err(SetupError::BadFileName(file.name.clone()));
        }
        if !names.insert(file.name.as_str()) {
            return Err(SetupError::DuplicateFile(file.name.clone()));
        }
        total += file.contents.len() as u64;
    }
    if total > MAX_SHIPPED_BYTES {
        return Err(SetupError::FilesTooLarge {
            total,
            max: MAX_SHIPPED_BYTES,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_span_their_fields_and_partitions_hash_a_prefix() {
        let keys = KeyLayout {
            fields: 2,
            partition_fields: Some(1),
        };
        assert_eq!(keys.split(b"ann\t0042\tlogin\n"), (&b"ann\t0042"[..], &b"login"[..]));
        assert_eq!(keys.split(b"ann\t0042"), (&b"ann\t0042"[..], &b""[..]));
        assert_eq!(keys.split(b"ann"), (&b"ann"[..], &b""[..]));
        assert_eq!(keys.partition_key(b"ann\t0042"), b"ann");
        let default = KeyLayout::default();
        assert_eq!(default.split(b"k\tv\tw\n"), (&b"k"[..], &b"v\tw"[..]));
        assert_eq!(default.partition_key(b"k"), b"k");
    }

    #[test]
    fn bad_setups_are_refused_with_the_flag() {
        let mut setup = TaskSetup {
            env: vec![("1X".into(), "v".into())],
            ..TaskSetup::default()
        };
        assert!(setup.validate().unwrap_err().to_string().contains("--env \"1X\""));
        setup.env = vec![("WEFT_JOB_ID".into(), "v".into())];
        assert_eq!(setup.validate(), Err(SetupError::ReservedEnv("WEFT_JOB_ID".into())));
        setup.env = vec![("LANG".into(), "C".into())];
        setup.keys = KeyLayout {
            fields: 2,
            partition_fields: Some(3),
        };
        assert!(matches!(setup.validate(), Err(SetupError::BadPartitionFields { .. })));
        setup.keys.partition_fields = Some(1);
        assert_eq!(setup.validate(), Ok(()));
        assert_eq!(setup.first_set_flag(), Some("--env"));
    }

    #[test]
    fn shipped_files_have_plain_distinct_names_and_a_cap() {
        let file = |name: &str, size: usize| ShippedFile {
            name: name.into(),
            contents: vec![0u8; size].into(),
            executable: false,
        };
        assert_eq!(validate_files(&[file("map.py", 10), file("words.txt", 10)]), Ok(()));
        assert!(validate_files(&[file("../x", 1)]).is_err());
        assert!(validate_files(&[file("a", 1), file("a", 1)]).is_err());
        let err = validate_files(&[file("big", MAX_SHIPPED_BYTES as usize + 1)]).unwrap_err();
        assert!(err.to_string().contains("past the limit"), "{err}");
    }
}
