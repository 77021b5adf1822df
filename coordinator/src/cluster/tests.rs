use tokio::sync::mpsc;
use weft_core::messages::{HeldOutput, Registration, ToWorker};
use weft_core::outcome::{AttemptOutcome, Report, Success};
use weft_core::work::{
    Assignment, BatchId, HandlerKind, HandlerName, JobId, QueueTask, TaskId, TaskKind, Work, WorkerId,
};

use super::*;

fn cluster() -> Arc<Cluster> {
    Cluster::in_memory(ClusterConfig::with_lease(Duration::from_millis(50)))
}

const JOB: Owner = Owner {
    key: 1,
    identity: 0,
    priority: 0,
    fill_slots: false,
};

fn queue_task(attempt: AttemptId) -> Assignment {
    Assignment {
        attempt,
        number: 1,
        task: TaskId::Queue(BatchId::new(1), 0),
        work: Work::Queue(QueueTask::new(HandlerName::new("noop").unwrap(), Vec::new())),
        timeout: None,
    }
}

fn done(attempt: AttemptId, output: &[u8]) -> Report {
    Report {
        attempt,
        outcome: AttemptOutcome::Succeeded(Success::Queue(output.to_vec())),
        counters: Default::default(),
    }
}

fn assigned(rx: &mut mpsc::UnboundedReceiver<ToWorker>) -> Vec<AttemptId> {
    let mut ids = Vec::new();
    while let Ok(message) = rx.try_recv() {
        if let ToWorker::Assign(batch) = message {
            ids.extend(batch.iter().map(|a| a.attempt));
        }
    }
    ids
}

/// A worker at `address` with `slots` joins; and what the cluster sends it.
fn join(cluster: &Cluster, address: &str, slots: u32) -> (WorkerId, mpsc::UnboundedReceiver<ToWorker>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (cluster.register(Registration::new(address, slots), tx), rx)
}

#[tokio::test]
async fn attempts_go_only_to_workers_with_credit_and_are_spread() {
    let cluster = cluster();
    let (tx_a, mut rx_a) = mpsc::unbounded_channel();
    let (tx_b, mut rx_b) = mpsc::unbounded_channel();
    let a = cluster.register(Registration::new("a:1", 2), tx_a);
    let b = cluster.register(Registration::new("b:1", 2), tx_b);
    let attempts: Vec<Attempt> = (0..4).map(|_| cluster.dispatch(JOB, queue_task)).collect();
    assert!(assigned(&mut rx_a).is_empty(), "no credit, no work");
    cluster.grant_credit(a, 2);
    cluster.grant_credit(b, 2);
    let (on_a, on_b) = (assigned(&mut rx_a), assigned(&mut rx_b));
    assert_eq!(on_a.len() + on_b.len(), 4);
    assert_eq!(on_a.len(), 2);
    let id = attempts[0].id();
    let holder = if on_a.contains(&id) { a } else { b };
    let other = if holder == a { b } else { a };
    assert!(!cluster.report(other, done(id, b"")), "not its attempt");
    assert!(cluster.report(holder, done(id, b"ok")));
    let mut attempts = attempts.into_iter();
    let finished = attempts.next().unwrap().await;
    assert_eq!(
        finished.outcome,
        AttemptOutcome::Succeeded(Success::Queue(b"ok".to_vec()))
    );
    assert_eq!(finished.placement.unwrap().worker, holder);
}

#[tokio::test]
async fn batch_attempts_fill_a_worker_and_job_attempts_spread() {
    for (fill_slots, expected) in [(true, (3, 0)), (false, (2, 1))] {
        let cluster = cluster();
        let (tx_a, mut rx_a) = mpsc::unbounded_channel();
        let (tx_b, mut rx_b) = mpsc::unbounded_channel();
        let a = cluster.register(Registration::new("a:1", 3), tx_a);
        let b = cluster.register(Registration::new("b:1", 3), tx_b);
        cluster.grant_credit(a, 3);
        cluster.grant_credit(b, 3);
        let owner = Owner { fill_slots, ..JOB };
        let _attempts: Vec<Attempt> = (0..3).map(|_| cluster.enqueue(owner, queue_task)).collect();
        assert_eq!(cluster.waiting(), 3, "enqueued attempts wait for a pump");
        cluster.pump();
        assert_eq!(cluster.waiting(), 0);
        let on = (assigned(&mut rx_a).len(), assigned(&mut rx_b).len());
        assert_eq!(on, expected, "fill_slots: {fill_slots}");
    }
}

