//! The scheduler, end to end without gRPC: the job queue, job drivers, task futures and the
//! cluster, on each kind of store, with simulated workers doing what each test tells them.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use weft_core::location::Location;
use weft_core::outcome::{AttemptOutcome, OutcomeKind, Success};
use weft_core::status::counters::{BACKUP_ATTEMPTS, FAILED_ATTEMPTS};
use weft_core::status::JobState;
use weft_core::work::{AttemptId, TaskId, TaskKind, Work};

use crate::store::contract::on_every_store;
use crate::store::StateStore;
use crate::testing::{Scheduler, SimWorker};

async fn outcomes(s: &Scheduler, job: weft_core::work::JobId, task: TaskId) -> Vec<(AttemptId, Option<OutcomeKind>)> {
    s.attempts(job)
        .await
        .into_iter()
        .filter(|a| a.kind == task.kind() && a.index == task.index())
        .map(|a| (a.id, a.outcome))
        .collect()
}

fn names(dir: &Location) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.as_local().expect("a directory"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

async fn a_task_is_retried_until_max_attempts_then_its_job_fails(store: Arc<dyn StateStore>) {
    let s = Scheduler::start(store, |_| {});
    let input = s.input("in", 1, 10);
    let mut spec = s.spec(&input, "out", 1);
    spec.max_attempts = 3;
    let job = s.submit(spec).await;
    let mut worker = SimWorker::join(&s.cluster, "w", 1);
    for number in 1..=3 {
        let a = worker.next().await;
        assert_eq!((a.task, a.number), (TaskId::Map(job, 0), number));
        assert!(worker.fail(&a, &format!("boom {number}")));
    }
    let status = s.ended(job).await;
    assert_eq!(status.state, JobState::Failed);
    assert_eq!(
        status.error.as_deref(),
        Some("map task 0 failed 3 attempts; last: boom 3")
    );
    assert_eq!(status.counters[FAILED_ATTEMPTS], 3);
    assert!(worker.drain().is_empty(), "no fourth attempt");
    s.settled().await;
    let attempts = s.attempts(job).await;
    assert_eq!(attempts.len(), 3);
    assert!(attempts.iter().all(|a| a.outcome == Some(OutcomeKind::Failed)));
    assert_eq!(attempts[2].reason.as_deref(), Some("boom 3"));
    assert!(
        names(&status.output).is_empty(),
        "a failed job leaves its output directory empty"
    );
}

async fn a_straggler_gets_one_backup_and_the_first_commit_wins(store: Arc<dyn StateStore>) {
    let s = Scheduler::start(store, |c| {
        c.backup.min_runtime = Duration::from_millis(50);
        c.backup.check_every = Duration::from_millis(10);
    });
    let input = s.input("in", 4, 10);
    let job = s.submit(s.spec(&input, "out", 0)).await;
    let mut worker = SimWorker::join(&s.cluster, "w", 4);
    let mut first = Vec::new();
    for _ in 0..4 {
        first.push(worker.next().await);
    }
    let straggler = first.iter().position(|a| a.task == TaskId::Map(job, 3)).unwrap();
    let straggler = first.remove(straggler);
    for a in &first {
        assert!(worker.succeed(a));
    }
    let backup = worker.next().await;
    assert_eq!(
        (backup.task, backup.number),
        (straggler.task, 2),
        "a backup of the straggler"
    );
    assert!(worker.succeed(&backup));
    let status = s.ended(job).await;
    assert_eq!(status.state, JobState::Succeeded);
    let late = AttemptOutcome::Succeeded(Success::Part {
        records: 1,
        upload_tags: Vec::new(),
    });
    assert!(!worker.report(&straggler, late), "the loser's report comes too late");
    worker.drain();
    assert_eq!(
        worker.cancelled,
        [straggler.attempt],
        "the loser is stopped on its worker"
    );
    assert_eq!(status.counters[BACKUP_ATTEMPTS], 1, "only the straggler got a backup");
    s.settled().await;
    let committed = s.store.committed_tasks(job).await.unwrap();
    let map3 = committed
        .iter()
        .find(|t| t.kind == TaskKind::Map && t.index == 3)
        .unwrap();
    assert_eq!(map3.attempt, backup.attempt, "the first to finish commits");
    assert_eq!(
        outcomes(&s, job, straggler.task).await,
        [
            (straggler.attempt, Some(OutcomeKind::Cancelled)),
            (backup.attempt, Some(OutcomeKind::Succeeded))
        ]
    );
    for m in 0..3 {
        assert_eq!(
            outcomes(&s, job, TaskId::Map(job, m)).await.len(),
            1,
            "map {m} ran once"
        );
    }
    let part = std::fs::read_to_string(status.output.as_local().unwrap().join("part-00003")).unwrap();
    assert!(part.ends_with(&format!("attempt {}\n", backup.attempt)), "{part}");
}

async fn no_backup_without_a_straggler(store: Arc<dyn StateStore>) {
    let s = Scheduler::start(store, |c| {
        c.backup.min_runtime = Duration::from_millis(200);
        c.backup.check_every = Duration::from_millis(10);
    });
    let input = s.input("in", 4, 10);
    let job = s.submit(s.spec(&input, "out", 1)).await;
    let mut worker = SimWorker::join(&s.cluster, "w", 4);
    for tasks in [4, 1] {
        let mut phase = Vec::new();
        for _ in 0..tasks {
            phase.push(worker.next().await);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        for a in &phase {
            assert!(worker.succeed(a));
        }
    }
    let status = s.ended(job).await;
    assert_eq!(status.state, JobState::Succeeded);
    assert_eq!(status.counters[BACKUP_ATTEMPTS], 0);
    s.settled().await;
    assert_eq!(s.attempts(job).await.len(), 5, "one attempt per task");
}

async fn a_late_report_from_a_lost_attempt_is_rejected(store: Arc<dyn StateStore>) {
    let s = Scheduler::start(store, |c| c.lease_timeout = Duration::from_millis(50));
    let input = s.input("in", 1, 10);
    let job = s.submit(s.spec(&input, "out", 0)).await;
    let mut lost = SimWorker::join(&s.cluster, "lost", 1);
    let first = lost.next().await;
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(s.cluster.expire_leases(), 1, "the silent worker's lease ran out");
    let mut healthy = SimWorker::join(&s.cluster, "healthy", 1);
    let retry = healthy.next().await;
    assert_eq!((retry.task, retry.number), (first.task, 2));
    assert!(!lost.succeed(&first), "the lost attempt's report is rejected");
    assert!(healthy.succeed(&retry));
    let status = s.ended(job).await;
    assert_eq!(status.state, JobState::Succeeded);
    assert_eq!(names(&status.output), ["_SUCCESS", "part-00000"]);
    let part = std::fs::read_to_string(status.output.as_local().unwrap().join("part-00000")).unwrap();
    assert!(part.ends_with(&format!("attempt {}\n", retry.attempt)), "{part}");
    s.settled().await;
    assert_eq!(
        outcomes(&s, job, first.task).await,
        [
            (first.attempt, Some(OutcomeKind::Lost)),
            (retry.attempt, Some(OutcomeKind::Succeeded))
        ]
    );
}

async fn map_output_lost_with_its_worker_runs_again(store: Arc<dyn StateStore>) {
    let s = Scheduler::start(store, |_| {});
    let input = s.input("in", 2, 10);
    let mut a = SimWorker::join(&s.cluster, "a", 2);
    let mut b = SimWorker::join(&s.cluster, "b", 1);
    let job = s.submit(s.spec(&input, "out", 1)).await;
    let on_a = a.next().await;
    let on_b = b.next().await;
    assert!(a.succeed(&on_a) && b.succeed(&on_b));
    let reduce = a.next().await;
    assert_eq!(reduce.task, TaskId::Reduce(job, 0));
    s.cluster.remove_worker(b.id, "test: gone");
    let rerun = a.next().await;
    assert_eq!(
        (rerun.task, rerun.number),
        (on_b.task, 2),
        "the lost output's map runs again"
    );
    assert!(a.succeed(&rerun));
    let fetch_failed = AttemptOutcome::FetchFailed {
        map_attempts: vec![on_b.attempt],
        reason: "b is gone".into(),
    };
    assert!(a.report(&reduce, fetch_failed));
    let again = a.next().await;
    let Work::Reduce(work) = &again.work else {
        panic!("the reduce runs again: {again:?}")
    };
    let attempts: HashSet<AttemptId> = work.maps.iter().map(|m| m.attempt).collect();
    assert_eq!(
        attempts,
        HashSet::from([on_a.attempt, rerun.attempt]),
        "it reads the new output"
    );
    assert!(work.maps.iter().all(|m| m.shuffle_address == a.address));
    assert!(a.succeed(&again));
    let status = s.ended(job).await;
    assert_eq!(status.state, JobState::Succeeded);
    assert_eq!((status.maps_done, status.reduces_done), (2, 1));
    s.settled().await;
    assert_eq!(outcomes(&s, job, on_b.task).await.len(), 2);
    assert_eq!(
        outcomes(&s, job, on_a.task).await.len(),
        1,
        "the output that survived is kept"
    );
}

async fn two_jobs_share_the_slots_fairly(store: Arc<dyn StateStore>) {
    let s = Scheduler::start(store, |_| {});
    let first = s.submit(s.spec(&s.input("one", 4, 10), "out-1", 0)).await;
    let second = s.submit(s.spec(&s.input("two", 4, 10), "out-2", 0)).await;
    s.wait_queued(8).await;
    let mut worker = SimWorker::join(&s.cluster, "w", 2);
    let mut running = vec![worker.next().await, worker.next().await];
    for _ in 0..6 {
        let jobs: HashSet<_> = running.iter().map(|a| a.task.job().unwrap()).collect();
        assert_eq!(
            jobs,
            HashSet::from([first, second]),
            "each job holds one of the two slots"
        );
        let done = running.remove(0);
        assert!(worker.succeed(&done));
        running.push(worker.next().await);
    }
    for a in &running {
        assert!(worker.succeed(a));
    }
    for job in [first, second] {
        assert_eq!(s.ended(job).await.state, JobState::Succeeded);
    }
}

async fn cancel_stops_running_attempts_and_leaves_no_output(store: Arc<dyn StateStore>) {
    let s = Scheduler::start(store, |c| c.max_running_jobs = 1);
    let running = s.submit(s.spec(&s.input("in", 2, 10), "out", 0)).await;
    let queued = s.submit(s.spec(&s.input("in-2", 1, 10), "out-2", 0)).await;
    let mut worker = SimWorker::join(&s.cluster, "w", 2);
    let (m0, m1) = (worker.next().await, worker.next().await);
    assert!(worker.succeed(&m0), "one part is committed before the cancel");
    let queued_status = s.jobs.cancel(queued).await.unwrap().unwrap();
    assert_eq!(queued_status.state, JobState::Cancelled);
    assert!(!s.dir.path().join("out-2").join(".weft-tmp").exists());
    let status = s.jobs.cancel(running).await.unwrap().unwrap();
    assert_eq!((status.state, status.error.as_deref()), (JobState::Cancelled, None));
    worker.drain();
    assert_eq!(worker.cancelled, [m1.attempt]);
    let late = AttemptOutcome::Succeeded(Success::Part {
        records: 1,
        upload_tags: Vec::new(),
    });
    assert!(!worker.report(&m1, late), "a cancelled attempt's report is ignored");
    assert!(names(&status.output).is_empty(), "committed parts are removed");
    s.settled().await;
    assert_eq!(
        outcomes(&s, running, m1.task).await,
        [(m1.attempt, Some(OutcomeKind::Cancelled))]
    );
    assert!(
        s.attempts(queued).await.is_empty(),
        "a queued job never reached a worker"
    );
    let stored = s.store.job(running).await.unwrap().unwrap();
    assert_eq!(stored.state, JobState::Cancelled);
}

async fn queued_jobs_start_by_priority_under_the_running_limit(store: Arc<dyn StateStore>) {
    let s = Scheduler::start(store, |c| c.max_running_jobs = 1);
    let input = s.input("in", 1, 10);
    let first = s.submit(s.spec(&input, "out-1", 0)).await;
    let low = s.submit(s.spec(&input, "out-2", 0)).await;
    let mut urgent = s.spec(&input, "out-3", 0);
    urgent.priority = 5;
    let urgent = s.submit(urgent).await;
    let mut worker = SimWorker::join(&s.cluster, "w", 1);
    let mut order = Vec::new();
    for _ in 0..3 {
        let a = worker.next().await;
        let job = a.task.job().unwrap();
        for other in [first, low, urgent].into_iter().filter(|j| *j != job) {
            let state = s.jobs.status(other).await.unwrap().unwrap().state;
            assert_ne!(state, JobState::Running, "one job runs at a time");
        }
        order.push(job);
        assert!(worker.succeed(&a));
        assert_eq!(s.ended(job).await.state, JobState::Succeeded);
    }
    assert_eq!(
        order,
        [first, urgent, low],
        "higher priority first, then submission order"
    );
}

/// On tokio's paused clock, which the cluster's leases and timeouts read: the times they
/// count are exact however loaded the machine (on the memory store: the SQLite store's
/// writer thread would let the clock run on while it writes).
#[tokio::test(start_paused = true)]
async fn attempts_without_progress_or_past_their_timeout_are_stopped_by_the_coordinator() {
    let opened = crate::store::contract::memory();
    let s = Scheduler::start(opened.store.clone(), |c| {
        c.lease_timeout = Duration::from_millis(50);
        c.progress_timeout = Some(Duration::from_millis(100));
    });
    let input = s.input("in", 1, 10);
    let job = s.submit(s.spec(&input, "out", 0)).await;
    let mut silent = SimWorker::join(&s.cluster, "silent", 1);
    let hung = silent.next().await;
    // Its worker stays alive but the attempt never moves.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        s.cluster.heartbeat(silent.id, &[], 0);
    }
    assert_eq!(s.cluster.expire_attempts(), 1);
    silent.drain();
    assert_eq!(silent.cancelled, [hung.attempt], "its worker is told to stop it");
    let mut good = SimWorker::join(&s.cluster, "good", 1);
    let retry = tokio::select! { a = good.next() => a, a = silent.next() => a };
    assert_eq!((retry.task, retry.number), (hung.task, 2));
    assert!(good.succeed(&retry) || silent.succeed(&retry));
    assert_eq!(s.ended(job).await.state, JobState::Succeeded);
    s.settled().await;
    let first = &s.attempts(job).await[0];
    assert_eq!(first.outcome, Some(OutcomeKind::Failed));
    assert!(
        first.reason.as_deref().unwrap().starts_with("no progress for"),
        "{first:?}"
    );

    // Progress does not help an attempt past its own timeout (plus a lease for the worker
    // to report it itself).
    let mut spec = s.spec(&input, "out-2", 0);
    spec.task_timeout = Some(Duration::from_millis(100));
    let job = s.submit(spec).await;
    let slow = good.next().await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        s.cluster.heartbeat(good.id, &[slow.attempt], 0);
        assert_eq!(
            s.cluster.expire_attempts(),
            0,
            "progress keeps it alive until its timeout"
        );
    }
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(s.cluster.expire_attempts(), 1);
    // Its worker stops it, late: the report is refused, the slot freed.
    assert!(!good.report(&slow, AttemptOutcome::HandedBack));
    let retry = good.next().await;
    assert!(good.succeed(&retry));
    assert_eq!(s.ended(job).await.state, JobState::Succeeded);
    s.settled().await;
    assert_eq!(s.attempts(job).await[0].outcome, Some(OutcomeKind::TimedOut));
}

