//! The bundled StepFlow monitor: the system under test, a REST service on SQLite.
//! It depends on nothing else in the crate.

pub mod api;
pub mod conn_io;
pub mod error;
pub mod events;
pub mod model;
pub mod openapi;
pub mod perf;
pub mod process;
pub mod server;
pub mod storage;
pub mod ws;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use storage::{Profile, Storage, StorageConfig, StorageError};
use tokio::net::TcpListener;

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub addr: String,
    pub data_dir: PathBuf,
    pub profile: Profile,
    /// Tokio worker threads; defaults to the number of cores.
    pub workers: Option<usize>,
    /// Read timeout of every connection and the shutdown deadline.
    pub timeouts: server::Timeouts,
    /// WebSocket event fan-out: buffer and ping interval.
    pub events: events::EventsConfig,
    /// Instrumentation, alert thresholds, slow-query log.
    pub perf: perf::PerfConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The data dir or database cannot be used; nothing was bound.
    #[error("data dir {path}: {reason}")]
    DataDir { path: PathBuf, reason: StorageError },
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        addr: String,
        reason: std::io::Error,
    },
    #[error("{0}")]
    Runtime(std::io::Error),
}

/// Runs the monitor until SIGINT or SIGTERM, then shuts down gracefully: stop accepting,
/// finish in-flight requests (closing, after `timeouts.shutdown`, connections still open),
/// commit every queued write, checkpoint the WAL.
/// `on_listening` is called once with the bound address, when connections are accepted.
pub fn serve(config: ServeConfig, on_listening: impl FnOnce(SocketAddr)) -> Result<(), ServeError> {
    let perf = std::sync::Arc::new(perf::Perf::new(config.perf.clone()));
    let mut storage_config = StorageConfig {
        events: config.events,
        ..StorageConfig::new(&config.data_dir, config.profile)
    };
    storage_config.on_connect = perf.connection_hook();
    let storage = Storage::open(&storage_config).map_err(|reason| ServeError::DataDir {
        path: config.data_dir.clone(),
        reason,
    })?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    // Blocking work (log appends; every legacy DB operation) runs on this pool. Legacy
    // writers serialise on SQLite's file lock anyway, so more threads than this only add
    // memory (each had its own allocator heap: 64 of them took the RSS past 80 MB).
    builder.max_blocking_threads(BLOCKING_THREADS);
    if let Some(n) = config.workers {
        builder.worker_threads(n.max(1));
    }
    let runtime = builder.enable_all().build().map_err(ServeError::Runtime)?;
    let result = runtime.block_on(async {
        let shutdown = shutdown_signal().map_err(ServeError::Runtime)?;
        let listener = bind(&config.addr)
            .await
            .map_err(|reason| ServeError::Bind {
                addr: config.addr.clone(),
                reason,
            })?;
        let local = listener.local_addr().map_err(ServeError::Runtime)?;
        on_listening(local);
        perf.start_sampler(storage.clone());
        let state = api::AppState::with_perf(storage.clone(), config.timeouts.read, perf);
        // WebSocket connections left hyper when they were upgraded: they are told to close
        // (1001) as soon as the signal comes, and waited for beside the HTTP connections.
        let hub = storage.events().clone();
        let ws_hub = hub.clone();
        let shutdown = async move {
            shutdown.await;
            ws_hub.shut_down(std::time::Duration::ZERO).await;
        };
        server::serve(listener, api::app(state), shutdown, config.timeouts).await;
        let open = hub.shut_down(config.timeouts.shutdown).await;
        if open > 0 {
            eprintln!("stepflow-monitor: {open} WebSocket connection(s) did not close in time");
        }
        Ok(())
    });
    // Every connection task has ended (answered, or closed at the shutdown deadline), so
    // nothing new reaches the writer; commit what is queued.
    storage.close();
    drop(runtime);
    result
}

/// `serve` for the command line: prints the one `listening on` line on stdout.
pub fn serve_cli(config: ServeConfig) -> Result<(), ServeError> {
    serve(config, |addr| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on http://{addr}");
        let _ = out.flush();
    })
}

/// Threads for blocking work.
const BLOCKING_THREADS: usize = 16;

/// Pending connections the kernel may queue before `accept`; the kernel caps it at
/// net.core.somaxconn. tokio's default (1024) overflowed when 10,000 clients connected at
/// once, and connections dropped from a full queue were never answered.
const LISTEN_BACKLOG: u32 = 16_384;

async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let addr = tokio::net::lookup_host(addr).await?.next().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "address resolves to nothing",
        )
    })?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Installs the SIGTERM and SIGINT handlers at once (a lazy future would install them only
/// when first polled, after `listening on`, and a signal in between would kill the process);
/// the returned future resolves on the first of them.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
