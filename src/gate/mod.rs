//! Judging results: targets from scenario files checked against measured figures, baseline
//! comparison of repeated runs, and merging of concurrent runs.

pub mod compare;
pub mod merge;
pub mod targets;
