//! Conversions between wire messages and the core's domain types, in one place for
//! the client (domain → wire) and the coordinator (wire → domain).

use std::path::PathBuf;
use std::time::Duration;

use weft_core::spec::{self, Builtin, JobSpec, Program, SpecError};
use weft_core::status::{AttemptInfo, JobState, JobStatus, Phase};

use crate::v1;

impl From<&JobSpec> for v1::JobSpec {
    fn from(spec: &JobSpec) -> Self {
        v1::JobSpec {
            name: spec.name.clone(),
            inputs: spec.inputs.iter().map(|p| p.to_string_lossy().into_owned()).collect(),
            output: spec.output.to_string_lossy().into_owned(),
            reduce_tasks: spec.reduce_tasks,
            program: Some(match &spec.program {
                Program::Builtin(app) => v1::job_spec::Program::App(app.into()),
                Program::Streaming { .. } => v1::job_spec::Program::Streaming(program_streaming(&spec.program)),
            }),
            split_size: spec.split_size,
            max_attempts: spec.max_attempts,
            task_timeout_secs: spec.task_timeout.map_or(0, |t| t.as_secs()),
            priority: spec.priority,
            after: spec.after.clone(),
        }
    }
}

impl From<&Builtin> for v1::BuiltinApp {
    fn from(app: &Builtin) -> Self {
        let pattern = match app {
            Builtin::Grep { pattern } => pattern.clone(),
            _ => String::new(),
        };
        v1::BuiltinApp {
            name: app.name().to_string(),
            pattern,
        }
    }
}

fn program_streaming(program: &Program) -> v1::StreamingCommands {
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
        Program::Builtin(_) => v1::StreamingCommands::default(),
    }
}

/// The program as a wire message; `split_points` for the sort app's range partitioner.
pub fn program_to_wire(program: &Program, split_points: Vec<Vec<u8>>, timeout: Option<Duration>) -> v1::Program {
    v1::Program {
        kind: Some(match program {
            Program::Builtin(app) => v1::program::Kind::App(app.into()),
            Program::Streaming { .. } => v1::program::Kind::Streaming(program_streaming(program)),
        }),
        split_points,
        task_timeout_secs: timeout.map_or(0, |t| t.as_secs()),
    }
}

/// The program in a wire message, checked.
pub fn program_from_wire(program: &v1::Program) -> Result<Program, SpecError> {
    match &program.kind {
        Some(v1::program::Kind::App(app)) => builtin_from_wire(app).map(Program::Builtin),
        Some(v1::program::Kind::Streaming(s)) => Ok(streaming_from_wire(s)),
        None => Err(SpecError::NoProgram),
    }
}

fn builtin_from_wire(app: &v1::BuiltinApp) -> Result<Builtin, SpecError> {
    let pattern = (!app.pattern.is_empty()).then_some(app.pattern.as_str());
    Builtin::from_name(&app.name, pattern)
}

fn streaming_from_wire(s: &v1::StreamingCommands) -> Program {
    let optional = |c: &String| (!c.is_empty()).then(|| c.clone());
    Program::Streaming {
        mapper: s.mapper.clone(),
        reducer: optional(&s.reducer),
        combiner: optional(&s.combiner),
    }
}

impl TryFrom<v1::JobSpec> for JobSpec {
    type Error = SpecError;

    /// Applies the defaults for zero fields and runs [`JobSpec::validate`].
    fn try_from(wire: v1::JobSpec) -> Result<Self, SpecError> {
        let program = match &wire.program {
            Some(v1::job_spec::Program::App(app)) => Program::Builtin(builtin_from_wire(app)?),
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
            inputs: wire.inputs.into_iter().map(PathBuf::from).collect(),
            output: PathBuf::from(wire.output),
            reduce_tasks: wire.reduce_tasks,
            program,
            split_size: if wire.split_size == 0 {
                spec::DEFAULT_SPLIT_SIZE
            } else {
                wire.split_size
            },
            max_attempts: if wire.max_attempts == 0 {
                spec::DEFAULT_MAX_ATTEMPTS
            } else {
                wire.max_attempts
            },
            task_timeout: (wire.task_timeout_secs > 0).then(|| Duration::from_secs(wire.task_timeout_secs)),
            priority: wire.priority,
            after: wire.after,
        };
        spec.validate()?;
        Ok(spec)
    }
}

