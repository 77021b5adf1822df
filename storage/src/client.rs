//! The stores (one client per bucket, made from the environment once) and the small runtime
//! their requests run on, so that blocking code anywhere (planning at submit, a map task)
//! can wait for them.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, RetryConfig};
use weft_core::location::ObjectUrl;

use crate::StorageError;

/// The runtime object store requests run on: two threads, made on first use.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("weft-objects")
            .enable_all()
            .build()
            .expect("the object store runtime starts")
    })
}

/// Runs `future` on the store's runtime and waits for it: callable from blocking code and
/// from within another runtime alike (it blocks the calling thread).
pub(crate) fn wait<T: Send + 'static>(future: impl Future<Output = T> + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime().spawn(async move {
        let _ = tx.send(future.await);
    });
    rx.recv().expect("an object store request runs to its end")
}

/// Starts `future` on the store's runtime without waiting for it.
pub(crate) fn spawn(future: impl Future<Output = ()> + Send + 'static) {
    runtime().spawn(future);
}

/// The client for `bucket`, configured from the `AWS_*` environment variables.
pub(crate) fn store(bucket: &str) -> Result<Arc<AmazonS3>, StorageError> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<AmazonS3>>>> = OnceLock::new();
    let mut stores = STORES.get_or_init(Default::default).lock().expect("stores lock");
    if let Some(store) = stores.get(bucket) {
        return Ok(store.clone());
    }
    // ring, as everywhere in weft; a process that installed it already keeps its choice.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let retry = RetryConfig {
        max_retries: 4,
        retry_timeout: Duration::from_secs(60),
        ..RetryConfig::default()
    };
    let store = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_retry(retry)
        .build()
        .map_err(|e| StorageError::Other {
            url: format!("s3://{bucket}"),
            detail: e.to_string(),
        })?;
    let store = Arc::new(store);
    stores.insert(bucket.to_string(), store.clone());
    Ok(store)
}

/// The object path of `url`'s key.
pub(crate) fn path(url: &ObjectUrl) -> ObjectPath {
    ObjectPath::from(url.key.as_str())
}

/// Checks that `output` can take a job's parts: its bucket exists, the credentials are
/// accepted, and nothing is beneath the prefix yet.
pub fn check_output(output: &ObjectUrl) -> Result<(), StorageError> {
    let store = store(&output.bucket)?;
    let url = output.clone();
    wait(async move {
        let prefix = path(&url);
        let listed = store
            .list_with_delimiter(Some(&prefix))
            .await
            .map_err(|e| StorageError::of(e, &url.to_string(), &url.bucket))?;
        if listed.objects.is_empty() && listed.common_prefixes.is_empty() {
            Ok(())
        } else {
            Err(StorageError::NotEmpty(url.to_string()))
        }
    })
}
