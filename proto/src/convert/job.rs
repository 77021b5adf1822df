//! Jobs on the wire: specs (client → coordinator, and as older coordinators stored them),
//! programs (coordinator → worker), and status snapshots (coordinator → client).

use std::time::Duration;

use prost::Message;
use weft_core::app::{App, AppArgs};
use weft_core::compression::Compression;
use weft_core::location::Location;
use weft_core::outcome::OutcomeKind;
use weft_core::setup::{KeyLayout, ShippedFile, TaskSetup};
use weft_core::spec::{self, InputListing, JobSpec, PartitionerKind, Program, SpecError};
use weft_core::status::{AttemptInfo, JobCounts, JobState, JobStatus, Phase, WorkerStatus};
use weft_core::work::{JobId, JobProgram, TaskKind};

use super::ConvertError;
use crate::v1;

impl From<&JobSpec> for v1::JobSpec {
    fn from(spec: &JobSpec) -> Self {
        v1::JobSpec {
            name: spec.name.clone(),
            inputs: spec.inputs.iter().map(Location::to_text).collect(),
            output: spec.output.to_text(),
            reduce_tasks: spec.reduce_tasks,
            program: Some(match &spec.program {
                Program::App(app) => v1::job_spec::Program::App(app.into()),
                Program::Streaming { .. } => v1::job_spec::Program::Streaming(streaming_to_wire(&spec.program)),
            }),
            split_size: spec.split_size,
            max_attempts: spec.max_attempts,
            task_timeout_secs: spec.task_timeout.map_or(0, |t| t.as_secs()),
            priority: spec.priority,
            after: spec.after.clone(),
            output_mode: spec.output_mode,
            files: files_to_wire(&spec.files).files,
            env: env_to_wire(&spec.setup.env),
            keys: keys_to_wire(spec.setup.keys),
            task_memory: spec.setup.task_memory.unwrap_or(0),
            recursive: spec.listing.recursive,
            combine_splits: spec.listing.combine_splits.unwrap_or(0),
            output_compression: compression_to_wire(spec.output_compression),
            partitioner: spec.partitioner.map(|p| p.name().to_string()).unwrap_or_default(),
        }
    }
}

fn compression_to_wire(compression: Option<Compression>) -> String {
    compression.map(|c| c.name().to_string()).unwrap_or_default()
}

fn compression_from_wire(name: &str) -> Result<Option<Compression>, SpecError> {
    match name {
        "" => Ok(None),
        name => Compression::named(name)
            .map(Some)
            .ok_or_else(|| SpecError::UnknownCompression(name.to_string())),
    }
}

fn env_to_wire(env: &[(String, String)]) -> Vec<v1::EnvVar> {
    env.iter()
        .map(|(name, value)| v1::EnvVar {
            name: name.clone(),
            value: value.clone(),
        })
        .collect()
}

fn keys_to_wire(keys: KeyLayout) -> Option<v1::KeyLayout> {
    (!keys.is_default()).then(|| v1::KeyLayout {
        fields: keys.fields,
        partition_fields: keys.partition_fields.unwrap_or(0),
    })
}

fn setup_from_wire(env: Vec<v1::EnvVar>, keys: Option<v1::KeyLayout>, task_memory: u64) -> TaskSetup {
    let keys = keys.unwrap_or_default();
    TaskSetup {
        env: env.into_iter().map(|v| (v.name, v.value)).collect(),
        keys: KeyLayout {
            fields: keys.fields.max(1),
            partition_fields: (keys.partition_fields > 0).then_some(keys.partition_fields),
        },
        task_memory: (task_memory > 0).then_some(task_memory),
    }
}

/// Shipped files from the wire.
pub fn files_from_wire(files: Vec<v1::ShippedFile>) -> Vec<ShippedFile> {
    files
        .into_iter()
        .map(|f| ShippedFile {
            name: f.name,
            contents: f.contents.into(),
            executable: f.executable,
        })
        .collect()
}

/// Shipped files for the wire.
pub fn files_to_wire(files: &[ShippedFile]) -> v1::ShippedFiles {
    v1::ShippedFiles {
        files: files
            .iter()
            .map(|f| v1::ShippedFile {
                name: f.name.clone(),
                contents: f.contents.to_vec(),
                executable: f.executable,
            })
            .collect(),
    }
}

