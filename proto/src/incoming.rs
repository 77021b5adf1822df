//! Connections a gRPC server accepts, with Nagle's algorithm off: tonic's own `tcp_nodelay`
//! applies only to listeners it binds itself, and small messages (task results, reports)
//! would otherwise wait for the peer's delayed ACK, some 40 ms each.

use futures::{Stream, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::wrappers::TcpListenerStream;

/// The connections `listener` accepts, each with `TCP_NODELAY` set. A connection that is
/// already gone by then is still handed on (and fails there, alone): an error here would
/// stop the server's accept loop.
pub fn nodelay(listener: TcpListener) -> impl Stream<Item = std::io::Result<TcpStream>> {
    TcpListenerStream::new(listener).map(|accepted| {
        let stream = accepted?;
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on an accepted connection");
        }
        Ok(stream)
    })
}
