use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = stepflow_bench::cli::Cli::parse();
    stepflow_bench::cli::main_with(stepflow_bench::cli::run(cli))
}
