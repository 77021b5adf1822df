//! Properties of the core's algorithms over generated inputs: the record framing, the split
//! boundaries, the job and task state machines and the spec checks hold for whatever
//! proptest throws at them, and damaged input is an error, never a panic.

use std::io::Cursor;

use proptest::prelude::*;
use weft_core::app::App;
use weft_core::location::Location;
use weft_core::record::{encode, RecordReader};
use weft_core::spec::{check_reduce_tasks, JobSpec, Program};
use weft_core::split::{plan_splits, SplitLines};
use weft_core::status::{JobState, JobStatus, Phase, TaskState};
use weft_core::work::JobId;

/// Key and value pairs.
type Records = Vec<(Vec<u8>, Vec<u8>)>;

fn records() -> impl Strategy<Value = Records> {
    prop::collection::vec(
        (
            prop::collection::vec(any::<u8>(), 0..40),
            prop::collection::vec(any::<u8>(), 0..300),
        ),
        0..30,
    )
}

/// Reads records until the end or the first error; panics only if the reader does.
fn read_all(bytes: &[u8]) -> Result<Records, std::io::Error> {
    let mut reader = RecordReader::new(Cursor::new(bytes));
    let mut out = Vec::new();
    while reader.advance()? {
        out.push((reader.key().to_vec(), reader.value().to_vec()));
    }
    Ok(out)
}

/// Text of lines of letters and spaces, some empty, the last one with or without its newline.
fn text() -> impl Strategy<Value = Vec<u8>> {
    (prop::collection::vec("[a-z ]{0,30}", 0..60), any::<bool>()).prop_map(|(lines, open_end)| {
        let mut text = lines.join("\n").into_bytes();
        if !open_end && !text.is_empty() {
            text.push(b'\n');
        }
        text
    })
}

fn job_states() -> impl Strategy<Value = JobState> {
    prop::sample::select(JobState::ALL.to_vec())
}

fn task_states() -> impl Strategy<Value = TaskState> {
    prop::sample::select(TaskState::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn records_round_trip(records in records()) {
        let mut bytes = Vec::new();
        for (k, v) in &records {
            encode(&mut bytes, k, v);
        }
        prop_assert_eq!(read_all(&bytes).unwrap(), records);
    }

    #[test]
    fn a_cut_record_stream_is_an_error_and_never_a_panic(records in records(), cut in any::<prop::sample::Index>()) {
        let mut bytes = Vec::new();
        let mut ends = vec![0];
        for (k, v) in &records {
            encode(&mut bytes, k, v);
            ends.push(bytes.len());
        }
        let at = cut.index(bytes.len() + 1);
        let read = read_all(&bytes[..at]);
        // Cut at a record boundary, the records before it; anywhere else, an error.
        match ends.iter().position(|&end| end == at) {
            Some(whole) => prop_assert_eq!(read.unwrap(), records[..whole].to_vec()),
            None => prop_assert!(read.is_err()),
        }
    }

    #[test]
    fn random_bytes_read_as_records_are_an_error_or_records_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = read_all(&bytes);
    }

    #[test]
    fn splits_read_every_line_exactly_once(text in text(), split_size in 1u64..200) {
        let splits = plan_splits(&[(Location::local("f"), text.len() as u64)], split_size);
        let mut lines = Vec::new();
        let mut runs = Vec::new();
        let mut covered = 0;
        for split in &splits {
            prop_assert_eq!(split.start, covered, "splits tile the file");
            covered += split.length;
            let mut reader = SplitLines::new(Cursor::new(&text), split.start, split.length).unwrap();
            while let Some(line) = reader.next_line().unwrap() {
                lines.push(line.to_vec());
            }
            let mut reader = SplitLines::new(Cursor::new(&text), split.start, split.length).unwrap();
            while let Some(run) = reader.next_lines().unwrap() {
                runs.extend_from_slice(run);
            }
        }
        prop_assert_eq!(covered, text.len() as u64);
        let expected: Vec<Vec<u8>> = if text.is_empty() {
            Vec::new()
        } else {
            text.strip_suffix(b"\n").unwrap_or(&text).split(|b| *b == b'\n').map(<[u8]>::to_vec).collect()
        };
        prop_assert_eq!(lines, expected, "line by line");
        prop_assert_eq!(runs, text, "run by run, the bytes as they are");
    }

    #[test]
    fn a_job_moves_only_forward_and_an_ended_job_stays_ended(moves in prop::collection::vec(job_states(), 0..20)) {
        let mut status = JobStatus {
            id: JobId::new(1),
            name: String::new(),
            owner: String::new(),
            state: JobState::Waiting,
            phase: Phase::Map,
            maps_total: 0,
            maps_done: 0,
            reduces_total: 0,
            reduces_done: 0,
            failed_attempts: 0,
            error: None,
            output: Location::local(""),
            priority: 0,
            after: Vec::new(),
            created_ms: 0,
            ended_ms: None,
            counters: Default::default(),
            attempts: Vec::new(),
            running_attempts: 0,
            whole_files: 0,
        };
        for next in moves {
            let from = status.state;
            let moved = status.transition(next);
            prop_assert_eq!(moved, from.can_become(next));
            prop_assert_eq!(status.state, if moved { next } else { from });
            if from.is_final() {
                prop_assert!(!moved, "{:?} is an end", from);
            }
        }
    }

    #[test]
    fn task_states_end_where_they_must(from in task_states(), to in task_states()) {
        let legal = from.can_become(to);
        // Failed and cancelled tasks are done; a commit can only be lost, and lost output
        // only runs again (or is dropped with its job).
        match from {
            TaskState::Failed | TaskState::Cancelled => prop_assert!(!legal),
            TaskState::Committed => prop_assert_eq!(legal, to == TaskState::OutputLost),
            TaskState::OutputLost => prop_assert_eq!(legal, matches!(to, TaskState::Running | TaskState::Cancelled)),
            _ => {}
        }
        prop_assert!(!(legal && from == to), "no state moves to itself");
    }

    #[test]
    fn spec_checks_never_panic_and_accept_only_sane_specs(
        reduce_tasks in any::<i64>(),
        split_size in any::<u64>(),
        max_attempts in any::<u32>(),
        output_mode in any::<u32>(),
        pattern in ".{0,12}",
        mapper in ".{0,12}",
        streaming in any::<bool>(),
    ) {
        let reduce = check_reduce_tasks(reduce_tasks);
        prop_assert_eq!(reduce.is_ok(), (0..=weft_core::spec::MAX_REDUCE_TASKS as i64).contains(&reduce_tasks));
        let program = if streaming {
            Program::Streaming { mapper: mapper.clone(), reducer: None, combiner: None }
        } else {
            Program::App(App::new("grep").with_arg("pattern", pattern.clone()))
        };
        let mut spec = JobSpec::new(vec![Location::local("/in")], Location::local("/out"), program);
        spec.reduce_tasks = reduce.unwrap_or(1);
        spec.split_size = split_size;
        spec.max_attempts = max_attempts;
        spec.output_mode = output_mode;
        let valid = spec.validate().is_ok();
        let sane = split_size > 0
            && max_attempts > 0
            && output_mode <= 0o777
            && if streaming { !mapper.trim().is_empty() } else { regex::bytes::Regex::new(&pattern).is_ok() };
        prop_assert_eq!(valid, sane);
    }
}