/// A job's status as a wire message.
pub fn status_to_wire(s: &JobStatus) -> v1::JobStatus {
    v1::JobStatus {
        job_id: s.id.clone(),
        name: s.name.clone(),
        state: match s.state {
            JobState::Waiting => v1::JobState::Waiting,
            JobState::Queued => v1::JobState::Queued,
            JobState::Running => v1::JobState::Running,
            JobState::Succeeded => v1::JobState::Succeeded,
            JobState::Failed => v1::JobState::Failed,
            JobState::Cancelled => v1::JobState::Cancelled,
        } as i32,
        phase: s.phase.as_str().to_string(),
        maps_total: s.maps_total,
        maps_done: s.maps_done,
        reduces_total: s.reduces_total,
        reduces_done: s.reduces_done,
        failed_attempts: s.failed_attempts,
        error: s.error.clone().unwrap_or_default(),
        output: s.output.to_string_lossy().into_owned(),
        priority: s.priority,
        after: s.after.clone(),
        created_ms: s.created_ms,
        ended_ms: s.ended_ms.unwrap_or(0),
        counters: s.counters.clone().into_iter().collect(),
        attempts: s
            .attempts
            .iter()
            .map(|a| v1::AttemptInfo {
                attempt_id: a.id,
                kind: a.kind.clone(),
                task_index: a.task_index,
                number: a.number,
                worker: a.worker.clone(),
                outcome: a.outcome.clone(),
                reason: a.reason.clone(),
                started_ms: a.started_ms,
                ended_ms: a.ended_ms,
            })
            .collect(),
        running_attempts: s.running_attempts,
    }
}

/// A job's status from a wire message; an unknown state or phase reads as running.
pub fn status_from_wire(s: v1::JobStatus) -> JobStatus {
    let state = match v1::JobState::try_from(s.state) {
        Ok(v1::JobState::Succeeded) => JobState::Succeeded,
        Ok(v1::JobState::Failed) => JobState::Failed,
        Ok(v1::JobState::Cancelled) => JobState::Cancelled,
        Ok(v1::JobState::Waiting) => JobState::Waiting,
        Ok(v1::JobState::Queued) => JobState::Queued,
        _ => JobState::Running,
    };
    let phase = match s.phase.as_str() {
        "reduce" => Phase::Reduce,
        "done" => Phase::Done,
        _ => Phase::Map,
    };
    JobStatus {
        id: s.job_id,
        name: s.name,
        state,
        phase,
        maps_total: s.maps_total,
        maps_done: s.maps_done,
        reduces_total: s.reduces_total,
        reduces_done: s.reduces_done,
        failed_attempts: s.failed_attempts,
        error: (!s.error.is_empty()).then_some(s.error),
        output: PathBuf::from(s.output),
        priority: s.priority,
        after: s.after,
        created_ms: s.created_ms,
        ended_ms: (s.ended_ms != 0).then_some(s.ended_ms),
        counters: s.counters.into_iter().collect(),
        attempts: s
            .attempts
            .into_iter()
            .map(|a| AttemptInfo {
                id: a.attempt_id,
                kind: a.kind,
                task_index: a.task_index,
                number: a.number,
                worker: a.worker,
                outcome: a.outcome,
                reason: a.reason,
                started_ms: a.started_ms,
                ended_ms: a.ended_ms,
            })
            .collect(),
        running_attempts: s.running_attempts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_specs_survive_the_wire() {
        let spec = JobSpec {
            name: "count".into(),
            inputs: vec!["/data/a".into(), "/data/b".into()],
            output: "/out".into(),
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
            after: vec!["job-1".into()],
        };
        assert_eq!(JobSpec::try_from(v1::JobSpec::from(&spec)), Ok(spec));
    }

    #[test]
    fn statuses_survive_the_wire() {
        let status = JobStatus {
            id: "job-1".into(),
            name: "wc".into(),
            state: JobState::Failed,
            phase: Phase::Done,
            maps_total: 3,
            maps_done: 2,
            reduces_total: 1,
            reduces_done: 0,
            failed_attempts: 4,
            error: Some("boom".into()),
            output: "/out".into(),
            priority: -1,
            after: vec!["job-0".into()],
            created_ms: 1,
            ended_ms: Some(2),
            counters: [("g:n".to_string(), 3)].into(),
            attempts: vec![AttemptInfo {
                id: 9,
                kind: "map".into(),
                task_index: 0,
                number: 1,
                worker: "w:1".into(),
                outcome: "failed".into(),
                reason: "exit 1".into(),
                started_ms: 1,
                ended_ms: 2,
            }],
            running_attempts: 0,
        };
        assert_eq!(status_from_wire(status_to_wire(&status)), status);
    }

    #[test]
    fn unknown_apps_are_refused() {
        let wire = v1::JobSpec {
            inputs: vec!["a".into()],
            output: "o".into(),
            program: Some(v1::job_spec::Program::App(v1::BuiltinApp {
                name: "nope".into(),
                pattern: String::new(),
            })),
            ..Default::default()
        };
        assert_eq!(JobSpec::try_from(wire), Err(SpecError::UnknownApp("nope".into())));
    }
}