impl From<&App> for v1::BuiltinApp {
    fn from(app: &App) -> Self {
        v1::BuiltinApp {
            name: app.name.clone(),
            pattern: app.arg("pattern").unwrap_or_default().to_string(),
            args: app.args.clone().into_iter().collect(),
        }
    }
}

fn streaming_to_wire(program: &Program) -> v1::StreamingCommands {
    match program {
        Program::Streaming {
            mapper,
            reducer,
            combiner,
        } => v1::StreamingCommands {
            mapper: mapper.clone(),
            reducer: reducer.clone().unwrap_or_default(),
            combiner: combiner.clone().unwrap_or_default(),
        },
        Program::App(_) => v1::StreamingCommands::default(),
    }
}

/// A job's program as the wire message workers get.
pub fn program_to_wire(program: &JobProgram) -> v1::Program {
    v1::Program {
        kind: Some(match &program.program {
            Program::App(app) => v1::program::Kind::App(app.into()),
            Program::Streaming { .. } => v1::program::Kind::Streaming(streaming_to_wire(&program.program)),
        }),
        split_points: program.split_points.clone(),
        task_timeout_secs: program.task_timeout.map_or(0, |t| t.as_secs()),
        output_mode: program.output_mode,
        data_roots: program.data_roots.iter().map(Location::to_text).collect(),
        env: env_to_wire(&program.setup.env),
        keys: keys_to_wire(program.setup.keys),
        task_memory: program.setup.task_memory.unwrap_or(0),
        files: program.files.clone(),
        output_compression: compression_to_wire(program.output_compression),
    }
}

/// The program in a wire message, checked.
pub fn program_from_wire(program: v1::Program) -> Result<JobProgram, ConvertError> {
    let program_kind = match program.kind {
        Some(v1::program::Kind::App(app)) => Program::App(app_from_wire(app)),
        Some(v1::program::Kind::Streaming(s)) => streaming_from_wire(s),
        None => return Err(SpecError::NoProgram.into()),
    };
    Ok(JobProgram {
        program: program_kind,
        split_points: program.split_points,
        task_timeout: timeout_from_secs(program.task_timeout_secs),
        output_mode: match program.output_mode {
            0 => spec::DEFAULT_OUTPUT_MODE,
            mode => mode,
        },
        data_roots: program
            .data_roots
            .iter()
            .map(|root| Location::parse(root))
            .collect::<Result<_, _>>()?,
        setup: setup_from_wire(program.env, program.keys, program.task_memory),
        files: program.files,
        output_compression: compression_from_wire(&program.output_compression)?,
    })
}

fn timeout_from_secs(secs: u64) -> Option<Duration> {
    (secs > 0).then(|| Duration::from_secs(secs))
}

/// The app in a wire message, as it is: [`JobSpec::validate`] checks it.
fn app_from_wire(app: v1::BuiltinApp) -> App {
    let mut args: AppArgs = app.args.into_iter().collect();
    if !app.pattern.is_empty() {
        args.entry("pattern".to_string()).or_insert(app.pattern);
    }
    App { name: app.name, args }
}

fn streaming_from_wire(s: v1::StreamingCommands) -> Program {
    let optional = |c: String| (!c.is_empty()).then_some(c);
    Program::Streaming {
        mapper: s.mapper,
        reducer: optional(s.reducer),
        combiner: optional(s.combiner),
    }
}

impl TryFrom<v1::JobSpec> for JobSpec {
    type Error = SpecError;

