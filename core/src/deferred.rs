//! `DeferredList`: a set of futures collected the way Twisted's `DeferredList` collects
//! Deferreds. Results come back in submission order; options fire early on the first
//! success or the first failure, and decide whether failures are consumed or reported.

use std::fmt::Display;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::task::{unconstrained, Unconstrained};

type BoxedResultFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

/// Results a list takes in one poll before it yields to its executor.
const RESULTS_PER_POLL: usize = 1024;

/// How a [`DeferredList`] fired.
#[derive(Debug, PartialEq, Eq)]
pub enum Fired<T, E> {
    /// Every future finished: one result per future, in submission order.
    Completed(Vec<Result<T, E>>),
    /// With [`DeferredList::fire_on_one_callback`]: the first future to succeed.
    FirstSuccess {
        /// Position of that future in submission order.
        index: usize,
        /// Its value.
        value: T,
    },
    /// With [`DeferredList::fire_on_one_errback`]: the first future to fail.
    FirstError {
        /// Position of that future in submission order.
        index: usize,
        /// Its error.
        error: E,
    },
}

impl<T, E> Fired<T, E> {
    /// The ordered results, if every future finished.
    pub fn into_completed(self) -> Option<Vec<Result<T, E>>> {
        match self {
            Fired::Completed(results) => Some(results),
            _ => None,
        }
    }
}

/// A list of futures that fires once, like Twisted's `DeferredList`.
///
/// By default it waits for every future and fires [`Fired::Completed`] with their results
/// in submission order. When it fires early, the futures still pending are dropped, which
/// cancels them.
///
/// Without [`consume_errors`](Self::consume_errors), every failure is also logged as an
/// unhandled error when the list fires, the way Twisted logs a failure left in a Deferred.
///
/// Each poll touches only the futures that woke, so a list of 100,000 costs what its
/// futures cost. They run outside tokio's cooperative budget (see `IndexedFuture`); the
/// list yields to its executor after every 1,024 results instead.
///
/// ```
/// use weft_core::deferred::{DeferredList, Fired};
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// async fn lookup(n: u32) -> Result<u32, String> {
///     if n > 1 { Err(format!("{n} is too big")) } else { Ok(n * 10) }
/// }
/// let list = DeferredList::from_futures([lookup(1), lookup(2)]).consume_errors(true);
/// assert_eq!(list.await, Fired::Completed(vec![Ok(10), Err("2 is too big".into())]));
/// # });
/// ```
pub struct DeferredList<T, E> {
    pending: FuturesUnordered<IndexedFuture<T, E>>,
    results: Vec<Option<Result<T, E>>>,
    fire_on_one_callback: bool,
    fire_on_one_errback: bool,
    consume_errors: bool,
}

impl<T, E> DeferredList<T, E>
where
    T: Send + 'static,
    E: Display + Send + 'static,
{
    /// Collects `futures`; their order is the order of the results.
    pub fn new(futures: Vec<BoxedResultFuture<T, E>>) -> Self {
        let results = futures.iter().map(|_| None).collect();
        let pending = futures
            .into_iter()
            .enumerate()
            .map(|(index, future)| IndexedFuture {
                index,
                future: unconstrained(future),
            })
            .collect();
        Self {
            pending,
            results,
            fire_on_one_callback: false,
            fire_on_one_errback: false,
            consume_errors: false,
        }
    }

    /// Collects any futures (or things that become one, like a client's job handles),
    /// boxing each.
    pub fn from_futures<F>(futures: impl IntoIterator<Item = F>) -> Self
    where
        F: IntoFuture<Output = Result<T, E>>,
        F::IntoFuture: Send + 'static,
    {
        Self::new(futures.into_iter().map(|f| Box::pin(f.into_future()) as _).collect())
    }

    /// Fire with the first success instead of waiting for all.
    pub fn fire_on_one_callback(mut self, on: bool) -> Self {
        self.fire_on_one_callback = on;
        self
    }

    /// Fire with the first failure instead of waiting for all.
    pub fn fire_on_one_errback(mut self, on: bool) -> Self {
        self.fire_on_one_errback = on;
        self
    }

    /// Take failures as results only, without logging them as unhandled.
    pub fn consume_errors(mut self, on: bool) -> Self {
        self.consume_errors = on;
        self
    }

    /// How many futures the list holds.
    pub fn len(&self) -> usize {
        self.results.len()
    }

    /// Whether the list holds no future (it fires at once, with no results).
    pub fn is_empty(&self) -> bool {
        self.results.is_empty()
    }

    fn report_unhandled(&self, index: usize, error: &E) {
        if !self.consume_errors {
            tracing::error!(index, %error, "unhandled error in DeferredList");
        }
    }
}

