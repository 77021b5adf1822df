//! A job's spec shown back to its user: as the `weft submit` flags that would submit it
//! again (for `weft status`), and as JSON (the `spec` of `weft status --json` and of the
//! dashboard's `/api/jobs/ID`).

use crate::spec::{JobSpec, Program};

/// The JOB-FLAGS of `spec`, quoted for a POSIX shell. A shipped file shows as `--file NAME`:
/// its bytes are kept with the job, not its source path.
pub fn job_flags(spec: &JobSpec) -> String {
    let mut flags: Vec<String> = vec!["--input".into()];
    flags.extend(spec.inputs.iter().map(|p| quote(&p.to_text())));
    flags.extend(["--output".into(), quote(&spec.output.to_text())]);
    let mut flag = |name: &str, value: &str| {
        flags.push(format!("--{name}"));
        flags.push(quote(value));
    };
    match &spec.program {
        Program::App(app) => {
            flag("app", &app.name);
            for (name, value) in &app.args {
                flag("arg", &format!("{name}={value}"));
            }
        }
        Program::Streaming {
            mapper,
            reducer,
            combiner,
        } => {
            flag("mapper", mapper);
            for (name, command) in [("reducer", reducer), ("combiner", combiner)] {
                if let Some(command) = command {
                    flag(name, command);
                }
            }
        }
    }
    flag("reduce-tasks", &spec.reduce_tasks.to_string());
    flag("split-size", &size(spec.split_size));
    flag("max-attempts", &spec.max_attempts.to_string());
    if let Some(timeout) = spec.task_timeout {
        flag("task-timeout", &timeout.as_secs().to_string());
    }
    if !spec.name.is_empty() {
        flag("name", &spec.name);
    }
    flag("output-mode", &format!("0{:o}", spec.output_mode));
    if let Some(kind) = spec.partitioner {
        flag("partitioner", kind.name());
    }
    if let Some(codec) = spec.output_compression {
        flag("output-compression", codec.name());
    }
    for file in &spec.files {
        flag("file", &file.name);
    }
    for (name, value) in &spec.setup.env {
        flag("env", &format!("{name}={value}"));
    }
    if spec.setup.keys.fields != 1 {
        flag("key-fields", &spec.setup.keys.fields.to_string());
    }
    if let Some(k) = spec.setup.keys.partition_fields {
        flag("partition-fields", &k.to_string());
    }
    if let Some(memory) = spec.setup.task_memory {
        flag("task-memory", &size(memory));
    }
    if let Some(size) = spec.listing.combine_splits {
        flag("combine-splits", &self::size(size));
    }
    if spec.priority != 0 {
        flag("priority", &spec.priority.to_string());
    }
    if !spec.after.is_empty() {
        flag("after", &spec.after.join(","));
    }
    if spec.listing.recursive {
        flags.push("--recursive".into());
    }
    flags.join(" ")
}

/// `text` as one word for a POSIX shell.
pub fn quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./=:,+@%".contains(c));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// The spec as JSON: every field, shipped files by name and size.
pub fn to_json(spec: &JobSpec) -> serde_json::Value {
    let (app, args, mapper, reducer, combiner) = match &spec.program {
        Program::App(app) => (Some(&app.name), Some(&app.args), None, None, None),
        Program::Streaming {
            mapper,
            reducer,
            combiner,
        } => (None, None, Some(mapper), reducer.as_ref(), combiner.as_ref()),
    };
    // grep's pattern keeps the key it had before apps took any arguments.
    let pattern = args.and_then(|args| args.get("pattern"));
    let files: Vec<serde_json::Value> = spec
        .files
        .iter()
        .map(|f| serde_json::json!({"name": f.name, "bytes": f.contents.len(), "executable": f.executable}))
        .collect();
    let env: serde_json::Map<String, serde_json::Value> = spec
        .setup
        .env
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone())))
        .collect();
    serde_json::json!({
        "name": spec.name,
        "inputs": spec.inputs.iter().map(|p| p.to_text()).collect::<Vec<_>>(),
        "output": spec.output.to_text(),
        "reduce_tasks": spec.reduce_tasks,
        "app": app,
        "args": args,
        "pattern": pattern,
        "mapper": mapper,
        "reducer": reducer,
        "combiner": combiner,
        "split_size": spec.split_size,
        "max_attempts": spec.max_attempts,
        "task_timeout_secs": spec.task_timeout.map(|t| t.as_secs()),
        "priority": spec.priority,
        "after": spec.after,
        "output_mode": format!("0{:o}", spec.output_mode),
        "files": files,
        "env": env,
        "key_fields": spec.setup.keys.fields,
        "partition_fields": spec.setup.keys.partition_fields,
        "task_memory": spec.setup.task_memory,
        "recursive": spec.listing.recursive,
        "combine_splits": spec.listing.combine_splits,
        "output_compression": spec.output_compression.map(|c| c.name()),
        "partitioner": spec.partitioner().name(),
        "command": job_flags(spec),
    })
}

/// A size as the flags take it, in the largest unit that says it whole: `64MiB`, `1GiB`,
/// `1500`.
pub fn size(bytes: u64) -> String {
    let units = [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")];
    match units
        .iter()
        .find(|(shift, _)| bytes != 0 && bytes.is_multiple_of(1 << shift))
    {
        Some((shift, unit)) => format!("{}{unit}", bytes >> shift),
        None => bytes.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::location::Location;

    #[test]
    fn sizes_are_said_as_a_user_would_give_them() {
        assert_eq!(size(64 << 20), "64MiB");
        assert_eq!(size(1 << 30), "1GiB");
        assert_eq!(size(3 << 19), "1536KiB");
        assert_eq!(size(1500), "1500");
        assert_eq!(size(0), "0");
    }

    #[test]
    fn flags_quote_what_a_shell_would_split() {
        assert_eq!(quote("/data/in"), "/data/in");
        assert_eq!(quote("python3 ./map.py"), "'python3 ./map.py'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        let mut spec = JobSpec::new(
            vec![Location::local("/in")],
            Location::local("/out dir"),
            Program::Streaming {
                mapper: "cut -f1".into(),
                reducer: Some("uniq -c".into()),
                combiner: None,
            },
        );
        spec.setup.keys.fields = 2;
        let flags = job_flags(&spec);
        assert!(
            flags
                .starts_with("--input /in --output '/out dir' --mapper 'cut -f1' --reducer 'uniq -c' --reduce-tasks 1"),
            "{flags}"
        );
        assert!(flags.contains("--key-fields 2"), "{flags}");
    }
}
