//! Calls over HTTP: the lean HTTP/1.1 client for plain http://, reqwest for https:// and
//! HTTP/2 (both behind `Link`), one keep-alive connection per transport.

use super::*;
use crate::load::client::{Endpoint, Link, Response, Timeouts, Wire};

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
    async fn connect(&mut self) -> Result<(), CallError> {
        Ok(self.conn.connect().await?)
    }

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

/// Makes HTTP transports to one endpoint.
pub struct HttpConnector {
    pub endpoint: Arc<Endpoint>,
    pub timeouts: Timeouts,
    pub wire: Wire,
}

impl Connector for HttpConnector {
    fn open(&self) -> Box<dyn DynTransport> {
        Box::new(HttpTransport {
            conn: Link::new(&self.wire, &self.endpoint, self.timeouts),
        })
    }

    fn describe(&self, method: &str, path: &str) -> String {
        format!("{method} {}{path}", self.endpoint.url)
    }
}
