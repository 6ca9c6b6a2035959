//! The command line: clap definitions and dispatch to the library.

use crate::exit;
use crate::monitor::{self, storage::Profile, ServeConfig, ServeError};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// Load-testing harness with a bundled StepFlow monitor (REST on SQLite).
#[derive(Debug, Parser)]
#[command(name = "stepflow-bench", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the bundled StepFlow monitor until SIGINT or SIGTERM.
    Serve(ServeArgs),
}

/// Storage profile of the bundled monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProfileArg {
    /// WAL, group commit, pooled readers.
    Optimized,
    /// Rollback journal, full sync, a connection per operation (the write-up's "before").
    Legacy,
}

impl From<ProfileArg> for Profile {
    fn from(p: ProfileArg) -> Profile {
        match p {
            ProfileArg::Optimized => Profile::Optimized,
            ProfileArg::Legacy => Profile::Legacy,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the real one is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Directory for stepflow.db and the step logs; created if missing.
    #[arg(long, default_value = "stepflow-data")]
    pub data_dir: PathBuf,
    /// Storage profile.
    #[arg(long, value_enum, default_value_t = ProfileArg::Optimized)]
    pub profile: ProfileArg,
    /// Async worker threads (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
}

impl ServeArgs {
    pub fn config(&self) -> ServeConfig {
        ServeConfig {
            addr: self.addr.clone(),
            data_dir: self.data_dir.clone(),
            profile: self.profile.into(),
            workers: self.workers,
        }
    }
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve(&args),
    }
}

pub fn serve(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    match monitor::serve_cli(args.config()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e @ (ServeError::DataDir { .. } | ServeError::Bind { .. })) => Err(exit::usage(e)),
        Err(e) => Err(exit::aborted(e)),
    }
}

/// The body of every binary's `main`: run, print the whole error chain, map it to an exit code.
pub fn main_with(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("Error: {err:#}");
            ExitCode::from(exit::code_of(&err))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
