use clap::Parser;
use std::process::ExitCode;

// glibc's allocator showed up as ~8 % of the monitor's CPU under load (arena locks,
// consolidation); mimalloc's thread-local heaps cost a fraction of that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = stepflow_bench::cli::Cli::parse();
    stepflow_bench::cli::main_with(stepflow_bench::cli::run(cli))
}
