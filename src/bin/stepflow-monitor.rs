//! The bundled StepFlow monitor on its own: the same service as `stepflow-bench serve`.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = Args::parse();
    stepflow_bench::cli::main_with(stepflow_bench::cli::serve(&args.serve))
}

/// The StepFlow monitor: a REST service recording script executions in SQLite.
#[derive(Debug, Parser)]
#[command(name = "stepflow-monitor", version, about)]
struct Args {
    #[command(flatten)]
    serve: stepflow_bench::cli::ServeArgs,
}
