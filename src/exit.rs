//! Exit codes of the command line contract, carried through `anyhow` errors.

use std::fmt;

/// Every target met.
pub const OK: u8 = 0;
/// A target missed or a regression found.
pub const FAILED: u8 = 1;
/// Bad usage or a bad scenario file.
pub const USAGE: u8 = 2;
/// The target could not be reached or the run was aborted.
pub const ABORTED: u8 = 3;

/// An error that knows which exit code it ends the process with.
#[derive(Debug)]
pub struct Coded {
    pub code: u8,
    pub error: anyhow::Error,
}

impl fmt::Display for Coded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for Coded {}

pub fn usage(error: impl Into<anyhow::Error>) -> anyhow::Error {
    Coded {
        code: USAGE,
        error: error.into(),
    }
    .into()
}

pub fn aborted(error: impl Into<anyhow::Error>) -> anyhow::Error {
    Coded {
        code: ABORTED,
        error: error.into(),
    }
    .into()
}

/// The exit code an error ends the process with; unclassified failures count as aborted runs.
pub fn code_of(error: &anyhow::Error) -> u8 {
    error
        .chain()
        .find_map(|e| e.downcast_ref::<Coded>())
        .map_or(ABORTED, |c| c.code)
}
