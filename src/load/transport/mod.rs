//! StepFlow operations as transport-independent calls, and the one `Transport` trait they
//! are carried out through: over HTTP (`http`), straight against the storage layer
//! in-process for `--direct` (`direct`, the only place the generator touches storage), or
//! through whatever a test substitutes. A `Connector` makes one transport per connection.

pub mod direct;
pub mod http;

use super::client::ClientError;
use super::id::{snippet, ExecId};
use super::scenario::PlainRequest;
use crate::monitor::model::Status;
use serde::Deserialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// One request of a workload. Ids are cheap to clone ([`ExecId`]); a plain request is shared
/// with the scenario rather than copied per request.
#[derive(Debug, Clone)]
pub enum Call {
    Health,
    Create {
        name: String,
    },
    Get {
        id: ExecId,
    },
    List {
        limit: u32,
        offset: u64,
    },
    UpdateStatus {
        id: ExecId,
        status: Status,
    },
    AddStep {
        id: ExecId,
        name: String,
    },
    UpdateStep {
        id: ExecId,
        index: i64,
        status: Status,
    },
    AppendLogs {
        id: ExecId,
        index: i64,
        lines: Vec<String>,
    },
    GetLogs {
        id: ExecId,
        index: i64,
    },
    AddArtifact {
        id: ExecId,
        name: String,
        content: String,
    },
    ListArtifacts {
        id: ExecId,
    },
    /// A plain request of a scenario file.
    Raw(Arc<PlainRequest>),
}

/// What a successful call tells the workload; reads under load are not parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Done,
    Created { id: ExecId },
    StepAdded { index: i64 },
}

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("{0}")]
    Storage(String),
    /// `--direct`: the storage layer has no such execution or step.
    #[error("{0}")]
    StorageNotFound(String),
    #[error("unexpected answer: {0}")]
    Decode(String),
    /// The run stopped (Ctrl-C, an abort) before an answer came.
    #[error("stopped before an answer came (the run was stopped)")]
    Stopped,
}

impl CallError {
    pub fn is_connection_failure(&self) -> bool {
        matches!(self, CallError::Client(e) if e.is_connection_failure())
    }

    /// The service answered that the thing asked for does not exist (404 or 410).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            CallError::Status {
                status: 404 | 410,
                ..
            } | CallError::StorageNotFound(_)
        )
    }
}

/// Carries calls to the system under test.
// Executors run on single-threaded runtimes (LocalSet), so the futures need not be Send.
#[allow(async_fn_in_trait)]
pub trait Transport {
    /// Opens the connection ahead of the first call (a burst opens all of its connections
    /// before releasing any request); transports without one have nothing to do.
    async fn connect(&mut self) -> Result<(), CallError> {
        Ok(())
    }
    async fn call(&mut self, call: &Call) -> Result<Reply, CallError>;
    /// A page of executions for integrity checks, in the service's list order.
    async fn page(&mut self, limit: u32, offset: u64) -> Result<Page, CallError>;
    /// Everything stored for one execution, for read-back checks.
    async fn execution(&mut self, id: &ExecId) -> Result<ExecutionDetail, CallError>;
    async fn logs(&mut self, id: &ExecId, index: i64) -> Result<Vec<String>, CallError>;
    async fn artifacts(&mut self, id: &ExecId) -> Result<Vec<ArtifactRow>, CallError>;
}

/// One page of `GET /api/executions`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Page {
    pub executions: Vec<ExecutionRow>,
    /// Executions stored in all, when the service says.
    #[serde(default)]
    pub total: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ExecutionRow {
    pub id: ExecId,
    pub status: String,
    /// Steps stored, when the list shows it (the bundled monitor does; the contract does
    /// not require it, so without it step counts are read from the execution itself).
    #[serde(default)]
    pub step_count: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StepRow {
    pub index: i64,
    pub name: String,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ExecutionDetail {
    pub status: String,
    pub steps: Vec<StepRow>,
}

impl ExecutionDetail {
    /// The list row this detail stands for, for executions the list did not show.
    pub fn row(&self, id: ExecId) -> ExecutionRow {
        ExecutionRow {
            id,
            status: self.status.clone(),
            step_count: Some(self.steps.len() as i64),
        }
    }
}

/// An artifact as read back; `content` when the list includes it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ArtifactRow {
    pub name: String,
    #[serde(default)]
    pub content: Option<String>,
}

/// The body as JSON of the shape wanted; the error quotes how the body began.
pub fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, CallError> {
    serde_json::from_slice(body).map_err(|e| {
        CallError::Decode(format!(
            "{e}; the body began {:?}",
            snippet(&String::from_utf8_lossy(body), 80)
        ))
    })
}

/// The `id` of a created execution.
#[derive(Deserialize)]
pub struct Created {
    pub id: ExecId,
}

/// The `index` of an added step.
#[derive(Deserialize)]
pub struct StepIndex {
    pub index: i64,
}

/// A call's future, boxed: what `DynTransport` returns.
pub type CallFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, CallError>> + 'a>>;

/// `Transport` as a trait object, so that the executors take any transport without
/// generics; every `Transport` is one. One allocation per call, against a request's tens
/// of microseconds.
pub trait DynTransport {
    fn connect(&mut self) -> CallFuture<'_, ()>;
    fn call<'a>(&'a mut self, call: &'a Call) -> CallFuture<'a, Reply>;
    fn page(&mut self, limit: u32, offset: u64) -> CallFuture<'_, Page>;
    fn execution<'a>(&'a mut self, id: &'a ExecId) -> CallFuture<'a, ExecutionDetail>;
    fn logs<'a>(&'a mut self, id: &'a ExecId, index: i64) -> CallFuture<'a, Vec<String>>;
    fn artifacts<'a>(&'a mut self, id: &'a ExecId) -> CallFuture<'a, Vec<ArtifactRow>>;
}

impl<T: Transport> DynTransport for T {
    fn connect(&mut self) -> CallFuture<'_, ()> {
        Box::pin(Transport::connect(self))
    }
    fn call<'a>(&'a mut self, call: &'a Call) -> CallFuture<'a, Reply> {
        Box::pin(Transport::call(self, call))
    }
    fn page(&mut self, limit: u32, offset: u64) -> CallFuture<'_, Page> {
        Box::pin(Transport::page(self, limit, offset))
    }
    fn execution<'a>(&'a mut self, id: &'a ExecId) -> CallFuture<'a, ExecutionDetail> {
        Box::pin(Transport::execution(self, id))
    }
    fn logs<'a>(&'a mut self, id: &'a ExecId, index: i64) -> CallFuture<'a, Vec<String>> {
        Box::pin(Transport::logs(self, id, index))
    }
    fn artifacts<'a>(&'a mut self, id: &'a ExecId) -> CallFuture<'a, Vec<ArtifactRow>> {
        Box::pin(Transport::artifacts(self, id))
    }
}

/// Where a run's calls go: makes a transport per connection (each generator thread and
/// task opens its own), and names requests in messages.
pub trait Connector: Send + Sync {
    fn open(&self) -> Box<dyn DynTransport>;
    /// A request as a message names it: `POST http://host:port/api/executions`.
    fn describe(&self, method: &str, path: &str) -> String;
}
