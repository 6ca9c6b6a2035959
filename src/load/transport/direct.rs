//! `--direct`: calls straight into the storage layer in-process, the same work minus HTTP,
//! to separate the costs. The only place the generator touches the monitor's storage.

use super::*;
use crate::monitor::model::{ListQuery, NewExecution};
use crate::monitor::storage::{Storage, StorageError};

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

impl Connector for DirectTransport {
    fn open(&self) -> Box<dyn DynTransport> {
        Box::new(self.clone())
    }

    fn describe(&self, method: &str, path: &str) -> String {
        format!("{method} {path} (in-process storage)")
    }
}
