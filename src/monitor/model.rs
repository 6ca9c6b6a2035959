//! The monitor's domain records: executions, steps, log lines and artifacts, as stored and served.

use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// Lifecycle state shared by executions and steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Pending,
        Status::Running,
        Status::Completed,
        Status::Failed,
        Status::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The message names every accepted value so that a client can correct itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status {0:?}: expected one of pending, running, completed, failed, cancelled")]
pub struct UnknownStatus(pub String);

impl FromStr for Status {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

/// A recorded script execution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Execution {
    pub id: i64,
    pub name: String,
    pub command: Option<String>,
    /// Free-form JSON object given at creation.
    pub metadata: Option<serde_json::Value>,
    pub status: Status,
    /// RFC 3339, UTC, microseconds.
    pub created_at: String,
    /// RFC 3339, UTC, microseconds.
    pub updated_at: String,
    /// Number of steps added so far; the next step gets this index.
    pub step_count: i64,
    /// Present only when one execution is fetched by id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<Step>>,
}

/// One step of an execution, indexed 0, 1, ... in the order added.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub execution_id: i64,
    pub index: i64,
    pub name: String,
    pub status: Status,
    pub created_at: String,
    pub updated_at: String,
}

/// A named blob of text attached to an execution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Artifact {
    pub id: i64,
    pub execution_id: i64,
    pub name: String,
    pub content: String,
    /// Content length, bytes.
    pub size: i64,
    pub created_at: String,
}

/// One timestamped line of a step's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    pub timestamp: String,
    pub content: String,
}

/// What a client supplies to create an execution.
#[derive(Debug, Clone)]
pub struct NewExecution {
    pub name: String,
    pub command: Option<String>,
    /// Serialized JSON object, stored as text.
    pub metadata: Option<String>,
}

/// Paging and filtering of the execution list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListQuery {
    pub limit: u32,
    pub offset: u64,
    pub status: Option<Status>,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            limit: 50,
            offset: 0,
            status: None,
        }
    }
}

/// One page of the execution list with the total matching count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionPage {
    pub executions: Vec<Execution>,
    pub total: i64,
}

/// The current time as stored in every `*_at` field.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
