//! StepFlow operations as transport-independent calls, carried out over HTTP or, for
//! `--direct`, straight against the storage layer in-process.

use super::client::{ClientError, Conn, Response};
use crate::monitor::model::{ListQuery, NewExecution, Status};
use crate::monitor::storage::{Storage, StorageError};
use serde::Deserialize;

/// One request of a workload.
#[derive(Debug, Clone)]
pub enum Call {
    Health,
    Create {
        name: String,
    },
    Get {
        id: i64,
    },
    List {
        limit: u32,
        offset: u64,
    },
    UpdateStatus {
        id: i64,
        status: Status,
    },
    AddStep {
        id: i64,
        name: String,
    },
    UpdateStep {
        id: i64,
        index: i64,
        status: Status,
    },
    AppendLogs {
        id: i64,
        index: i64,
        lines: Vec<String>,
    },
    GetLogs {
        id: i64,
        index: i64,
    },
    AddArtifact {
        id: i64,
        name: String,
        content: String,
    },
    ListArtifacts {
        id: i64,
    },
    /// A plain request of a scenario file.
    Raw {
        method: String,
        path: String,
        body: Option<String>,
        headers: Vec<(String, String)>,
    },
}

/// What a successful call tells the workload; reads under load are not parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Done,
    Created { id: i64 },
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
    #[error("unexpected answer: {0}")]
    Decode(String),
}

impl CallError {
    pub fn is_connection_failure(&self) -> bool {
        matches!(self, CallError::Client(e) if e.is_connection_failure())
    }
}

/// Carries calls to the system under test.
// Executors run on single-threaded runtimes (LocalSet), so the futures need not be Send.
#[allow(async_fn_in_trait)]
pub trait Transport {
    async fn call(&mut self, call: &Call) -> Result<Reply, CallError>;
    /// A page of executions for integrity checks: (id, status, step_count), newest first.
    async fn page(&mut self, limit: u32, offset: u64) -> Result<Vec<ExecutionRow>, CallError>;
    /// Everything stored for one execution, for read-back checks.
    async fn execution(&mut self, id: i64) -> Result<ExecutionDetail, CallError>;
    async fn logs(&mut self, id: i64, index: i64) -> Result<Vec<String>, CallError>;
    async fn artifacts(&mut self, id: i64) -> Result<Vec<(String, String)>, CallError>;
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ExecutionRow {
    pub id: i64,
    pub status: String,
    pub step_count: i64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StepRow {
    pub index: i64,
    pub name: String,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ExecutionDetail {
    pub id: i64,
    pub name: String,
    pub status: String,
    pub steps: Vec<StepRow>,
}

/// Calls over HTTP on one keep-alive connection.
pub struct HttpTransport {
    pub conn: Conn,
}

fn json_body(v: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&v).expect("JSON values serialize")
}

fn check(resp: Response) -> Result<Response, CallError> {
    if resp.is_success() {
        Ok(resp)
    } else {
        let mut body = String::from_utf8_lossy(&resp.body).into_owned();
        body.truncate(200);
        Err(CallError::Status {
            status: resp.status,
            body,
        })
    }
}

fn decode<T: serde::de::DeserializeOwned>(resp: &Response) -> Result<T, CallError> {
    serde_json::from_slice(&resp.body).map_err(|e| CallError::Decode(e.to_string()))
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
                #[derive(Deserialize)]
                struct Id {
                    id: i64,
                }
                Ok(Reply::Created {
                    id: decode::<Id>(&resp)?.id,
                })
            }
            Call::Get { id } => self
                .get(&format!("/api/executions/{id}"))
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
                    &format!("/api/executions/{id}"),
                    json!({ "status": status.as_str() }),
                )
                .await
                .map(|_| Reply::Done),
            Call::AddStep { id, name } => {
                let resp = self
                    .send_json(
                        "POST",
                        &format!("/api/executions/{id}/steps"),
                        json!({ "name": name }),
                    )
                    .await?;
                #[derive(Deserialize)]
                struct Index {
                    index: i64,
                }
                Ok(Reply::StepAdded {
                    index: decode::<Index>(&resp)?.index,
                })
            }
            Call::UpdateStep { id, index, status } => self
                .send_json(
                    "PATCH",
                    &format!("/api/executions/{id}/steps/{index}"),
                    json!({ "status": status.as_str() }),
                )
                .await
                .map(|_| Reply::Done),
            Call::AppendLogs { id, index, lines } => self
                .send_json(
                    "POST",
                    &format!("/api/executions/{id}/steps/{index}/logs"),
                    json!({ "lines": lines }),
                )
                .await
                .map(|_| Reply::Done),
            Call::GetLogs { id, index } => self
                .get(&format!("/api/executions/{id}/steps/{index}/logs"))
                .await
                .map(|_| Reply::Done),
            Call::AddArtifact { id, name, content } => self
                .send_json(
                    "POST",
                    &format!("/api/executions/{id}/artifacts"),
                    json!({ "name": name, "content": content }),
                )
                .await
                .map(|_| Reply::Done),
            Call::ListArtifacts { id } => self
                .get(&format!("/api/executions/{id}/artifacts"))
                .await
                .map(|_| Reply::Done),
            Call::Raw {
                method,
                path,
                body,
                headers,
            } => {
                let resp = self
                    .conn
                    .send(method, path, headers, body.as_deref().map(str::as_bytes))
                    .await?;
                check(resp).map(|_| Reply::Done)
            }
        }
    }

    async fn page(&mut self, limit: u32, offset: u64) -> Result<Vec<ExecutionRow>, CallError> {
        let resp = self
            .get(&format!("/api/executions?limit={limit}&offset={offset}"))
            .await?;
        #[derive(Deserialize)]
        struct Page {
            executions: Vec<ExecutionRow>,
        }
        Ok(decode::<Page>(&resp)?.executions)
    }

    async fn execution(&mut self, id: i64) -> Result<ExecutionDetail, CallError> {
        let resp = self.get(&format!("/api/executions/{id}")).await?;
        decode(&resp)
    }

    async fn logs(&mut self, id: i64, index: i64) -> Result<Vec<String>, CallError> {
        let resp = self
            .get(&format!("/api/executions/{id}/steps/{index}/logs"))
            .await?;
        #[derive(Deserialize)]
        struct Line {
            content: String,
        }
        #[derive(Deserialize)]
        struct Lines {
            lines: Vec<Line>,
        }
        Ok(decode::<Lines>(&resp)?
            .lines
            .into_iter()
            .map(|l| l.content)
            .collect())
    }

    async fn artifacts(&mut self, id: i64) -> Result<Vec<(String, String)>, CallError> {
        let resp = self.get(&format!("/api/executions/{id}/artifacts")).await?;
        #[derive(Deserialize)]
        struct Artifact {
            name: String,
            content: String,
        }
        #[derive(Deserialize)]
        struct Artifacts {
            artifacts: Vec<Artifact>,
        }
        Ok(decode::<Artifacts>(&resp)?
            .artifacts
            .into_iter()
            .map(|a| (a.name, a.content))
            .collect())
    }
}

