//! The load generator: scenario plans and open-model pacing.

pub mod duration;
pub mod pacer;
pub mod scenario;
