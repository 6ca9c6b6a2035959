//! Before any load: does the target answer like a StepFlow service where the scenario's
//! built-in operations need one? A target that does not (a 404, an HTML page, another API)
//! is refused with the request and what came back, instead of being measured as a run of
//! errors or aborting half-way through set-up.

use super::client::{Endpoint, Link, Response, Timeouts, Wire};
use super::engine::Workload;
use super::id::snippet;
use super::scenario::{OpKind, OperationSpec};
use super::transport::Page;
use std::sync::Arc;

/// The parts of the StepFlow API a run relies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Needs {
    /// `GET /api/health` (the built-in `health` operation).
    pub health: bool,
    /// The executions API (every other built-in operation, set-up and the read-back).
    pub executions: bool,
}

impl Needs {
    pub fn of(workload: &Workload) -> Needs {
        let kinds: Vec<OpKind> = match workload {
            Workload::Mix(ops) | Workload::PerEndpoint(ops) => ops
                .iter()
                .filter_map(|o| match &o.spec {
                    OperationSpec::BuiltIn { kind, .. } => Some(*kind),
                    OperationSpec::Request(_) => None,
                })
                .collect(),
            Workload::Burst { .. } | Workload::Flow(_) => vec![OpKind::CreateExecution],
        };
        Needs {
            health: kinds.contains(&OpKind::Health),
            executions: kinds.iter().any(|k| *k != OpKind::Health),
        }
    }

    pub fn any(self) -> bool {
        self.health || self.executions
    }
}

/// What a probe request came back with, for the message.
fn answered(endpoint: &Endpoint, path: &str, resp: &Response) -> String {
    let body = String::from_utf8_lossy(&resp.body);
    let body = if body.trim().is_empty() {
        "an empty body".to_string()
    } else {
        format!("{:?}", snippet(body.trim(), 120))
    };
    format!(
        "GET {}{path} answered HTTP {} with {body}",
        endpoint.url, resp.status
    )
}

const NOT_STEPFLOW: &str = "the target does not look like a StepFlow service, which the \
    scenario's built-in operations need: pass the service's base URL to --target (without \
    /api), or load this target with plain requests (`method` and `path`) in a scenario file";

async fn get(conn: &mut Link, endpoint: &Endpoint, path: &str) -> Result<Response, String> {
    conn.send("GET", path, &[], None)
        .await
        .map_err(|e| format!("GET {}{path}: {e}", endpoint.url))
}

/// Sends the read-only requests `needs` calls for and checks the answers' shape; the error
/// names the request, the status and how the body began.
pub async fn check(
    endpoint: &Arc<Endpoint>,
    wire: &Wire,
    timeouts: Timeouts,
    needs: Needs,
) -> Result<(), String> {
    let mut conn = Link::new(wire, endpoint, timeouts);
    if needs.health {
        let path = "/api/health";
        let resp = get(&mut conn, endpoint, path).await?;
        if !resp.is_success() {
            return Err(format!(
                "{}: {NOT_STEPFLOW}",
                answered(endpoint, path, &resp)
            ));
        }
    }
    if needs.executions {
        let path = "/api/executions?limit=1";
        let resp = get(&mut conn, endpoint, path).await?;
        if !resp.is_success() {
            return Err(format!(
                "{}: {NOT_STEPFLOW}",
                answered(endpoint, path, &resp)
            ));
        }
        if let Err(e) = serde_json::from_slice::<Page>(&resp.body) {
            return Err(format!(
                "{}, which is not a list of executions ({{\"executions\": [{{\"id\": ..., \
                 \"status\": ...}}, ...]}}; {e}): {NOT_STEPFLOW}",
                answered(endpoint, path, &resp)
            ));
        }
    }
    Ok(())
}
