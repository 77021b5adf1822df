//! `weft admin backup` and `weft admin restore`: a backup of the SQLite state taken while a
//! job runs, restored (after the coordinator was killed) into the state directory a new
//! coordinator starts on, which finishes the job exact and knows nothing of a job
//! submitted after the backup; a restore refuses to replace a database unasked, and a
//! backup refuses a file that exists.

mod common;

use std::fs;
use std::time::Duration;

use common::*;

#[test]
fn a_backup_taken_mid_run_restored_under_a_new_coordinator_finishes_its_jobs() {
    let mut cluster = TestCluster::start(1, 2, &["--recovery-grace", "1"]);
    let input = cluster.path("in");
    write_corpus(&input, 4, 80, 3);
    let done = cluster.submit_wait(&JobFlags::new(&input, &cluster.path("out-done")).app("wordcount"));
    // One map, on one of the worker's two slots: the other is free for the job after the
    // backup.
    let gated_input = cluster.path("in-gated");
    let gated_files = write_corpus(&gated_input, 1, 80, 4);
    let gate = cluster.path("gate");
    let mapper = format!("while [ ! -e {} ]; do sleep 0.05; done; {ASCII_WORD_MAPPER}", s(&gate));
    let flags = JobFlags::new(&gated_input, &cluster.path("out")).streaming(&mapper, SUM_REDUCER);
    let running = cluster.submit(&flags, &[]);
    cluster.wait_status(&running, Duration::from_secs(60), "its maps to run", |s| {
        s["running_attempts"].as_u64() > Some(0)
    });

    let backup = cluster.path("backup.db");
    let state = cluster.state_dir();
    let taken = cluster.weft(&["admin", "backup", "--state-dir", s(&state), "--to", s(&backup)]);
    assert_ok(&taken, &cluster);
    let said = String::from_utf8_lossy(&taken.stdout);
    assert!(said.contains("2 jobs (1 not ended)"), "{said}");
    let again = cluster.weft(&["admin", "backup", "--state-dir", s(&state), "--to", s(&backup)]);
    let why = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success() && why.contains("already exists"), "{why}");

    // A job after the backup: not in it.
    let late = cluster.submit_wait(&JobFlags::new(&input, &cluster.path("out-late")).app("wordcount"));

    // The coordinator's machine is lost; its state comes back from the backup.
    cluster.kill_coordinator();
    let refused = cluster.weft(&["admin", "restore", "--from", s(&backup), "--state-dir", s(&state)]);
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && why.contains("--replace"), "{why}");
    let restored = cluster.weft(&[
        "admin",
        "restore",
        "--from",
        s(&backup),
        "--state-dir",
        s(&state),
        "--replace",
    ]);
    assert_ok(&restored, &cluster);
    cluster.restart_coordinator(1);
    fs::write(&gate, "").unwrap();
    let waited = cluster.weft(&["wait", &running]);
    assert_ok(&waited, &cluster);
    assert_eq!(
        read_counts(&cluster.path("out")),
        expected_ascii_wordcount(&gated_files)
    );
    assert_eq!(cluster.status_json(&done)["state"], "succeeded");
    let jobs = cluster.weft(&["jobs", "--json"]);
    assert_ok(&jobs, &cluster);
    let listed: serde_json::Value = serde_json::from_slice(&jobs.stdout).unwrap();
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(2),
        "the state as backed up: {listed}"
    );
    let gone = cluster.weft(&["status", &late]);
    assert!(
        !gone.status.success(),
        "{late}, submitted after the backup, is not in it"
    );
}

#[test]
fn a_file_that_is_not_a_weft_state_database_is_not_restored() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.db");
    fs::write(&bogus, "not a database at all, but long enough to look like a file").unwrap();
    let state = dir.path().join("state");
    let output = std::process::Command::new(weft_bin())
        .args(["admin", "restore", "--from", s(&bogus), "--state-dir", s(&state)])
        .output()
        .unwrap();
    let why = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && why.contains("corrupt"), "{why}");
    assert!(!state.join("weft.db").exists(), "nothing was put in place");
}
