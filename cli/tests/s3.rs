//! Jobs whose data is in an S3-compatible object store (a real one: moto in server mode on a
//! free port): `s3://` inputs read in ranges, parts written as multipart uploads the
//! coordinator completes at job commit, and the same output as the same jobs on local files.

mod common;
mod s3_server;

use std::fs;

use common::*;
use s3_server::*;

type Program = fn(JobFlags) -> JobFlags;

fn job_flags(input: &str, output: &str) -> JobFlags {
    JobFlags::new(input.as_ref(), output.as_ref())
}

#[test]
fn jobs_from_s3_to_s3_match_the_same_jobs_on_local_files() {
    s3();
    let bucket = "exact";
    create_bucket(bucket);
    let cluster = TestCluster::start(2, 2, &[]);
    let local = cluster.path("corpus");
    write_corpus(&local, 3, 3000, 11);
    put_dir(&local, bucket, "in");
    let jobs: [(&str, Program); 3] = [
        ("wordcount", |j| j.app("wordcount").flag("--reduce-tasks", "2")),
        ("sort", |j| j.app("sort").flag("--reduce-tasks", "3")),
        ("streaming", |j| {
            j.streaming(ASCII_WORD_MAPPER, SUM_REDUCER).flag("--reduce-tasks", "2")
        }),
    ];
    for (name, job) in jobs {
        let on_disk = cluster.path(&format!("{name}-local"));
        cluster.submit_wait(&job(JobFlags::new(&local, &on_disk)).flag("--split-size", "20KiB"));
        let output = format!("s3://{bucket}/out/{name}");
        cluster.submit_wait(&job(job_flags(&format!("s3://{bucket}/in"), &output)).flag("--split-size", "20KiB"));
        let downloaded = cluster.path(&format!("{name}-s3"));
        get_dir(bucket, &format!("out/{name}/"), &downloaded);
        let (from_s3, from_disk) = (read_parts(&downloaded), read_parts(&on_disk));
        let same = match name {
            "sort" => from_s3.concat() == from_disk.concat(),
            _ => from_s3 == from_disk,
        };
        assert!(same, "{name}: the output from S3 differs from the local files'");
    }
    assert_eq!(
        open_uploads(bucket),
        Vec::<(String, String)>::new(),
        "no upload left open"
    );
}
