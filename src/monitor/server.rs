//! HTTP/1.1 serving of the monitor's router: the accept loop, read and write timeouts on every
//! connection (the write timeout and JSON answers to unparseable requests in
//! [`super::conn_io`]), and a graceful shutdown with a deadline.
//!
//! `axum::serve` set no timer, so hyper's header read timeout never fired: a client that sent
//! half a request head, or nothing, held its connection for ever, and its graceful shutdown
//! waited for such connections without end (SIGTERM with one half-sent request open left the
//! process running).

use super::conn_io::ConnIo;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long clients and in-flight requests may take.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Longest a connection may take to deliver a request head, counted from when the server
    /// is ready for one: a new connection, or a kept-alive one after its last answer (so it is
    /// also how long a connection may sit idle). The request body has as long again, in the
    /// handler that reads it.
    pub read: Duration,
    /// Longest a write to a connection may wait for the client to take bytes (a client that
    /// stops reading its answers); then the connection is closed.
    pub write: Duration,
    /// After the shutdown signal, how long in-flight requests may take to be answered; then
    /// every connection still open is closed.
    pub shutdown: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            read: Duration::from_secs(30),
            write: Duration::from_secs(30),
            shutdown: Duration::from_secs(5),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting, lets every
/// connection finish the request it is in, and after `timeouts.shutdown` closes whatever is
/// still open. Returns once every connection task has ended.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()>,
    timeouts: Timeouts,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.read);
    let app = app.layer(axum::middleware::from_fn(super::api::require_host));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            // Finished connections are reaped as they end, so the set holds only live ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let conn = builder
                        .serve_connection(
                            TokioIo::new(ConnIo::new(stream, timeouts.write)),
                            TowerToHyperService::new(app.clone()),
                        )
                        .with_upgrades();
                    connections.spawn(serve_connection(conn, stop_rx.clone()));
                }
                Err(e) => accept_failed(e).await,
            },
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(timeouts.shutdown, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        eprintln!(
            "stepflow-monitor: {} connection(s) still open {:?} after the shutdown signal; \
             closing them",
            connections.len(),
            timeouts.shutdown
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
}

/// One accepted connection, served by the router.
/// (`with_upgrades`: `GET /api/ws` hands the connection over to a WebSocket task.)
type Connection =
    http1::UpgradeableConnection<TokioIo<ConnIo<TcpStream>>, TowerToHyperService<Router>>;

/// One connection until it ends; on the stop signal it finishes the request in progress (a
/// kept-alive connection waiting for its next request closes at once).
async fn serve_connection(conn: Connection, mut stop: watch::Receiver<bool>) {
    tokio::pin!(conn);
    tokio::select! {
        // A client that went away or timed out is not worth a line on stderr.
        _ = conn.as_mut() => return,
        _ = stop.wait_for(|stop| *stop) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// Errors that belong to one connection (it was reset before it was accepted) are skipped;
/// others, such as running out of file descriptors, are reported and waited out briefly
/// instead of spinning on them.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    eprintln!("stepflow-monitor: accept failed: {e}; retrying in 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
