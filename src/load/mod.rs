//! The load generator: scenarios, pacing, the HTTP client, workload executors and runs.

pub mod book;
pub mod bounds;
pub mod builtin;
pub mod bundled;
pub mod client;
pub mod duration;
pub mod engine;
pub mod evidence;
pub mod fanout;
pub mod https;
pub mod id;
pub mod machine;
pub mod pacer;
pub mod probe;
pub mod progress;
pub mod run;
pub mod sampler;
pub mod scenario;
pub mod stream;
pub mod sys;
pub mod transport;
