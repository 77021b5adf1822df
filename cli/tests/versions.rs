//! The version-skew policy where workers register: a real coordinator refuses, with
//! FAILED_PRECONDITION and what to upgrade, a worker newer than itself, and takes one from
//! before the version field (as an older build sends it) and one of its own version.

mod common;

use common::*;
use tonic::Code;
use weft_proto::v1;

/// Opens a worker session announcing `version`; the coordinator's answer.
async fn register(cluster: &TestCluster, version: &str) -> Result<v1::CoordinatorMessage, tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(cluster.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let (out, outbound) = tokio::sync::mpsc::channel(4);
    let register = v1::worker_message::Kind::Register(v1::Register {
        shuffle_address: format!("127.0.0.1:{}", free_port()),
        slots: 1,
        hostname: "skewed".into(),
        version: version.into(),
        ..Default::default()
    });
    out.send(v1::WorkerMessage { kind: Some(register) }).await.unwrap();
    let mut client = v1::worker_service_client::WorkerServiceClient::new(channel);
    let mut inbound = client
        .session(tokio_stream::wrappers::ReceiverStream::new(outbound))
        .await?
        .into_inner();
    let first = inbound.message().await?.expect("a welcome");
    drop(out);
    Ok(first)
}

#[tokio::test]
async fn a_worker_newer_than_its_coordinator_is_refused_saying_what_to_upgrade() {
    let cluster = TestCluster::start(1, 1, &[]);
    let own = env!("CARGO_PKG_VERSION");
    let (major, _) = own.split_once('.').unwrap();
    let newer = format!("{}.0.0", major.parse::<u64>().unwrap() + 1);

    let refused = register(&cluster, &newer).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused
            .message()
            .contains(&format!("a weft {newer} worker cannot join a weft {own} coordinator"))
            && refused
                .message()
                .contains("upgrade every coordinator before the workers"),
        "{}",
        refused.message()
    );
    let unreadable = register(&cluster, "latest").await.unwrap_err();
    assert_eq!(unreadable.code(), Code::FailedPrecondition);

    for taken in [own, ""] {
        let welcome = register(&cluster, taken)
            .await
            .unwrap_or_else(|e| panic!("{taken:?}: {e:?}"));
        assert!(
            matches!(welcome.kind, Some(v1::coordinator_message::Kind::Welcome(_))),
            "{taken:?}: {welcome:?}"
        );
    }
    let log = cluster.coordinator_log();
    assert!(log.contains("worker refused"), "{log}");
    assert!(
        log.contains(&format!("version={own}")),
        "a worker's version is logged as it joins:\n{log}"
    );
}
