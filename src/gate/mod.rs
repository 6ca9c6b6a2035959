//! Judging: one run against its targets (`judge`), and baseline runs against candidate runs
//! (`compare`), each ending in one verdict and one exit code.

pub mod compare;
pub mod judge;
pub mod search;
