//! The monitor's domain records: executions, steps, log lines and artifacts, as stored and served.

use serde::Serialize;
use std::fmt;
use std::str::FromStr;
use utoipa::ToSchema;

/// Lifecycle state shared by executions and steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Execution {
    #[schema(minimum = 0)]
    pub id: i64,
    pub name: String,
    #[schema(required = true)]
    pub command: Option<String>,
    /// Free-form JSON object given at creation, as the client wrote it (null when none was).
    #[schema(value_type = Option<Object>, required = true)]
    pub metadata: Option<JsonText>,
    pub status: Status,
    /// RFC 3339, UTC, microseconds.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// RFC 3339, UTC, microseconds.
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Number of steps added so far; the next step gets this index.
    #[schema(minimum = 0)]
    pub step_count: i64,
    /// Present only when one execution is fetched by id.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub steps: Option<Vec<Step>>,
}

/// A JSON value kept as the text it arrived as and served verbatim: parsing it into numbers
/// and writing it out again changed what was stored (`18446744073709551616` came back as
/// `1.8446744073709552e+19`, and keys were re-sorted).
#[derive(Debug, Clone)]
pub struct JsonText(Box<serde_json::value::RawValue>);

impl JsonText {
    /// Checks that `text` is one JSON value; the text itself is kept unchanged.
    pub fn new(text: String) -> Result<JsonText, serde_json::Error> {
        serde_json::value::RawValue::from_string(text).map(JsonText)
    }

    pub fn as_str(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for JsonText {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Serialize for JsonText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// One step of an execution, indexed 0, 1, ... in the order added.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Step {
    #[schema(minimum = 0)]
    pub execution_id: i64,
    #[schema(minimum = 0)]
    pub index: i64,
    pub name: String,
    pub status: Status,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// A named blob of text attached to an execution.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Artifact {
    #[schema(minimum = 0)]
    pub id: i64,
    #[schema(minimum = 0)]
    pub execution_id: i64,
    pub name: String,
    pub content: String,
    /// Content length, bytes (UTF-8).
    #[schema(minimum = 0)]
    pub size: i64,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// One timestamped line of a step's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LogLine {
    /// When the line was appended: RFC 3339, UTC, microseconds.
    #[schema(format = DateTime)]
    pub timestamp: String,
    /// The line as sent.
    pub content: String,
}

/// What a client supplies to create an execution.
#[derive(Debug, Clone)]
pub struct NewExecution {
    pub name: String,
    pub command: Option<String>,
    /// A JSON object as the client wrote it, stored as that text.
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
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ExecutionPage {
    /// Newest first.
    pub executions: Vec<Execution>,
    /// Every execution matching the filter, not only this page.
    #[schema(minimum = 0)]
    pub total: i64,
}

/// The current time as stored in every `*_at` field.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
