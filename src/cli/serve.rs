//! `serve` (and the `stepflow-monitor` binary): the bundled monitor until SIGINT or SIGTERM.

use super::args::ServeArgs;
use crate::exit;
use crate::monitor::{self, ServeError};
use std::process::ExitCode;

pub fn serve(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    match monitor::serve_cli(args.config()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e @ (ServeError::DataDir { .. } | ServeError::Bind { .. })) => Err(exit::usage(e)),
        Err(e) => Err(exit::aborted(e)),
    }
}
