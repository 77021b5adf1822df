//! The command line as a newcomer meets it: help that shows defaults in the units a flag
//! takes and keeps the flags every command shares under a heading of their own, and the
//! names other systems give the number of reducers.

mod common;

use std::process::Command;

use common::*;

fn help(command: &str) -> String {
    let output = Command::new(weft_bin()).args([command, "--help"]).output().unwrap();
    assert!(output.status.success(), "weft {command} --help");
    String::from_utf8(output.stdout).unwrap()
}

/// The help line of `flag`, and the lines that follow it up to the next flag.
fn entry<'a>(help: &'a str, flag: &str) -> &'a str {
    let start = help
        .find(&format!("  {flag} "))
        .or_else(|| help.find(&format!("  {flag}\n")))
        .or_else(|| help.find(&format!(", {flag} ")))
        .unwrap_or_else(|| panic!("{flag} not in:\n{help}"));
    let rest = &help[start..];
    // Long help (`--help`) parts flags with an empty line.
    &rest[..rest.find("\n\n").unwrap_or(rest.len())]
}

#[test]
fn help_shows_sizes_with_their_units() {
    for (command, flag, default) in [
        ("submit", "--split-size", "[default: 64MiB]"),
        ("run", "--split-size", "[default: 64MiB]"),
        ("coordinator", "--max-message", "[default: 16MiB]"),
        ("worker", "--sort-buffer", "[default: 64MiB]"),
        ("worker", "--merge-buffer", "[default: 128MiB]"),
    ] {
        let text = help(command);
        let entry = entry(&text, flag);
        assert!(entry.contains(default), "weft {command} --help, {flag}: {entry}");
    }
    let all: String = ["submit", "run", "coordinator", "worker"].map(help).concat();
    for raw in ["67108864", "[default: 16]", "[default: 64]", "[default: 128]"] {
        assert!(!all.contains(raw), "a raw default {raw} in the help");
    }
}

#[test]
fn the_flags_every_command_takes_come_last_under_their_own_heading() {
    for command in ["submit", "worker", "top", "tasks"] {
        let text = help(command);
        let heading = text
            .find("Global options:")
            .unwrap_or_else(|| panic!("weft {command} --help has no Global options heading:\n{text}"));
        for global in ["--log-format", "--otlp-endpoint", "--io-threads"] {
            let at = text.find(&format!("  {global}")).unwrap();
            assert!(
                at > heading,
                "weft {command} --help: {global} is not under Global options"
            );
        }
        let own = text.find("  --coordinator").unwrap_or(0);
        assert!(own < heading, "weft {command} --help: its own flags come first");
    }
}

#[test]
fn the_number_of_reducers_goes_by_the_names_other_systems_give_it() {
    let text = help("submit");
    assert!(
        entry(&text, "--reduce-tasks").contains("num-reducers"),
        "the alias is shown: {}",
        entry(&text, "--reduce-tasks")
    );
    let cluster = TestCluster::start(1, 2, &[]);
    let input = cluster.path("input");
    write_corpus(&input, 2, 50, 3);
    for (n, alias) in ["--reducers", "--num-reducers"].into_iter().enumerate() {
        let out = cluster.path(&format!("out-{n}"));
        let job = cluster.submit_wait(&JobFlags::new(&input, &out).app("wordcount").flag(alias, "3"));
        assert_eq!(cluster.status_json(&job)["reduces"]["total"], 3, "{alias} 3");
    }
    // A reducer's command given to the count names the flag it was meant for.
    let out = cluster.path("out-mistaken");
    let mistaken = cluster.weft(
        &JobFlags::new(&input, &out)
            .flag("--mapper", "cat")
            .flag("--reducers", "uniq -c")
            .after(&["submit"]),
    );
    let stderr = String::from_utf8_lossy(&mistaken.stderr);
    assert!(!mistaken.status.success(), "{stderr}");
    assert!(stderr.contains("--reducer"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `weft jobs` with `args` (and no TLS or token from the environment): its stderr.
fn refused(args: &[&str]) -> String {
    let output = Command::new(weft_bin())
        .arg("jobs")
        .args(args)
        .env_remove("WEFT_COORDINATOR")
        .env_remove("WEFT_TLS_DIR")
        .env_remove("WEFT_TOKEN")
        .env_remove("WEFT_TOKEN_FILE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "weft jobs {args:?} should fail");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn a_client_that_reaches_a_coordinator_the_wrong_way_is_told_what_to_change() {
    let secured = TestCluster::start_secure(0, 1, &[]);
    let plain = TestCluster::start(0, 1, &[]);
    let https = secured.url();
    let http = https.replace("https://", "http://");
    let ca_dir = secured.secrets().to_str().unwrap().to_string();
    let token = secured.secrets().join("admin.token");
    let other = secured.path("other-secrets");
    let made = Command::new(weft_bin())
        .args(["certs", "--dir", other.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(made.status.success());
    let plain_as_https = plain.url().replace("http://", "https://");
    let nobody = format!("http://127.0.0.1:{}", free_port());

    let cases: [(Vec<&str>, &str); 6] = [
        (vec!["--coordinator", &http], "use https:// with the cluster's CA"),
        (vec!["--coordinator", &https], "give the cluster's CA"),
        (vec!["--coordinator", &https, "--tls-dir", &ca_dir], "no token"),
        (
            vec![
                "--coordinator",
                &https,
                "--tls-dir",
                other.to_str().unwrap(),
                "--token-file",
                token.to_str().unwrap(),
            ],
            "not one the CA given vouches for",
        ),
        (
            vec!["--coordinator", &plain_as_https, "--tls-dir", &ca_dir],
            "does not speak TLS: use http://",
        ),
        (vec!["--coordinator", &nobody], "nothing listens there"),
    ];
    for (args, hint) in cases {
        let stderr = refused(&args);
        assert!(
            stderr.contains(hint),
            "weft jobs {args:?}: expected {hint:?} in {stderr}"
        );
    }
    let fine = Command::new(weft_bin())
        .args([
            "jobs",
            "--coordinator",
            &https,
            "--tls-dir",
            &ca_dir,
            "--token-file",
            token.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(fine.status.success(), "{}", String::from_utf8_lossy(&fine.stderr));
}
