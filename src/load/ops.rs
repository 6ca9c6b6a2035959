//! StepFlow operations as transport-independent calls, carried out over HTTP or, for
//! `--direct`, straight against the storage layer in-process.

use super::client::{ClientError, Link, Response};
use super::id::{snippet, ExecId};
use super::scenario::PlainRequest;
use crate::monitor::model::{ListQuery, NewExecution, Status};
use crate::monitor::storage::{Storage, StorageError};
use serde::Deserialize;
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

/// Calls over HTTP on one keep-alive connection.
pub struct HttpTransport {
    pub conn: Link,
}

fn json_body(v: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&v).expect("JSON values serialize")
}

/// The answer as an error, its body cut to a readable length.
fn status_error(resp: &Response) -> CallError {
    let mut body = String::from_utf8_lossy(&resp.body).into_owned();
    if let Some((i, _)) = body.char_indices().nth(200) {
        body.truncate(i);
    }
    CallError::Status {
        status: resp.status,
        body,
    }
}

fn check(resp: Response) -> Result<Response, CallError> {
    if resp.is_success() {
        Ok(resp)
    } else {
        Err(status_error(&resp))
    }
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

#[derive(Deserialize)]
struct LogLine {
    content: String,
}

#[derive(Deserialize)]
struct Lines {
    lines: Vec<LogLine>,
}

#[derive(Deserialize)]
struct Artifacts {
    artifacts: Vec<ArtifactRow>,
}

impl HttpTransport {
    async fn get(&mut self, path: &str) -> Result<Response, CallError> {
        check(self.conn.send("GET", path, &[], None).await?)
    }

    async fn send_json(
        &mut self,
        method: &str,
        path: &str,
        body: serde_json::Value,
    ) -> Result<Response, CallError> {
        check(
            self.conn
                .send(method, path, &[], Some(&json_body(body)))
                .await?,
        )
    }
}

impl Transport for HttpTransport {
    async fn call(&mut self, call: &Call) -> Result<Reply, CallError> {
        use serde_json::json;
        match call {
            Call::Health => self.get("/api/health").await.map(|_| Reply::Done),
            Call::Create { name } => {
                let resp = self
                    .send_json("POST", "/api/executions", json!({ "name": name }))
                    .await?;
                Ok(Reply::Created {
                    id: decode::<Created>(&resp.body)?.id,
                })
            }
            Call::Get { id } => self
                .get(&format!("/api/executions/{}", id.segment()))
                .await
                .map(|_| Reply::Done),
            Call::List { limit, offset } => {
                let path = if *offset == 0 {
                    format!("/api/executions?limit={limit}")
                } else {
                    format!("/api/executions?limit={limit}&offset={offset}")
                };
                self.get(&path).await.map(|_| Reply::Done)
            }
            Call::UpdateStatus { id, status } => self
                .send_json(
                    "PATCH",
                    &format!("/api/executions/{}", id.segment()),
                    json!({ "status": status.as_str() }),
                )
                .await
                .map(|_| Reply::Done),
            Call::AddStep { id, name } => {
                let resp = self
                    .send_json(
                        "POST",
                        &format!("/api/executions/{}/steps", id.segment()),
                        json!({ "name": name }),
                    )
                    .await?;
                Ok(Reply::StepAdded {
                    index: decode::<StepIndex>(&resp.body)?.index,
                })
            }
            Call::UpdateStep { id, index, status } => self
                .send_json(
                    "PATCH",
                    &format!("/api/executions/{}/steps/{index}", id.segment()),
                    json!({ "status": status.as_str() }),
                )
                .await
                .map(|_| Reply::Done),
            Call::AppendLogs { id, index, lines } => self
                .send_json(
                    "POST",
                    &format!("/api/executions/{}/steps/{index}/logs", id.segment()),
                    json!({ "lines": lines }),
                )
                .await
                .map(|_| Reply::Done),
            Call::GetLogs { id, index } => self
                .get(&format!(
                    "/api/executions/{}/steps/{index}/logs",
                    id.segment()
                ))
                .await
                .map(|_| Reply::Done),
            Call::AddArtifact { id, name, content } => self
                .send_json(
                    "POST",
                    &format!("/api/executions/{}/artifacts", id.segment()),
                    json!({ "name": name, "content": content }),
                )
                .await
                .map(|_| Reply::Done),
            Call::ListArtifacts { id } => self
                .get(&format!("/api/executions/{}/artifacts", id.segment()))
                .await
                .map(|_| Reply::Done),
            Call::Raw(request) => {
                let resp = self
                    .conn
                    .send(
                        &request.method,
                        &request.path,
                        &request.headers,
                        request.body.as_deref().map(str::as_bytes),
                    )
                    .await?;
                if request.accepts(resp.status) {
                    Ok(Reply::Done)
                } else {
                    Err(status_error(&resp))
                }
            }
        }
    }

    async fn page(&mut self, limit: u32, offset: u64) -> Result<Page, CallError> {
        let resp = self
            .get(&format!("/api/executions?limit={limit}&offset={offset}"))
            .await?;
        decode(&resp.body)
    }

    async fn execution(&mut self, id: &ExecId) -> Result<ExecutionDetail, CallError> {
        let resp = self
            .get(&format!("/api/executions/{}", id.segment()))
            .await?;
        decode(&resp.body)
    }

    async fn logs(&mut self, id: &ExecId, index: i64) -> Result<Vec<String>, CallError> {
        let resp = self
            .get(&format!(
                "/api/executions/{}/steps/{index}/logs",
                id.segment()
            ))
            .await?;
        Ok(decode::<Lines>(&resp.body)?
            .lines
            .into_iter()
            .map(|l| l.content)
            .collect())
    }

    async fn artifacts(&mut self, id: &ExecId) -> Result<Vec<ArtifactRow>, CallError> {
        let resp = self
            .get(&format!("/api/executions/{}/artifacts", id.segment()))
            .await?;
        Ok(decode::<Artifacts>(&resp.body)?.artifacts)
    }
}

/// Calls straight into the storage layer: the same work minus HTTP, to separate the costs.
#[derive(Clone)]
pub struct DirectTransport {
    pub storage: Storage,
}

fn storage_err(e: StorageError) -> CallError {
    match e {
        StorageError::NotFound(what) => CallError::StorageNotFound(what),
        e => CallError::Storage(e.to_string()),
    }
}

/// The storage layer's key for an id it handed out itself.
fn key(id: &ExecId) -> Result<i64, CallError> {
    id.as_i64()
        .ok_or_else(|| CallError::Storage(format!("{id:?} is not an id of the storage layer")))
}

impl Transport for DirectTransport {
    async fn call(&mut self, call: &Call) -> Result<Reply, CallError> {
        let s = &self.storage;
        let r = match call {
            Call::Health => Reply::Done,
            Call::Create { name } => {
                let new = NewExecution {
                    name: name.clone(),
                    command: None,
                    metadata: None,
                };
                Reply::Created {
                    id: s
                        .create_execution(new)
                        .await
                        .map_err(storage_err)?
                        .id
                        .into(),
                }
            }
            Call::Get { id } => s
                .get_execution(key(id)?)
                .await
                .map(|_| Reply::Done)
                .map_err(storage_err)?,
            Call::List { limit, offset } => {
                let q = ListQuery {
                    limit: *limit,
                    offset: *offset,
                    status: None,
                };
                s.list_executions(q)
                    .await
                    .map(|_| Reply::Done)
                    .map_err(storage_err)?
            }
            Call::UpdateStatus { id, status } => s
                .update_status(key(id)?, *status)
                .await
                .map(|_| Reply::Done)
                .map_err(storage_err)?,
            Call::AddStep { id, name } => Reply::StepAdded {
                index: s
                    .add_step(key(id)?, name.clone())
                    .await
                    .map_err(storage_err)?
                    .index,
            },
            Call::UpdateStep { id, index, status } => s
                .update_step(key(id)?, *index, *status)
                .await
                .map(|_| Reply::Done)
                .map_err(storage_err)?,
            Call::AppendLogs { id, index, lines } => s
                .append_logs(key(id)?, *index, lines.clone())
                .await
                .map(|_| Reply::Done)
                .map_err(storage_err)?,
            Call::GetLogs { id, index } => s
                .read_logs(key(id)?, *index)
                .await
                .map(|_| Reply::Done)
                .map_err(storage_err)?,
            Call::AddArtifact { id, name, content } => s
                .add_artifact(key(id)?, name.clone(), content.clone())
                .await
                .map(|_| Reply::Done)
                .map_err(storage_err)?,
            Call::ListArtifacts { id } => s
                .list_artifacts(key(id)?)
                .await
                .map(|_| Reply::Done)
                .map_err(storage_err)?,
            Call::Raw(request) => {
                return Err(CallError::Storage(format!(
                    "plain request {} {} cannot run with --direct (no HTTP)",
                    request.method, request.path
                )))
            }
        };
        Ok(r)
    }

    async fn page(&mut self, limit: u32, offset: u64) -> Result<Page, CallError> {
        let q = ListQuery {
            limit,
            offset,
            status: None,
        };
        let page = self.storage.list_executions(q).await.map_err(storage_err)?;
        Ok(Page {
            total: Some(page.total as u64),
            executions: page
                .executions
                .into_iter()
                .map(|e| ExecutionRow {
                    id: e.id.into(),
                    status: e.status.as_str().to_string(),
                    step_count: Some(e.step_count),
                })
                .collect(),
        })
    }

    async fn execution(&mut self, id: &ExecId) -> Result<ExecutionDetail, CallError> {
        let e = self
            .storage
            .get_execution(key(id)?)
            .await
            .map_err(storage_err)?;
        Ok(ExecutionDetail {
            status: e.status.as_str().to_string(),
            steps: e
                .steps
                .unwrap_or_default()
                .into_iter()
                .map(|s| StepRow {
                    index: s.index,
                    name: s.name,
                    status: s.status.as_str().to_string(),
                })
                .collect(),
        })
    }

    async fn logs(&mut self, id: &ExecId, index: i64) -> Result<Vec<String>, CallError> {
        let lines = self
            .storage
            .read_logs(key(id)?, index)
            .await
            .map_err(storage_err)?;
        Ok(lines.into_iter().map(|l| l.content).collect())
    }

    async fn artifacts(&mut self, id: &ExecId) -> Result<Vec<ArtifactRow>, CallError> {
        let a = self
            .storage
            .list_artifacts(key(id)?)
            .await
            .map_err(storage_err)?;
        Ok(a.into_iter()
            .map(|a| ArtifactRow {
                name: a.name,
                content: Some(a.content),
            })
            .collect())
    }
}
