//! stepflow-bench: a load-testing harness with its own system under test, the StepFlow monitor.

pub mod cli;
pub mod exit;
pub mod gate;
pub mod load;
pub mod metrics;
pub mod monitor;
pub mod report;
pub mod results;
pub mod rng;
pub mod watch;
