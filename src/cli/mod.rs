//! The command line: `args` holds the clap definitions alone; each subcommand's file
//! sequences parse → measure → judge → render (`load` for the load commands, `compare`,
//! `merge`, `serve`), and this file only dispatches.

mod args;
mod capacity;
mod compare;
mod fanout;
mod load;
mod merge;
mod report;
mod serve;
mod sweep;

pub use args::*;
pub use serve::serve;

use crate::exit;
use std::process::ExitCode;

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve(&args),
        Command::Monitor {
            target,
            duration,
            interval,
            out,
            format,
        } => crate::watch::monitor(&target, duration, interval, out.as_deref(), format),
        Command::Analyze { target, format } => crate::watch::analyze(&target, format),
        Command::Optimize {
            target,
            actions,
            format,
        } => crate::watch::optimize(&target, &crate::watch::default_actions(actions), format),
        Command::Api {
            common,
            requests,
            duration,
        } => load::api(&common, requests, duration),
        Command::Concurrent { common } => load::concurrent(&common),
        Command::Stress {
            common,
            duration,
            read_ratio,
            direct,
        } => load::stress(&common, duration, read_ratio, direct),
        Command::Simulate { common, executions } => load::simulate(&common, executions),
        Command::Fanout { common, fanout } => fanout::run(&common, &fanout),
        Command::Compare {
            files,
            baseline,
            candidate,
            scenario,
            limits,
            pairing,
            format,
            junit,
            html,
        } => {
            let (baseline, candidate) = compare::sides(files, baseline, candidate)?;
            compare::compare(
                &baseline,
                &candidate,
                scenario.as_deref(),
                &limits,
                pairing,
                format,
                junit.as_deref(),
                html.as_deref(),
            )
        }
        Command::Merge { files, out, format } => merge::merge(&files, &out, format),
        Command::Report {
            files,
            html,
            format,
        } => report::report(&files, html.as_deref(), format),
        Command::Sweep(args) => sweep::sweep(&args),
        Command::Capacity(args) => capacity::capacity(&args),
        Command::Run {
            scenarios,
            common,
            duration,
        } => load::run(&scenarios, &common, duration),
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
