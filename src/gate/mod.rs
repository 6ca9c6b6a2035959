//! Judging results: targets from scenario files, checked against measured figures.

pub mod targets;