#[tokio::test]
async fn a_lost_worker_loses_its_attempts_and_is_announced() {
    let cluster = cluster();
    let mut lost = cluster.watch_lost_workers();
    let (tx, _rx) = mpsc::unbounded_channel();
    let w = cluster.register(Registration::new("w:1", 1), tx);
    cluster.grant_credit(w, 1);
    let attempt = cluster.dispatch(JOB, queue_task);
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(cluster.expire_leases(), 1);
    assert!(matches!(attempt.await.outcome, AttemptOutcome::Lost(reason) if reason.contains("lease expired")));
    assert_eq!(
        lost.recv().await.unwrap(),
        LostWorker {
            id: w,
            shuffle_address: "w:1".into()
        }
    );
    assert!(cluster.workers().is_empty());
}

#[tokio::test]
async fn dropping_an_attempt_cancels_it_on_its_worker() {
    let cluster = cluster();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let w = cluster.register(Registration::new("w:1", 1), tx);
    cluster.grant_credit(w, 1);
    let attempt = cluster.dispatch(JOB, queue_task);
    let id = attempt.id();
    assert_eq!(assigned(&mut rx), vec![id]);
    drop(attempt);
    assert_eq!(rx.try_recv().unwrap(), ToWorker::Cancel(vec![id]));
    assert!(!cluster.report(w, done(id, b"")), "late report ignored");
}

#[tokio::test]
async fn a_cancelled_queued_attempt_never_reaches_a_worker() {
    let cluster = cluster();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let w = cluster.register(Registration::new("w:1", 1), tx);
    drop(cluster.dispatch(JOB, queue_task));
    let kept = cluster.dispatch(JOB, queue_task);
    cluster.grant_credit(w, 2);
    assert_eq!(assigned(&mut rx), vec![kept.id()]);
    assert!(cluster.has_idle_slot(), "one slot of two is still free");
}

#[tokio::test]
async fn a_report_of_the_wrong_kind_is_rejected_and_fails_the_attempt() {
    let cluster = cluster();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let w = cluster.register(Registration::new("w:1", 1), tx);
    cluster.grant_credit(w, 1);
    let attempt = cluster.dispatch(JOB, queue_task);
    let id = attempt.id();
    assert_eq!(assigned(&mut rx), vec![id]);
    let wrong = Report {
        attempt: id,
        outcome: AttemptOutcome::Succeeded(Success::MapOutput {
            partition_bytes: vec![1],
            records: 1,
        }),
        counters: Default::default(),
    };
    assert!(!cluster.report(w, wrong));
    assert!(matches!(attempt.await.outcome, AttemptOutcome::Failed(why) if why.contains("rejected report")));
    assert!(!cluster.report(w, done(id, b"")), "and nothing more is taken from it");
    assert_eq!(cluster.metrics().rejected_reports.get(), 2);
}

fn task_for(handler: &str) -> impl FnOnce(AttemptId) -> Assignment + '_ {
    move |attempt| Assignment {
        work: Work::Queue(QueueTask::new(HandlerName::new(handler).unwrap(), Vec::new())),
        ..queue_task(attempt)
    }
}

fn serving(address: &str, slots: u32, handlers: &[(&str, HandlerKind)]) -> Registration {
    Registration {
        handlers: handlers
            .iter()
            .map(|(n, k)| (HandlerName::new(n).unwrap(), *k))
            .collect(),
        ..Registration::new(address, slots)
    }
}

#[tokio::test]
async fn tasks_go_only_to_workers_that_serve_their_handler_and_wait_for_one() {
    let cluster = cluster();
    let (tx_gpu, mut rx_gpu) = mpsc::unbounded_channel();
    let (tx_cpu, mut rx_cpu) = mpsc::unbounded_channel();
    let gpu = cluster.register(serving("gpu:1", 4, &[("render", HandlerKind::Linked)]), tx_gpu);
    let cpu = cluster.register(Registration::new("cpu:1", 4), tx_cpu);
    cluster.grant_credit(cpu, 4);
    cluster.grant_credit(gpu, 4);
    let renders: Vec<Attempt> = (0..3).map(|_| cluster.dispatch(BATCH, task_for("render"))).collect();
    let echoes: Vec<Attempt> = (0..3).map(|_| cluster.dispatch(BATCH, task_for("echo"))).collect();
    let resize = cluster.dispatch(BATCH, task_for("resize"));
    let (on_gpu, on_cpu) = (assigned(&mut rx_gpu), assigned(&mut rx_cpu));
    let ids = |attempts: &[Attempt]| attempts.iter().map(Attempt::id).collect::<Vec<_>>();
    assert!(ids(&renders).iter().all(|id| on_gpu.contains(id)), "{on_gpu:?}");
    assert!(ids(&echoes).iter().all(|id| on_cpu.contains(id)), "{on_cpu:?}");
    assert!(!on_gpu.contains(&resize.id()) && !on_cpu.contains(&resize.id()));
    assert_eq!(cluster.waiting(), 1, "the resize task waits");
    let name = |n: &str| HandlerName::new(n).unwrap();
    assert_eq!(cluster.unserved(&[name("resize"), name("echo")]), [name("resize")]);
    assert!(cluster.served_handlers().contains(&name("render")));
    let (tx_late, mut rx_late) = mpsc::unbounded_channel();
    let late = cluster.register(serving("late:1", 1, &[("resize", HandlerKind::Command)]), tx_late);
    cluster.grant_credit(late, 1);
    assert_eq!(
        assigned(&mut rx_late),
        [resize.id()],
        "a worker that serves it takes it"
    );
    assert_eq!(cluster.handler_kind(&name("resize")), Some(HandlerKind::Command));
    cluster.remove_worker(late, "test");
    assert_eq!(cluster.unserved(&[name("resize")]), [name("resize")]);
}

