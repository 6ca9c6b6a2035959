//! The bundled StepFlow monitor on its own: the same service as `stepflow-bench serve`.

use clap::Parser;
use std::process::ExitCode;

// glibc's allocator showed up as ~8 % of the monitor's CPU under load (arena locks,
// consolidation); mimalloc's thread-local heaps cost a fraction of that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