    /// Applies the defaults for zero fields and runs [`JobSpec::validate`].
    fn try_from(wire: v1::JobSpec) -> Result<Self, SpecError> {
        let program = match wire.program {
            Some(v1::job_spec::Program::App(app)) => Program::App(app_from_wire(app)),
            Some(v1::job_spec::Program::Streaming(s)) => {
                if s.mapper.is_empty() {
                    return Err(SpecError::NoProgram);
                }
                streaming_from_wire(s)
            }
            None => return Err(SpecError::NoProgram),
        };
        let spec = JobSpec {
            name: wire.name,
            inputs: wire
                .inputs
                .iter()
                .map(|input| Location::parse(input))
                .collect::<Result<_, _>>()?,
            output: Location::parse(&wire.output)?,
            reduce_tasks: wire.reduce_tasks,
            program,
            split_size: match wire.split_size {
                0 => spec::DEFAULT_SPLIT_SIZE,
                size => size,
            },
            max_attempts: match wire.max_attempts {
                0 => spec::DEFAULT_MAX_ATTEMPTS,
                attempts => attempts,
            },
            task_timeout: timeout_from_secs(wire.task_timeout_secs),
            priority: wire.priority,
            after: wire.after,
            output_mode: match wire.output_mode {
                0 => spec::DEFAULT_OUTPUT_MODE,
                mode => mode,
            },
            listing: InputListing {
                recursive: wire.recursive,
                combine_splits: (wire.combine_splits > 0).then_some(wire.combine_splits),
            },
            files: files_from_wire(wire.files),
            setup: setup_from_wire(wire.env, wire.keys, wire.task_memory),
            output_compression: compression_from_wire(&wire.output_compression)?,
            partitioner: match wire.partitioner.as_str() {
                "" => None,
                name => Some(PartitionerKind::from_name(name)?),
            },
        };
        spec.validate()?;
        Ok(spec)
    }
}

/// A spec as weft 0.1 stored it: the bytes of its `JobSpec` wire message. Read once, when a
/// state database of that version is migrated.
pub fn spec_from_stored_v1(bytes: &[u8]) -> Result<JobSpec, ConvertError> {
    let wire = v1::JobSpec::decode(bytes).map_err(|e| ConvertError::Decode {
        what: "a stored job spec",
        detail: e.to_string(),
    })?;
    Ok(JobSpec::try_from(wire)?)
}

fn state_to_wire(state: JobState) -> v1::JobState {
    match state {
        JobState::Waiting => v1::JobState::Waiting,
        JobState::Queued => v1::JobState::Queued,
        JobState::Running => v1::JobState::Running,
        JobState::Succeeded => v1::JobState::Succeeded,
        JobState::Failed => v1::JobState::Failed,
        JobState::Cancelled => v1::JobState::Cancelled,
    }
}

fn state_from_wire(state: i32) -> Option<JobState> {
    match v1::JobState::try_from(state) {
        Ok(v1::JobState::Waiting) => Some(JobState::Waiting),
        Ok(v1::JobState::Queued) => Some(JobState::Queued),
        Ok(v1::JobState::Running) => Some(JobState::Running),
        Ok(v1::JobState::Succeeded) => Some(JobState::Succeeded),
        Ok(v1::JobState::Failed) => Some(JobState::Failed),
        Ok(v1::JobState::Cancelled) => Some(JobState::Cancelled),
        Ok(v1::JobState::Unspecified) | Err(_) => None,
    }
}

/// Jobs counted by state, as a list's `state_counts`.
pub fn counts_to_wire(counts: &JobCounts) -> Vec<v1::JobStateCount> {
    counts
        .iter()
        .map(|(state, jobs)| v1::JobStateCount {
            state: state_to_wire(state) as i32,
            jobs,
        })
        .collect()
}

/// A list's `state_counts`; a state this weft does not know is left out.
pub fn counts_from_wire(counts: &[v1::JobStateCount]) -> JobCounts {
    let mut read = JobCounts::default();
    for count in counts {
        if let Some(state) = state_from_wire(count.state) {
            read.add(state, count.jobs);
        }
    }
    read
}

fn phase_to_wire(phase: Phase) -> v1::JobPhase {
    match phase {
        Phase::Map => v1::JobPhase::Map,
        Phase::Reduce => v1::JobPhase::Reduce,
        Phase::Done => v1::JobPhase::Done,
    }
}