async fn a_worker_that_hands_back_everything_cannot_run_a_task_forever(store: Arc<dyn StateStore>) {
    let s = Scheduler::start(store, |_| {});
    let input = s.input("in", 1, 10);
    let mut spec = s.spec(&input, "out", 0);
    spec.max_attempts = 2;
    let job = s.submit(spec).await;
    let mut worker = SimWorker::join(&s.cluster, "w", 1);
    let limit = crate::task::FREE_HAND_BACKS + 2;
    for _ in 0..limit {
        let a = worker.next().await;
        assert!(worker.report(&a, AttemptOutcome::HandedBack));
    }
    let status = s.ended(job).await;
    assert_eq!(status.state, JobState::Failed);
    assert!(
        status
            .error
            .as_deref()
            .unwrap()
            .ends_with(&format!("handed back {limit} times")),
        "{status:?}"
    );
    assert!(worker.drain().is_empty());
}

async fn a_worker_whose_attempts_keep_failing_is_excluded_from_the_job(store: Arc<dyn StateStore>) {
    let s = Scheduler::start(store, |_| {});
    let input = s.input("in", 8, 10);
    let job = s.submit(s.spec(&input, "out", 0)).await;
    let mut bad = SimWorker::join(&s.cluster, "bad", 1);
    let mut good = SimWorker::join(&s.cluster, "good", 1);
    let first = good.next().await;
    assert!(good.succeed(&first));
    for n in 1..=crate::task::FAILURES_TO_EXCLUDE {
        let a = bad.next().await;
        assert!(bad.fail(&a, &format!("bad disk {n}")));
    }
    // What was sent to it before its failures were taken in fails too; then it gets nothing.
    tokio::time::sleep(Duration::from_millis(50)).await;
    for a in bad.drain() {
        bad.fail(&a, "bad disk again");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    while !s.jobs.status(job).await.unwrap().unwrap().state.is_final() {
        if let Ok(a) = tokio::time::timeout(Duration::from_millis(100), good.next()).await {
            assert!(good.succeed(&a));
        }
        assert!(
            bad.drain().is_empty(),
            "the excluded worker gets nothing more of the job"
        );
    }
    assert_eq!(s.ended(job).await.state, JobState::Succeeded);
}

async fn ended_jobs_leave_memory_after_their_retention_and_stay_queryable(store: Arc<dyn StateStore>) {
    let s = Scheduler::start(store, |c| c.retain_jobs = 1);
    let input = s.input("in", 2, 10);
    let mut worker = SimWorker::join(&s.cluster, "w", 2);
    let mut ids = Vec::new();
    for n in 0..3 {
        let job = s.submit(s.spec(&input, &format!("out-{n}"), 0)).await;
        for _ in 0..2 {
            let a = worker.next().await;
            assert!(worker.succeed(&a));
        }
        assert_eq!(s.ended(job).await.state, JobState::Succeeded);
        ids.push(job);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while s.jobs.in_memory() > 1 {
        assert!(std::time::Instant::now() < deadline, "ended jobs stayed in memory");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first = s.jobs.status(ids[0]).await.unwrap().expect("still in the store");
    assert_eq!(
        (first.state, first.maps_done, first.maps_total),
        (JobState::Succeeded, 2, 2)
    );
    // A job may still run after one that left memory.
    let mut spec = s.spec(&input, "out-after", 0);
    spec.after = vec![ids[0].to_string()];
    let after = s.submit(spec).await;
    for _ in 0..2 {
        let a = worker.next().await;
        assert!(worker.succeed(&a));
    }
    assert_eq!(s.ended(after).await.state, JobState::Succeeded);
    let counts = s.jobs.counts().await.unwrap();
    assert_eq!(
        (counts.get(JobState::Succeeded), counts.total()),
        (4, 4),
        "jobs that left memory are counted, as the store holds them"
    );
}

/// Whether `job` is in the registry's memory now (not only in the store).
fn in_memory(s: &Scheduler, job: weft_core::work::JobId) -> bool {
    s.jobs.lock().jobs.contains_key(&job)
}

/// `--retain-for`: an ended job leaves memory once it has been over that long, and stays
/// queryable from the store; a job that ended more recently stays in memory.
///
/// The retention is wall-clock time: a job's `ended_ms` and the queue's prune
/// (`Registry::prune`, called by `run_queue` on every wake and at least every second) use
/// `store::now_ms()`, the system clock, which tokio's paused clock does not move. So real
/// time passes here: a short retention, and events awaited with generous deadlines.
async fn ended_jobs_leave_memory_once_retained_for_long_enough_and_stay_queryable(store: Arc<dyn StateStore>) {
    const RETAIN: Duration = Duration::from_secs(4);
    let s = Scheduler::start(store, |c| c.retain_for = RETAIN);
    let input = s.input("in", 1, 10);
    let mut worker = SimWorker::join(&s.cluster, "w", 2);
    let old = s.submit(s.spec(&input, "out-old", 0)).await;
    let a = worker.next().await;
    assert!(worker.succeed(&a));
    let old_ended = s.ended(old).await;
    assert_eq!(old_ended.state, JobState::Succeeded);
    let old_end = old_ended.ended_ms.expect("an ended job has its end");
    let young = s.submit(s.spec(&input, "out-young", 0)).await;
    let held = worker.next().await;
    assert_eq!(held.task, TaskId::Map(young, 0));

    // The young job ends half a retention after the old one: when the old one leaves memory
    // (a retention after its end, and at most a second of the queue's tick later) the young
    // one is still well within its own.
    while crate::store::now_ms() < old_end + RETAIN.as_millis() as i64 / 2 {
        assert!(in_memory(&s, old), "{old} left memory before its retention");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(worker.succeed(&held));
    let young_end = s.ended(young).await.ended_ms.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (left_at, young_stayed) = loop {
        let (old_here, young_here) = {
            let registry = s.jobs.lock();
            (registry.jobs.contains_key(&old), registry.jobs.contains_key(&young))
        };
        if !old_here {
            break (crate::store::now_ms(), young_here);
        }
        assert!(std::time::Instant::now() < deadline, "{old} never left memory");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        left_at - old_end >= RETAIN.as_millis() as i64,
        "{old} left memory {} ms after its end, before its retention",
        left_at - old_end
    );
    assert!(
        left_at - young_end < RETAIN.as_millis() as i64,
        "inconclusive: the young job was past its retention too ({} ms) when the old one left",
        left_at - young_end
    );
    assert!(
        young_stayed,
        "{young} ended {} ms before, within its retention, yet it left memory",
        left_at - young_end
    );
    assert_eq!(s.jobs.in_memory(), 1, "only the young job is in memory");

    // The old job is still found, from the store, as it ended.
    let found = s.jobs.status(old).await.unwrap().expect("in the store");
    assert_eq!(
        (found.state, found.maps_done, found.maps_total, found.ended_ms.is_some()),
        (JobState::Succeeded, 1, 1, true)
    );
    assert_eq!(found.attempts.len(), 1);
    assert_eq!(found.attempts[0].outcome, Some(OutcomeKind::Succeeded));
    let watched = s.jobs.watch(old).await.unwrap().expect("a watch of a stored job");
    assert_eq!(watched.borrow().state, JobState::Succeeded);
    let listed = s.jobs.list(10, &weft_auth::tokens::Caller::open()).await.unwrap();
    let ids: Vec<_> = listed.iter().map(|j| (j.id, j.state)).collect();
    assert_eq!(ids, [(young, JobState::Succeeded), (old, JobState::Succeeded)]);
    assert_eq!(s.jobs.record(old).await.unwrap().unwrap().spec.output, old_ended.output);
}

async fn the_jobs_list_counts_a_running_jobs_attempts_as_its_status_does(store: Arc<dyn StateStore>) {
    let s = Scheduler::start(store, |_| {});
    let input = s.input("in", 4, 10);
    let job = s.submit(s.spec(&input, "out", 0)).await;
    let mut worker = SimWorker::join(&s.cluster, "w", 4);
    let mut running = Vec::new();
    for _ in 0..4 {
        running.push(worker.next().await);
    }
    let one = s.jobs.status(job).await.unwrap().unwrap();
    let listed = s.jobs.list(10, &weft_auth::tokens::Caller::open()).await.unwrap();
    assert_eq!(one.running_attempts, 4);
    assert_eq!(listed.iter().find(|j| j.id == job).unwrap().running_attempts, 4);
    for a in &running {
        assert!(worker.succeed(a));
    }
    assert_eq!(s.ended(job).await.state, JobState::Succeeded);
}

on_every_store!(
    a_task_is_retried_until_max_attempts_then_its_job_fails,
    a_straggler_gets_one_backup_and_the_first_commit_wins,
    no_backup_without_a_straggler,
    a_late_report_from_a_lost_attempt_is_rejected,
    map_output_lost_with_its_worker_runs_again,
    two_jobs_share_the_slots_fairly,
    cancel_stops_running_attempts_and_leaves_no_output,
    queued_jobs_start_by_priority_under_the_running_limit,
    a_worker_that_hands_back_everything_cannot_run_a_task_forever,
    a_worker_whose_attempts_keep_failing_is_excluded_from_the_job,
    ended_jobs_leave_memory_after_their_retention_and_stay_queryable,
    ended_jobs_leave_memory_once_retained_for_long_enough_and_stay_queryable,
    the_jobs_list_counts_a_running_jobs_attempts_as_its_status_does,
);