const BATCH: Owner = Owner {
    key: 1 << 62,
    identity: 0,
    priority: 0,
    fill_slots: true,
};

#[tokio::test]
async fn a_draining_worker_gets_nothing_more_and_is_remembered_once_it_leaves() {
    let cluster = cluster();
    let (a, mut rx_a) = join(&cluster, "a:1", 2);
    let (b, mut rx_b) = join(&cluster, "b:1", 2);
    cluster.grant_credit(a, 2);
    cluster.grant_credit(b, 2);
    cluster.drain(a);
    let _attempts: Vec<Attempt> = (0..2).map(|_| cluster.dispatch(JOB, queue_task)).collect();
    assert!(assigned(&mut rx_a).is_empty(), "a drains");
    assert_eq!(assigned(&mut rx_b).len(), 2);
    assert_eq!(cluster.capacity(), 2, "a draining worker's slots are not counted");
    cluster.remove_worker(a, SESSION_CLOSED);
    assert_eq!(cluster.workers().iter().map(|w| w.id).collect::<Vec<_>>(), [b]);
    let departed = cluster.departed();
    assert_eq!((departed.len(), departed[0].id, departed[0].draining), (1, a, true));
    assert_eq!(departed[0].left.as_ref().unwrap().1, SESSION_CLOSED);
}

