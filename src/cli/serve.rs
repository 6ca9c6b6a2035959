//! `serve` (and the `stepflow-monitor` binary): the bundled monitor until SIGINT or SIGTERM.

use super::args::ServeArgs;
use crate::exit;
use crate::monitor::{self, ServeError};
use std::process::ExitCode;

pub fn serve(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    if args.null {
        return serve_null(&args.addr);
    }
    match monitor::serve_cli(args.config()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e @ (ServeError::DataDir { .. } | ServeError::Bind { .. })) => Err(exit::usage(e)),
        Err(e) => Err(exit::aborted(e)),
    }
}

/// `serve --null`: `200 {}` for every request, until SIGINT or SIGTERM. Nothing is stored;
/// what a generator reaches against it is the generator's (and the loopback's) ceiling.
fn serve_null(addr: &str) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| exit::usage(anyhow::anyhow!("cannot bind {addr}: {e}")))?;
        let local = listener.local_addr().context("no local address")?;
        println!("listening on http://{local}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let app = axum::Router::new().fallback(|| async {
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                "{}",
            )
        });
        let stop = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
            .context("null server failed")?;
        Ok(ExitCode::SUCCESS)
    })
}
