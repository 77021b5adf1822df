//! Futures run as a stream yields them, as many at a time as a limit that may change
//! allows: `buffer_unordered` whose limit follows the cluster. A task batch keeps a few
//! attempts waiting per slot the workers offer, not a fixed number of task futures: on a
//! small cluster, 65,536 futures and their attempts only crowd the caches.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::{FusedStream, FuturesUnordered, Stream, StreamExt};

/// The stream of the outputs of `source`'s futures, in the order they finish; at most
/// `limit()` of them run at once (asked at each poll).
pub struct InFlight<S: Stream, L> {
    source: futures::stream::Fuse<S>,
    running: FuturesUnordered<S::Item>,
    limit: L,
}

impl<S, L> InFlight<S, L>
where
    S: Stream + Unpin,
    S::Item: Future,
    L: FnMut() -> usize + Unpin,
{
    /// Runs `source`'s futures, at most `limit()` at a time.
    pub fn new(source: S, limit: L) -> Self {
        Self {
            source: source.fuse(),
            running: FuturesUnordered::new(),
            limit,
        }
    }

    /// How many run now.
    pub fn running(&self) -> usize {
        self.running.len()
    }
}

impl<S, L> Stream for InFlight<S, L>
where
    S: Stream + Unpin,
    S::Item: Future,
    L: FnMut() -> usize + Unpin,
{
    type Item = <S::Item as Future>::Output;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let limit = (this.limit)().max(1);
        while this.running.len() < limit {
            match this.source.poll_next_unpin(cx) {
                Poll::Ready(Some(future)) => this.running.push(future),
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
        match this.running.poll_next_unpin(cx) {
            Poll::Ready(Some(output)) => Poll::Ready(Some(output)),
            Poll::Ready(None) if this.source.is_terminated() => Poll::Ready(None),
            // Nothing runs and the source has nothing yet: it will wake us.
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use futures::channel::oneshot;
    use futures::FutureExt;

    use super::*;

    #[tokio::test]
    async fn no_more_than_the_limit_run_and_a_raised_limit_starts_more() {
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..10).map(|_| oneshot::channel::<usize>()).unzip();
        let limit = Rc::new(Cell::new(3));
        let started = Rc::new(Cell::new(0));
        let source = futures::stream::iter(receivers).map({
            let started = started.clone();
            move |r| {
                started.set(started.get() + 1);
                r.map(Result::unwrap)
            }
        });
        let mut in_flight = InFlight::new(source, {
            let limit = limit.clone();
            move || limit.get()
        });
        assert!(in_flight.next().now_or_never().is_none());
        assert_eq!((in_flight.running(), started.get()), (3, 3));

        let mut senders = senders.into_iter();
        senders.next().unwrap().send(0).unwrap();
        assert_eq!(in_flight.next().await, Some(0));
        assert!(in_flight.next().now_or_never().is_none());
        assert_eq!(started.get(), 4, "one ended, one more started");

        limit.set(6);
        assert!(in_flight.next().now_or_never().is_none());
        assert_eq!((in_flight.running(), started.get()), (6, 7));

        for (i, sender) in senders.enumerate() {
            sender.send(i + 1).unwrap();
        }
        let mut rest: Vec<usize> = in_flight.collect().await;
        rest.sort();
        assert_eq!(rest, (1..10).collect::<Vec<_>>(), "every output, and then the end");
    }
}
