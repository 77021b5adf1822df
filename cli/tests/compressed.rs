//! Compressed files on a cluster of separate processes: `.gz` (several members) and `.zst`
//! inputs, alone and mixed with plain ones, give the same output as the plain files, for the
//! built-in apps (the sort app's sample included) and for streaming commands; parts written
//! compressed (`--output-compression`) hold what the plain parts hold.

mod common;

use std::fs;
use std::io::Write;
use std::path::Path;

use common::*;

/// Writes `text` gzipped as two members, the way `cat a.gz b.gz` makes one file.
fn write_gzip_members(path: &Path, text: &str) {
    let middle = text[..text.len() / 2].rfind('\n').map_or(0, |i| i + 1);
    let mut bytes = Vec::new();
    for part in [&text[..middle], &text[middle..]] {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(part.as_bytes()).unwrap();
        bytes.extend(encoder.finish().unwrap());
    }
    fs::write(path, bytes).unwrap();
}

#[test]
fn compressed_and_mixed_inputs_give_the_plain_files_output() {
    let cluster = TestCluster::start(2, 2, &[]);
    let plain = cluster.path("plain");
    let files = write_corpus(&plain, 4, 2000, 17);
    let mixed = cluster.path("mixed");
    fs::create_dir_all(&mixed).unwrap();
    for (i, file) in files.iter().enumerate() {
        let text = fs::read_to_string(file).unwrap();
        let name = file.file_name().unwrap().to_str().unwrap();
        match i % 3 {
            0 => write_gzip_members(&mixed.join(format!("{name}.gz")), &text),
            1 => fs::write(
                mixed.join(format!("{name}.zst")),
                zstd::encode_all(text.as_bytes(), 3).unwrap(),
            )
            .unwrap(),
            _ => fs::write(mixed.join(name), &text).unwrap(),
        }
    }
    for (name, job) in three_jobs() {
        let from_plain = cluster.path(&format!("{name}-plain"));
        let from_mixed = cluster.path(&format!("{name}-mixed"));
        // Small splits: the plain files are cut, the compressed ones read whole.
        cluster.submit_wait(&job(JobFlags::new(&plain, &from_plain)).flag("--split-size", "16KiB"));
        let id = cluster.submit_wait(&job(JobFlags::new(&mixed, &from_mixed)).flag("--split-size", "16KiB"));
        let same = same_parts(name, &read_parts(&from_mixed), &read_parts(&from_plain));
        assert!(
            same,
            "{name}: the output of the compressed inputs differs from the plain files'"
        );
        let status = cluster.status_json(&id);
        assert_eq!(status["whole_files"], 3, "{name}");
        let report = String::from_utf8_lossy(&cluster.weft(&["status", &id]).stdout).into_owned();
        assert!(report.contains("3 compressed files"), "{report}");
        let maps = status["maps"]["total"].as_u64().unwrap();
        // Files 0, 1 and 3 are compressed: a map task each; file 2 is plain and cut.
        let plain_maps = fs::metadata(&files[2]).unwrap().len().div_ceil(16 << 10);
        assert!(
            (4..=3 + plain_maps).contains(&maps),
            "{name}: each compressed file is one map task, got {maps}"
        );
    }
}

#[test]
fn compressed_parts_hold_the_plain_parts_lines() {
    let cluster = TestCluster::start(2, 2, &[]);
    let input = cluster.path("in");
    write_corpus(&input, 3, 1500, 5);
    let jobs: [(&str, JobShape); 4] = [
        ("wordcount", |j| j.app("wordcount").flag("--reduce-tasks", "2")),
        ("streaming", |j| {
            j.streaming(ASCII_WORD_MAPPER, SUM_REDUCER).flag("--reduce-tasks", "2")
        }),
        // A mapper's output straight to the parts, through weft's compressor.
        ("map-only", |j| {
            j.flag("--mapper", ASCII_WORD_MAPPER).flag("--reduce-tasks", "0")
        }),
        ("grep-map-only", |j| {
            j.app("grep").flag("--pattern", "a").flag("--reduce-tasks", "0")
        }),
    ];
    for (name, job) in jobs {
        let plain = cluster.path(&format!("{name}-plain"));
        cluster.submit_wait(&job(JobFlags::new(&input, &plain)).flag("--split-size", "32KiB"));
        for (codec, extension) in [("gzip", "gz"), ("zstd", "zst")] {
            let compressed = cluster.path(&format!("{name}-{codec}"));
            let flags = job(JobFlags::new(&input, &compressed))
                .flag("--split-size", "32KiB")
                .flag("--output-compression", codec);
            cluster.submit_wait(&flags);
            let mut names: Vec<String> = fs::read_dir(&compressed)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.starts_with("part-"))
                .collect();
            names.sort();
            assert!(
                names.iter().all(|n| n.ends_with(&format!(".{extension}"))),
                "{name}: {names:?}"
            );
            assert_eq!(read_parts(&compressed), read_parts(&plain), "{name} {codec}");
        }
    }
}

#[test]
fn an_unknown_output_compression_is_refused_before_anything_runs() {
    let cluster = TestCluster::start(1, 1, &[]);
    let input = cluster.path("in");
    write_corpus(&input, 1, 10, 1);
    let output = cluster.path("out");
    let flags = JobFlags::new(&input, &output)
        .app("wordcount")
        .flag("--output-compression", "lzo");
    let refused = cluster.weft(&flags.after(&["submit"]));
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("gzip or zstd"), "{stderr}");
    assert!(!output.exists());
}