#[tokio::test]
async fn an_owner_kept_off_a_worker_runs_elsewhere_until_its_job_is_forgotten() {
    let cluster = cluster();
    let (a, mut rx_a) = join(&cluster, "a:1", 2);
    let (b, mut rx_b) = join(&cluster, "b:1", 2);
    assert!(cluster.exclude(JOB.key, a));
    assert!(!cluster.exclude(JOB.key, a), "already kept off it");
    assert!(!cluster.exclude(JOB.key, b), "that would leave the owner no worker");
    cluster.grant_credit(a, 2);
    cluster.grant_credit(b, 2);
    let _attempts: Vec<Attempt> = (0..2).map(|_| cluster.dispatch(JOB, queue_task)).collect();
    assert_eq!((assigned(&mut rx_a).len(), assigned(&mut rx_b).len()), (0, 2));
    assert_eq!(cluster.running(JOB.key), 2);
    cluster.forget_job(JobId::new(JOB.key));
    let next = cluster.dispatch(JOB, queue_task);
    assert_eq!(assigned(&mut rx_a), [next.id()], "the exclusion ended with the job");
    assert!(assigned(&mut rx_b).is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_attempt_past_its_timeout_and_the_lease_is_stopped_on_its_worker() {
    let cluster = cluster();
    let (w, mut rx) = join(&cluster, "w:1", 1);
    cluster.grant_credit(w, 1);
    let timeout = Duration::from_millis(10);
    let attempt = cluster.dispatch(JOB, |id| Assignment {
        timeout: Some(timeout),
        ..queue_task(id)
    });
    let id = attempt.id();
    assert_eq!(assigned(&mut rx), [id]);
    assert_eq!(cluster.placement(id).unwrap().0.worker, w);
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(cluster.running_longer_than(JOB.key, Duration::from_millis(20)), [id]);
    assert_eq!(
        cluster.expire_attempts(),
        0,
        "the worker has a lease (50 ms) to report it"
    );
    tokio::time::sleep(Duration::from_millis(40)).await;
    assert_eq!(cluster.expire_attempts(), 1);
    assert_eq!(rx.try_recv().unwrap(), ToWorker::Cancel(vec![id]));
    assert_eq!(attempt.await.outcome, AttemptOutcome::TimedOut(timeout));
    assert_eq!(cluster.placement(id), None);
}

#[tokio::test]
async fn held_outputs_are_known_when_a_join_is_told_and_go_with_their_worker() {
    let cluster = cluster();
    let (kept, ended) = (JobId::new(7), JobId::new(8));
    let joined = cluster.worker_joined();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let held = |job, attempt| HeldOutput { job, task: 0, attempt };
    let registration = Registration {
        held: vec![held(kept, 3), held(ended, 4)],
        ..Registration::new("w:1", 1)
    };
    let w = cluster.register(registration, tx);
    tokio::time::timeout(Duration::from_secs(5), joined)
        .await
        .expect("the join is told");
    assert_eq!(cluster.held_output(kept, 0, Some(3)).unwrap().shuffle_address, "w:1");
    assert_eq!(cluster.held_jobs(w), [kept, ended]);
    cluster.forget_on(w, vec![ended]);
    assert_eq!(rx.try_recv().unwrap(), ToWorker::Forget(vec![ended]));
    assert_eq!(cluster.held_jobs(w), [kept]);
    cluster.remove_worker(w, "test");
    assert_eq!(cluster.held_output(kept, 0, None), None);
}

fn cancelled(rx: &mut mpsc::UnboundedReceiver<ToWorker>) -> Vec<AttemptId> {
    let mut ids = Vec::new();
    while let Ok(message) = rx.try_recv() {
        if let ToWorker::Cancel(batch) = message {
            ids.extend(batch);
        }
    }
    ids
}

#[tokio::test]
async fn carried_attempts_are_claimed_with_a_report_that_came_first_and_the_rest_cancelled() {
    // A coordinator that took over: its own attempt ids start past the carried ones.
    let mut config = ClusterConfig::with_lease(Duration::from_millis(50));
    config.recovery_grace = Duration::from_millis(100);
    let cluster = Cluster::new(config, 100, Box::new(|_| {}));
    let job = JobId::new(1);
    let carried = |attempt| weft_core::messages::CarriedAttempt {
        job,
        attempt,
        kind: TaskKind::Map,
        index: attempt as u32,
        number: 1,
    };
    let registration = Registration {
        carried: vec![carried(7), carried(8), carried(9), carried(150)],
        ..Registration::new("w:1", 4)
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let w = cluster.register(registration, tx);
    cluster.cancel_carried_from_here(w);
    assert_eq!(
        cancelled(&mut rx),
        [150],
        "one this coordinator gave out was lost with its session already"
    );
    assert_eq!(cluster.carried(job, TaskKind::Map, 8), Some((8, 1)));
    assert_eq!(cluster.carried(job, TaskKind::Reduce, 8), None, "another task's");
    assert_eq!(cluster.carried(JobId::new(2), TaskKind::Map, 8), None, "another job's");

    // Attempt 7 ended while the worker had no coordinator: its report comes before the claim.
    cluster.report_all(w, [done(7, b"seven")], 1);
    let seven = cluster.claim_carried(JOB, queue_task(7)).expect("carried");
    let finished = seven.await;
    assert_eq!(
        finished.outcome,
        AttemptOutcome::Succeeded(Success::Queue(b"seven".to_vec()))
    );
    assert_eq!(finished.placement.unwrap().worker, w);

    // Attempt 8 still runs: claimed, it resolves with its report like any attempt.
    let eight = cluster.claim_carried(JOB, queue_task(8)).expect("carried");
    assert!(cluster.claim_carried(JOB, queue_task(8)).is_none(), "claimed once");
    assert!(cluster.report(w, done(8, b"eight")));
    assert_eq!(
        eight.await.outcome,
        AttemptOutcome::Succeeded(Success::Queue(b"eight".to_vec()))
    );

    // Attempt 9 no job wants: cancelled once the grace is over.
    assert_eq!(cluster.expire_carried(), 0, "within the grace");
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(cluster.expire_carried(), 1);
    assert_eq!(cancelled(&mut rx), [9]);
    assert!(cluster.claim_carried(JOB, queue_task(9)).is_none());
}

#[tokio::test]
async fn a_stopping_coordinator_leaves_dropped_attempts_running_on_their_workers() {
    let cluster = cluster();
    let shutdown = tokio_util::sync::CancellationToken::new();
    cluster.stops_with(shutdown.clone());
    let (w, mut rx) = join(&cluster, "w:1", 2);
    cluster.grant_credit(w, 2);
    let first = cluster.dispatch(JOB, queue_task);
    let second = cluster.dispatch(JOB, queue_task);
    assert_eq!(assigned(&mut rx).len(), 2);
    let first_id = first.id();
    drop(first);
    assert_eq!(cancelled(&mut rx), [first_id], "dropped while running: cancelled");
    shutdown.cancel();
    drop(second);
    assert!(cancelled(&mut rx).is_empty(), "left for the worker to carry over");
}
