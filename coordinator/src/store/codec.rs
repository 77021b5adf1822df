//! How the store keeps specs, plans and counters: JSON of its own types, independent of the
//! wire format. A path is kept as text when it is UTF-8 and as hex bytes when it is not, so
//! that every file name a filesystem holds survives a restart.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use weft_core::app::{App, AppArgs};
use weft_core::compression::Compression;
use weft_core::location::{BadUrl, Location};
use weft_core::setup::{KeyLayout, ShippedFile, TaskSetup};
use weft_core::spec::{InputListing, JobSpec, PartitionerKind, Program, SpecError};
use weft_core::split::Split;
use weft_core::work::TaskKind;

use weft_core::plan::Plan;

/// A stored value that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not the JSON it should be.
    #[error("not the JSON it should be: {0}")]
    Json(String),
    /// A path's bytes are not hex.
    #[error("bad hex path {0:?}")]
    Hex(String),
    /// A shipped file's bytes are not base64.
    #[error("shipped file {0:?} is not base64")]
    Base64(String),
    /// An `s3://` URL that names no object.
    #[error(transparent)]
    Location(#[from] BadUrl),
    /// A program that no longer exists.
    #[error(transparent)]
    Spec(#[from] SpecError),
}

impl From<serde_json::Error> for DecodeError {
    fn from(e: serde_json::Error) -> Self {
        DecodeError::Json(e.to_string())
    }
}

/// A location: `"text"` (a path, or an `s3://` URL), or `{"hex": "…"}` for a path whose
/// bytes are not UTF-8.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum StoredPath {
    Text(String),
    Bytes { hex: String },
}

impl From<&Location> for StoredPath {
    fn from(location: &Location) -> Self {
        match location.as_str() {
            Some(text) => StoredPath::Text(text.into_owned()),
            None => StoredPath::Bytes {
                hex: location
                    .as_local()
                    .map(|path| path.as_os_str().as_bytes())
                    .unwrap_or_default()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect(),
            },
        }
    }
}

impl TryFrom<StoredPath> for Location {
    type Error = DecodeError;

    fn try_from(path: StoredPath) -> Result<Self, DecodeError> {
        match path {
            StoredPath::Text(text) => Ok(Location::parse(&text)?),
            StoredPath::Bytes { hex } => {
                let digit = |i: usize| {
                    hex.get(i..i + 2)
                        .and_then(|d| u8::from_str_radix(d, 16).ok())
                        .ok_or_else(|| DecodeError::Hex(hex.clone()))
                };
                let bytes = (0..hex.len()).step_by(2).map(digit).collect::<Result<Vec<u8>, _>>()?;
                Ok(Location::Local(PathBuf::from(OsString::from_vec(bytes))))
            }
        }
    }
}