impl<T, E> Future for DeferredList<T, E>
where
    T: Send + 'static,
    E: Display + Send + 'static,
{
    type Output = Fired<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut taken = 0;
        while let Poll::Ready(Some((index, result))) = this.pending.poll_next_unpin(cx) {
            taken += 1;
            match result {
                Ok(value) if this.fire_on_one_callback => {
                    this.pending.clear();
                    return Poll::Ready(Fired::FirstSuccess { index, value });
                }
                Err(error) if this.fire_on_one_errback => {
                    this.report_unhandled(index, &error);
                    this.pending.clear();
                    return Poll::Ready(Fired::FirstError { index, error });
                }
                result => this.results[index] = Some(result),
            }
            if taken == RESULTS_PER_POLL && !this.pending.is_empty() {
                // Its own budget, in place of the runtime's (see `IndexedFuture`).
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        if !this.pending.is_empty() {
            return Poll::Pending;
        }
        let results: Vec<Result<T, E>> = std::mem::take(&mut this.results)
            .into_iter()
            .map(|r| r.expect("every future has finished"))
            .collect();
        for (index, result) in results.iter().enumerate() {
            if let Err(error) = result {
                this.report_unhandled(index, error);
            }
        }
        Poll::Ready(Fired::Completed(results))
    }
}

// Nothing in the list is pinned structurally: the futures are boxed.
impl<T, E> Unpin for DeferredList<T, E> {}

/// A future of the list, with its position. It runs outside tokio's cooperative budget:
/// once the budget is spent, a future answers Pending with a wake-up deferred until the
/// task yields, which `FuturesUnordered` cannot tell from a real wait; it would then poll
/// every future it holds on every poll, quadratic in the list's length. The list keeps a
/// budget of its own instead ([`RESULTS_PER_POLL`]).
struct IndexedFuture<T, E> {
    index: usize,
    future: Unconstrained<BoxedResultFuture<T, E>>,
}

impl<T, E> Future for IndexedFuture<T, E> {
    type Output = (usize, Result<T, E>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let index = self.index;
        Pin::new(&mut self.future).poll(cx).map(|r| (index, r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tokio::time::sleep;

    fn after(ms: u64, result: Result<u32, String>) -> BoxedResultFuture<u32, String> {
        Box::pin(async move {
            sleep(Duration::from_millis(ms)).await;
            result
        })
    }

    /// A future that counts its polls.
    struct Counted<F>(F, Arc<std::sync::atomic::AtomicUsize>);

    impl<F: Future + Unpin> Future for Counted<F> {
        type Output = F::Output;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            self.1.fetch_add(1, Ordering::Relaxed);
            Pin::new(&mut self.0).poll(cx)
        }
    }

    #[tokio::test]
    async fn a_large_list_polls_each_future_a_bounded_number_of_times() {
        // Tokio's cooperative budget runs out after 128 ready receivers in one poll; the
        // rest then answer Pending with a deferred wake-up, which FuturesUnordered cannot
        // tell from a real wait. Polled that way, every poll touched every future left
        // (quadratic: a 100,000-task batch spent seconds here).
        const N: usize = 20_000;
        let polls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..N).map(|_| tokio::sync::oneshot::channel::<u32>()).unzip();
        let list = DeferredList::from_futures(receivers.into_iter().map(|r| {
            Counted(
                Box::pin(async move { r.await.map_err(|e| e.to_string()) }),
                polls.clone(),
            )
        }));
        let mut list = std::pin::pin!(list);
        assert!(futures::poll!(list.as_mut()).is_pending());
        for (i, sender) in senders.into_iter().enumerate() {
            sender.send(i as u32).unwrap();
        }
        let fired = list.await.into_completed().unwrap();
        assert_eq!(fired.len(), N);
        assert!(fired.iter().enumerate().all(|(i, r)| r == &Ok(i as u32)));
        let polls = polls.load(Ordering::Relaxed);
        assert!(polls <= 3 * N, "{polls} polls of {N} futures");
    }

    #[tokio::test]
    async fn results_come_in_submission_order_not_completion_order() {
        let list = DeferredList::new(vec![after(30, Ok(1)), after(10, Err("two".into())), after(0, Ok(3))])
            .consume_errors(true);
        assert_eq!(list.await, Fired::Completed(vec![Ok(1), Err("two".into()), Ok(3)]));
    }

    #[tokio::test]
    async fn empty_list_fires_at_once() {
        let list: DeferredList<u32, String> = DeferredList::new(vec![]);
        assert!(list.is_empty());
        assert_eq!(list.await, Fired::Completed(vec![]));
    }

    #[tokio::test]
    async fn fire_on_one_callback_fires_with_first_success_and_cancels_the_rest() {
        let slow_finished = Arc::new(AtomicBool::new(false));
        let flag = slow_finished.clone();
        let slow: BoxedResultFuture<u32, String> = Box::pin(async move {
            sleep(Duration::from_millis(200)).await;
            flag.store(true, Ordering::SeqCst);
            Ok(9)
        });
        let list = DeferredList::new(vec![after(0, Err("x".into())), slow, after(20, Ok(7))])
            .fire_on_one_callback(true)
            .consume_errors(true);
        assert_eq!(list.await, Fired::FirstSuccess { index: 2, value: 7 });
        sleep(Duration::from_millis(250)).await;
        assert!(!slow_finished.load(Ordering::SeqCst), "pending futures are dropped");
    }

    #[tokio::test]
    async fn fire_on_one_callback_without_success_fires_completed() {
        let list = DeferredList::new(vec![after(5, Err("a".into())), after(0, Err("b".into()))])
            .fire_on_one_callback(true)
            .consume_errors(true);
        assert_eq!(list.await, Fired::Completed(vec![Err("a".into()), Err("b".into())]));
    }

    #[tokio::test]
    async fn fire_on_one_errback_fires_with_first_failure() {
        let list = DeferredList::new(vec![
            after(0, Ok(1)),
            after(30, Err("late".into())),
            after(10, Err("early".into())),
        ])
        .fire_on_one_errback(true)
        .consume_errors(true);
        assert_eq!(
            list.await,
            Fired::FirstError {
                index: 2,
                error: "early".into()
            }
        );
    }

    #[tokio::test]
    async fn fire_on_one_errback_without_failure_fires_completed() {
        let list = DeferredList::new(vec![after(5, Ok(1)), after(0, Ok(2))]).fire_on_one_errback(true);
        assert_eq!(list.await, Fired::Completed(vec![Ok(1), Ok(2)]));
    }

    /// Captures what the list logs, to tell consumed errors from unhandled ones.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged_while(consume: bool) -> String {
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap();
            let list =
                DeferredList::new(vec![after(0, Ok(1)), after(0, Err("lost disk".into()))]).consume_errors(consume);
            let fired = runtime.block_on(list);
            assert_eq!(fired, Fired::Completed(vec![Ok(1), Err("lost disk".into())]));
        });
        let bytes = captured.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn errors_not_consumed_are_reported_as_unhandled() {
        let log = logged_while(false);
        assert!(log.contains("unhandled error in DeferredList"), "{log}");
        assert!(log.contains("lost disk"), "{log}");
    }

    #[test]
    fn consumed_errors_are_not_reported() {
        let log = logged_while(true);
        assert!(!log.contains("unhandled"), "{log}");
    }
}