/// Calls straight into the storage layer: the same work minus HTTP, to separate the costs.
#[derive(Clone)]
pub struct DirectTransport {
    pub storage: Storage,
}

fn storage_err(e: StorageError) -> CallError {
    CallError::Storage(e.to_string())
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
                    id: s.create_execution(new).await.map_err(storage_err)?.id,
                }
            }
            Call::Get { id } => s
                .get_execution(*id)
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
                .update_status(*id, *status)
                .await
                .map(|_| Reply::Done)
                .map_err(storage_err)?,
            Call::AddStep { id, name } => Reply::StepAdded {
                index: s
                    .add_step(*id, name.clone())
                    .await
                    .map_err(storage_err)?
                    .index,
            },
            Call::UpdateStep { id, index, status } => s
                .update_step(*id, *index, *status)
                .await
                .map(|_| Reply::Done)
                .map_err(storage_err)?,
            Call::AppendLogs { id, index, lines } => s
                .append_logs(*id, *index, lines.clone())
                .await
                .map(|_| Reply::Done)
                .map_err(storage_err)?,
            Call::GetLogs { id, index } => s
                .read_logs(*id, *index)
                .await
                .map(|_| Reply::Done)
                .map_err(storage_err)?,
            Call::AddArtifact { id, name, content } => s
                .add_artifact(*id, name.clone(), content.clone())
                .await
                .map(|_| Reply::Done)
                .map_err(storage_err)?,
            Call::ListArtifacts { id } => s
                .list_artifacts(*id)
                .await
                .map(|_| Reply::Done)
                .map_err(storage_err)?,
            Call::Raw { method, path, .. } => {
                return Err(CallError::Storage(format!(
                    "plain request {method} {path} cannot run with --direct (no HTTP)"
                )))
            }
        };
        Ok(r)
    }

    async fn page(&mut self, limit: u32, offset: u64) -> Result<Vec<ExecutionRow>, CallError> {
        let q = ListQuery {
            limit,
            offset,
            status: None,
        };
        let page = self.storage.list_executions(q).await.map_err(storage_err)?;
        Ok(page
            .executions
            .into_iter()
            .map(|e| ExecutionRow {
                id: e.id,
                status: e.status.as_str().to_string(),
                step_count: e.step_count,
            })
            .collect())
    }

    async fn execution(&mut self, id: i64) -> Result<ExecutionDetail, CallError> {
        let e = self.storage.get_execution(id).await.map_err(storage_err)?;
        Ok(ExecutionDetail {
            id: e.id,
            name: e.name,
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

    async fn logs(&mut self, id: i64, index: i64) -> Result<Vec<String>, CallError> {
        let lines = self
            .storage
            .read_logs(id, index)
            .await
            .map_err(storage_err)?;
        Ok(lines.into_iter().map(|l| l.content).collect())
    }

    async fn artifacts(&mut self, id: i64) -> Result<Vec<(String, String)>, CallError> {
        let a = self.storage.list_artifacts(id).await.map_err(storage_err)?;
        Ok(a.into_iter().map(|a| (a.name, a.content)).collect())
    }
}