fn locations(stored: Vec<StoredPath>) -> Result<Vec<Location>, DecodeError> {
    stored.into_iter().map(Location::try_from).collect()
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum StoredProgram {
    App {
        name: String,
        /// grep's pattern, also in `args`: coordinators before apps took arguments read
        /// only this.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pattern: Option<String>,
        #[serde(default, skip_serializing_if = "AppArgs::is_empty")]
        args: AppArgs,
    },
    Streaming {
        mapper: String,
        reducer: Option<String>,
        combiner: Option<String>,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredSpec {
    name: String,
    inputs: Vec<StoredPath>,
    output: StoredPath,
    reduce_tasks: u32,
    program: StoredProgram,
    split_size: u64,
    max_attempts: u32,
    task_timeout_ms: Option<u64>,
    priority: i32,
    after: Vec<String>,
    /// Specs stored before output modes had the default.
    #[serde(default = "default_output_mode")]
    output_mode: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    files: Vec<StoredFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    env: Vec<(String, String)>,
    #[serde(default = "one", skip_serializing_if = "is_one")]
    key_fields: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    partition_fields: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    task_memory: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    recursive: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    combine_splits: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    output_compression: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    partitioner: Option<String>,
}

/// A shipped file, its bytes in base64.
#[derive(Debug, Serialize, Deserialize)]
struct StoredFile {
    name: String,
    base64: String,
    #[serde(default)]
    executable: bool,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

fn default_output_mode() -> u32 {
    weft_core::spec::DEFAULT_OUTPUT_MODE
}

/// A spec as the store keeps it.
pub fn encode_spec(spec: &JobSpec) -> Result<String, serde_json::Error> {
    let program = match &spec.program {
        Program::App(app) => StoredProgram::App {
            name: app.name.clone(),
            pattern: app.arg("pattern").map(str::to_string),
            args: app.args.clone(),
        },
        Program::Streaming {
            mapper,
            reducer,
            combiner,
        } => StoredProgram::Streaming {
            mapper: mapper.clone(),
            reducer: reducer.clone(),
            combiner: combiner.clone(),
        },
    };
    let stored = StoredSpec {
        name: spec.name.clone(),
        inputs: spec.inputs.iter().map(StoredPath::from).collect(),
        output: (&spec.output).into(),
        reduce_tasks: spec.reduce_tasks,
        program,
        split_size: spec.split_size,
        max_attempts: spec.max_attempts,
        task_timeout_ms: spec.task_timeout.map(|t| t.as_millis() as u64),
        priority: spec.priority,
        after: spec.after.clone(),
        output_mode: spec.output_mode,
        files: spec
            .files
            .iter()
            .map(|f| StoredFile {
                name: f.name.clone(),
                base64: BASE64.encode(&f.contents),
                executable: f.executable,
            })
            .collect(),
        env: spec.setup.env.clone(),
        key_fields: spec.setup.keys.fields,
        partition_fields: spec.setup.keys.partition_fields,
        task_memory: spec.setup.task_memory,
        recursive: spec.listing.recursive,
        combine_splits: spec.listing.combine_splits,
        output_compression: spec.output_compression.map(|c| c.name().to_string()),
        partitioner: spec.partitioner.map(|p| p.name().to_string()),
    };
    serde_json::to_string(&stored)
}

/// A spec the store kept.
pub fn decode_spec(json: &str) -> Result<JobSpec, DecodeError> {
    let stored: StoredSpec = serde_json::from_str(json)?;
    let program = match stored.program {
        StoredProgram::App {
            name,
            pattern,
            mut args,
        } => {
            if let Some(pattern) = pattern {
                args.entry("pattern".to_string()).or_insert(pattern);
            }
            Program::App(App { name, args })
        }
        StoredProgram::Streaming {
            mapper,
            reducer,
            combiner,
        } => Program::Streaming {
            mapper,
            reducer,
            combiner,
        },
    };
    Ok(JobSpec {
        name: stored.name,
        inputs: locations(stored.inputs)?,
        output: stored.output.try_into()?,
        reduce_tasks: stored.reduce_tasks,
        program,
        split_size: stored.split_size,
        max_attempts: stored.max_attempts,
        task_timeout: stored.task_timeout_ms.map(Duration::from_millis),
        priority: stored.priority,
        after: stored.after,
        output_mode: stored.output_mode,
        listing: InputListing {
            recursive: stored.recursive,
            combine_splits: stored.combine_splits,
        },
        files: stored
            .files
            .into_iter()
            .map(|f| {
                let contents = BASE64
                    .decode(&f.base64)
                    .map_err(|_| DecodeError::Base64(f.name.clone()))?;
                Ok(ShippedFile {
                    name: f.name,
                    contents: contents.into(),
                    executable: f.executable,
                })
            })
            .collect::<Result<_, DecodeError>>()?,
        setup: TaskSetup {
            env: stored.env,
            keys: KeyLayout {
                fields: stored.key_fields,
                partition_fields: stored.partition_fields,
            },
            task_memory: stored.task_memory,
        },
        partitioner: stored
            .partitioner
            .map(|name| PartitionerKind::from_name(&name))
            .transpose()?,
        output_compression: match stored.output_compression {
            None => None,
            Some(name) => Some(Compression::named(&name).ok_or(SpecError::UnknownCompression(name))?),
        },
    })
}

/// The layout weft 0.1 wrote plans in, which this one keeps: it reads them unchanged.
#[derive(Debug, Serialize, Deserialize)]
struct StoredPlan {
    /// (file, start, length) per map task.
    splits: Vec<StoredSplit>,
    /// The files packed after a map task's first split, by map task.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    packed: Vec<(u32, Vec<StoredSplit>)>,
    split_points: Vec<Vec<u8>>,
    input_bytes: u64,
}

type StoredSplit = (StoredPath, u64, u64);

fn split_to_store(s: &Split) -> StoredSplit {
    ((&s.file).into(), s.start, s.length)
}

fn splits_from_store(stored: Vec<StoredSplit>) -> Result<Vec<Split>, DecodeError> {
    stored
        .into_iter()
        .map(|(file, start, length)| {
            Ok(Split {
                file: file.try_into()?,
                start,
                length,
            })
        })
        .collect()
}

/// A plan as the store keeps it.
pub fn encode_plan(plan: &Plan) -> Result<String, serde_json::Error> {
    let stored = StoredPlan {
        splits: plan.splits.iter().map(split_to_store).collect(),
        packed: plan
            .packed
            .iter()
            .map(|(m, more)| (*m, more.iter().map(split_to_store).collect()))
            .collect(),
        split_points: plan.split_points.clone(),
        input_bytes: plan.input_bytes,
    };
    serde_json::to_string(&stored)
}

/// A plan the store kept.
pub fn decode_plan(json: &str) -> Result<Plan, DecodeError> {
    let stored: StoredPlan = serde_json::from_str(json)?;
    Ok(Plan {
        splits: splits_from_store(stored.splits)?,
        packed: stored
            .packed
            .into_iter()
            .map(|(m, more)| Ok((m, splits_from_store(more)?)))
            .collect::<Result<_, DecodeError>>()?,
        split_points: stored.split_points,
        input_bytes: stored.input_bytes,
    })
}

/// How the store writes a task kind (weft 0.1's letters).
pub fn kind_code(kind: TaskKind) -> &'static str {
    match kind {
        TaskKind::Map => "m",
        TaskKind::Reduce => "r",
        TaskKind::Queue => "q",
    }
}

/// The task kind the store wrote as `code`.
pub fn kind_from_code(code: &str) -> Option<TaskKind> {
    TaskKind::ALL.into_iter().find(|k| kind_code(*k) == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_and_plans_keep_paths_that_are_not_utf8() {
        let odd = PathBuf::from(OsString::from_vec(b"/in/bad\xffname.txt".to_vec()));
        let mut spec = JobSpec::new(
            vec![
                Location::Local(odd.clone()),
                Location::local("/in/plain"),
                Location::parse("s3://b/in").unwrap(),
            ],
            Location::local("/out"),
            Program::App(App::new("grep").with_arg("pattern", "a|b")),
        );
        spec.task_timeout = Some(Duration::from_secs(3));
        spec.after = vec!["job-000001".into()];
        let json = encode_spec(&spec).unwrap();
        assert!(json.contains(r#""hex":"2f696e2f626164ff6e616d652e747874""#), "{json}");
        assert_eq!(decode_spec(&json), Ok(spec));

        let plan = Plan {
            splits: vec![Split {
                file: Location::Local(odd.clone()),
                start: 0,
                length: 9,
            }],
            packed: [(
                0,
                vec![Split {
                    file: Location::Local(odd),
                    start: 0,
                    length: 4,
                }],
            )]
            .into(),
            split_points: vec![b"m\xff".to_vec()],
            input_bytes: 9,
        };
        assert_eq!(decode_plan(&encode_plan(&plan).unwrap()), Ok(plan));
    }

    #[test]
    fn plans_written_by_weft_0_1_read_unchanged() {
        let v1 =
            r#"{"splits":[["/tmp/in/a.txt",0,4096],["/tmp/in/a.txt",4096,10]],"split_points":[],"input_bytes":4106}"#;
        let plan = decode_plan(v1).unwrap();
        assert_eq!(plan.splits[1].file, Location::local("/tmp/in/a.txt"));
        assert_eq!(encode_plan(&plan).unwrap(), v1);
    }

    #[test]
    fn task_kinds_keep_their_letters() {
        for kind in TaskKind::ALL {
            assert_eq!(kind_from_code(kind_code(kind)), Some(kind));
        }
        assert_eq!(kind_from_code("x"), None);
    }
}