/// A worker's status as a wire message.
pub fn worker_to_wire(w: &WorkerStatus) -> v1::WorkerInfo {
    v1::WorkerInfo {
        id: w.id,
        address: w.address.clone(),
        slots: w.slots,
        running: w.running,
        heartbeat_age_ms: w.heartbeat_age_ms,
        joined_ms: w.joined_ms,
        succeeded: w.succeeded,
        failed: w.failed,
        draining: w.draining,
        served_bytes: w.served_bytes,
        left_ms: w.left.as_ref().map_or(0, |(at, _)| *at),
        left_because: w.left.as_ref().map(|(_, why)| why.clone()).unwrap_or_default(),
        handlers: super::batch::handlers_to_wire(&w.handlers),
    }
}

/// A worker's status from a wire message.
pub fn worker_from_wire(w: v1::WorkerInfo) -> WorkerStatus {
    WorkerStatus {
        id: w.id,
        address: w.address,
        slots: w.slots,
        running: w.running,
        heartbeat_age_ms: w.heartbeat_age_ms,
        joined_ms: w.joined_ms,
        succeeded: w.succeeded,
        failed: w.failed,
        draining: w.draining,
        served_bytes: w.served_bytes,
        left: (w.left_ms != 0).then_some((w.left_ms, w.left_because)),
        // A coordinator's list holds names it checked.
        handlers: super::batch::handlers_from_wire(w.handlers).unwrap_or_default(),
    }
}

/// A job's status as a wire message.
pub fn status_to_wire(s: &JobStatus) -> v1::JobStatus {
    v1::JobStatus {
        job_id: s.id.to_string(),
        name: s.name.clone(),
        owner: s.owner.clone(),
        state: state_to_wire(s.state) as i32,
        phase: s.phase.as_str().to_string(),
        job_phase: phase_to_wire(s.phase) as i32,
        maps_total: s.maps_total,
        maps_done: s.maps_done,
        reduces_total: s.reduces_total,
        reduces_done: s.reduces_done,
        failed_attempts: s.failed_attempts,
        error: s.error.clone().unwrap_or_default(),
        output: s.output.to_text(),
        priority: s.priority,
        after: s.after.iter().map(JobId::to_string).collect(),
        created_ms: s.created_ms,
        ended_ms: s.ended_ms.unwrap_or(0),
        counters: s.counters.clone().into_iter().collect(),
        attempts: s
            .attempts
            .iter()
            .map(|a| v1::AttemptInfo {
                attempt_id: a.id,
                kind: a.kind.name().to_string(),
                task_index: a.task_index,
                number: a.number,
                worker: a.worker.clone(),
                outcome: a.state().to_string(),
                reason: a.reason.clone(),
                started_ms: a.started_ms,
                ended_ms: a.ended_ms,
            })
            .collect(),
        running_attempts: s.running_attempts,
        whole_files: s.whole_files,
    }
}

/// A job's status from a wire message. An unknown state reads as running; the phase comes
/// from `job_phase`, or from the `phase` name that older coordinators send alone.
pub fn status_from_wire(s: v1::JobStatus) -> Result<JobStatus, ConvertError> {
    let state = state_from_wire(s.state).unwrap_or(JobState::Running);
    let phase = match v1::JobPhase::try_from(s.job_phase) {
        Ok(v1::JobPhase::Map) => Phase::Map,
        Ok(v1::JobPhase::Reduce) => Phase::Reduce,
        Ok(v1::JobPhase::Done) => Phase::Done,
        _ => Phase::from_name(&s.phase).unwrap_or(Phase::Map),
    };
    let attempts = s
        .attempts
        .into_iter()
        .map(attempt_from_wire)
        .collect::<Result<_, _>>()?;
    Ok(JobStatus {
        id: s.job_id.parse()?,
        name: s.name,
        owner: s.owner,
        state,
        phase,
        maps_total: s.maps_total,
        maps_done: s.maps_done,
        reduces_total: s.reduces_total,
        reduces_done: s.reduces_done,
        failed_attempts: s.failed_attempts,
        error: (!s.error.is_empty()).then_some(s.error),
        output: Location::parse(&s.output)?,
        priority: s.priority,
        after: s.after.iter().map(|a| a.parse()).collect::<Result<_, _>>()?,
        created_ms: s.created_ms,
        ended_ms: (s.ended_ms != 0).then_some(s.ended_ms),
        counters: s.counters.into_iter().collect(),
        attempts,
        running_attempts: s.running_attempts,
        whole_files: s.whole_files,
    })
}

fn attempt_from_wire(a: v1::AttemptInfo) -> Result<AttemptInfo, ConvertError> {
    let unknown = |what, name: &str| ConvertError::UnknownName {
        what,
        name: name.to_string(),
    };
    let kind = TaskKind::from_name(&a.kind).ok_or_else(|| unknown("task kind", &a.kind))?;
    let outcome = match a.outcome.as_str() {
        "" | OutcomeKind::RUNNING | AttemptInfo::QUEUED => None,
        name => Some(OutcomeKind::from_name(name).ok_or_else(|| unknown("attempt outcome", name))?),
    };
    Ok(AttemptInfo {
        id: a.attempt_id,
        kind,
        task_index: a.task_index,
        number: a.number,
        worker: a.worker,
        outcome,
        queued: a.outcome == AttemptInfo::QUEUED,
        reason: a.reason,
        started_ms: a.started_ms,
        ended_ms: a.ended_ms,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        /// Whatever a valid spec holds (any text in names, paths and commands) comes back
        /// from the wire as it went; random bytes as a spec are refused, never a panic.
        #[test]
        fn valid_specs_survive_the_wire_and_garbage_is_refused(
            name in ".{0,20}",
            paths in prop::collection::vec("/[^\\x00]{1,20}", 1..4),
            mapper in "[^\\x00]{1,30}",
            reducer in prop::option::of("[^\\x00]{1,30}"),
            reduce_tasks in 0u32..1000,
            split_size in 1u64..u64::MAX,
            max_attempts in 1u32..100,
            timeout_secs in prop::option::of(1u64..100_000),
            priority in any::<i32>(),
            garbage in prop::collection::vec(any::<u8>(), 0..200),
        ) {
            let spec = JobSpec {
                name,
                inputs: paths.iter().map(Location::local).collect(),
                output: Location::local("/out"),
                reduce_tasks,
                program: Program::Streaming { mapper, reducer, combiner: None },
                split_size,
                max_attempts,
                task_timeout: timeout_secs.map(Duration::from_secs),
                priority,
                after: Vec::new(),
                output_mode: 0o640,
                listing: InputListing::default(),
                files: Vec::new(),
                setup: TaskSetup::default(),
                output_compression: None,
                partitioner: None,
            };
            prop_assume!(spec.validate().is_ok());
            prop_assert_eq!(JobSpec::try_from(v1::JobSpec::from(&spec)), Ok(spec));
            if let Ok(wire) = v1::JobSpec::decode(garbage.as_slice()) {
                let _ = JobSpec::try_from(wire);
            }
        }
    }

    #[test]
    fn job_specs_survive_the_wire_and_the_old_store() {
        let spec = JobSpec {
            name: "count".into(),
            inputs: vec![Location::local("/data/a"), Location::parse("s3://b/data/b").unwrap()],
            output: Location::local("/out"),
            reduce_tasks: 3,
            program: Program::Streaming {
                mapper: "tr ' ' '\\n'".into(),
                reducer: Some("uniq -c".into()),
                combiner: None,
            },
            split_size: 1000,
            max_attempts: 2,
            task_timeout: Some(Duration::from_secs(30)),
            priority: 5,
            after: vec!["job-000001".into()],
            output_mode: 0o600,
            listing: InputListing {
                recursive: true,
                combine_splits: Some(1 << 20),
            },
            files: vec![ShippedFile {
                name: "map.py".into(),
                contents: b"print()".to_vec().into(),
                executable: true,
            }],
            setup: TaskSetup {
                env: vec![("LANG".into(), "C".into())],
                keys: KeyLayout {
                    fields: 2,
                    partition_fields: Some(1),
                },
                task_memory: Some(1 << 30),
            },
            output_compression: Some(Compression::Zstd),
            partitioner: Some(PartitionerKind::Hash),
        };
        let wire = v1::JobSpec::from(&spec);
        assert_eq!(spec_from_stored_v1(&wire.encode_to_vec()), Ok(spec.clone()));
        assert_eq!(JobSpec::try_from(wire), Ok(spec));
        assert!(matches!(
            spec_from_stored_v1(b"\xff\xff"),
            Err(ConvertError::Decode { .. })
        ));
    }

    #[test]
    fn statuses_survive_the_wire() {
        let status = JobStatus {
            id: JobId::new(1),
            name: "wc".into(),
            owner: "alice".into(),
            state: JobState::Failed,
            phase: Phase::Done,
            maps_total: 3,
            maps_done: 2,
            reduces_total: 1,
            reduces_done: 0,
            failed_attempts: 4,
            error: Some("boom".into()),
            output: Location::local("/out"),
            priority: -1,
            after: vec![JobId::new(0)],
            created_ms: 1,
            ended_ms: Some(2),
            counters: [("g:n".to_string(), 3)].into(),
            attempts: vec![
                AttemptInfo {
                    id: 9,
                    kind: TaskKind::Map,
                    task_index: 0,
                    number: 1,
                    worker: "w:1".into(),
                    outcome: Some(OutcomeKind::TimedOut),
                    queued: false,
                    reason: "timed out after 3 s".into(),
                    started_ms: 1,
                    ended_ms: 2,
                },
                AttemptInfo {
                    id: 10,
                    kind: TaskKind::Reduce,
                    task_index: 0,
                    number: 1,
                    worker: String::new(),
                    outcome: None,
                    queued: true,
                    reason: String::new(),
                    started_ms: 3,
                    ended_ms: 0,
                },
            ],
            running_attempts: 0,
            whole_files: 2,
        };
        let wire = status_to_wire(&status);
        assert_eq!(
            (wire.phase.as_str(), wire.attempts[1].outcome.as_str()),
            ("done", "queued")
        );
        assert_eq!(status_from_wire(wire), Ok(status));
    }

    #[test]
    fn an_older_coordinator_s_phase_name_is_read() {
        let mut wire = status_to_wire(&JobStatus {
            id: JobId::new(3),
            name: String::new(),
            owner: String::new(),
            state: JobState::Running,
            phase: Phase::Reduce,
            maps_total: 0,
            maps_done: 0,
            reduces_total: 0,
            reduces_done: 0,
            failed_attempts: 0,
            error: None,
            output: Location::local(""),
            priority: 0,
            after: vec![],
            created_ms: 0,
            ended_ms: None,
            counters: Default::default(),
            attempts: vec![],
            running_attempts: 0,
            whole_files: 0,
        });
        wire.job_phase = 0;
        assert_eq!(status_from_wire(wire).unwrap().phase, Phase::Reduce);
    }

    #[test]
    fn unknown_apps_and_malformed_statuses_are_refused() {
        let wire = v1::JobSpec {
            inputs: vec!["a".into()],
            output: "o".into(),
            program: Some(v1::job_spec::Program::App(v1::BuiltinApp {
                name: "nope".into(),
                ..Default::default()
            })),
            ..Default::default()
        };
        assert_eq!(JobSpec::try_from(wire), Err(SpecError::UnknownApp("nope".into())));
        let bad_id = v1::JobStatus {
            job_id: "nope".into(),
            ..Default::default()
        };
        assert!(matches!(status_from_wire(bad_id), Err(ConvertError::BadId(_))));
    }

    #[test]
    fn an_apps_arguments_travel_by_name_and_greps_pattern_also_in_its_old_field() {
        let grep = App::new("grep").with_arg("pattern", "fox");
        let wire = v1::BuiltinApp::from(&grep);
        assert_eq!(wire.pattern, "fox");
        assert_eq!(app_from_wire(wire), grep);
        let from_an_older_peer = v1::BuiltinApp {
            name: "grep".into(),
            pattern: "fox".into(),
            ..Default::default()
        };
        assert_eq!(app_from_wire(from_an_older_peer), grep);
        let both = v1::BuiltinApp {
            name: "grep".into(),
            pattern: "old".into(),
            args: [("pattern".to_string(), "fox".to_string())].into_iter().collect(),
        };
        assert_eq!(app_from_wire(both), grep);
    }
}
