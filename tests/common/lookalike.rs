//! A StepFlow-shaped service written apart from the monitor, the way another team (or the
//! Python service of the write-up) would: in memory, ids as 32-character hex strings that say
//! nothing about creation order, `created_at` to the second only, a list capped at 100 per
//! page, list rows without step counts, artifact lists without contents. It implements the
//! API table of DESIGN.md and nothing of `src/monitor`.
//!
//! It can also be told to lose writes: acknowledge every Nth create or log append with a
//! success and keep nothing, so that the generator's read-back has something to find.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Which acknowledged writes the service throws away (0: none).
#[derive(Debug, Clone, Copy, Default)]
pub struct Drops {
    /// Every Nth create is answered 201 with an id, and not stored.
    pub every_nth_create: u64,
    /// Every Nth log append is answered 201, and its lines not stored.
    pub every_nth_append: u64,
}

#[derive(Default)]
struct Step {
    name: String,
    status: String,
    logs: Vec<(String, String)>,
}

struct Execution {
    id: String,
    name: String,
    status: String,
    created_at: String,
    steps: Vec<Step>,
    artifacts: Vec<(String, String)>,
}

impl Execution {
    fn summary(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "created_at": self.created_at,
        })
    }

    fn detail(&self) -> Value {
        let mut v = self.summary();
        v["steps"] = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| json!({"index": i, "name": s.name, "status": s.status}))
            .collect();
        v
    }
}

#[derive(Default)]
struct Store {
    executions: HashMap<String, Execution>,
}

/// Everything the handlers share; counters are public to the test.
#[derive(Default)]
pub struct Shared {
    store: Mutex<Store>,
    drops: Drops,
    creates: AtomicU64,
    appends: AtomicU64,
    /// Creates acknowledged but not stored.
    pub dropped_creates: AtomicU64,
    /// Log appends acknowledged but not stored.
    pub dropped_appends: AtomicU64,
    /// Requests of any kind that were not GETs.
    pub writes: AtomicU64,
    /// Requests that came over HTTP/1.x and over HTTP/2.
    pub http1_requests: AtomicU64,
    pub http2_requests: AtomicU64,
}

type S = State<Arc<Shared>>;

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not found")
}

const STATUSES: [&str; 5] = ["pending", "running", "completed", "failed", "cancelled"];

/// 32 hex characters from a counter, scrambled (SplitMix64): unique, in no order.
fn hex_id(n: u64) -> String {
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    format!("{:016x}{:016x}", mix(n), mix(n ^ 0xDEAD_BEEF))
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string()
}

#[derive(Deserialize)]
struct NewExecution {
    name: String,
}

#[derive(Deserialize)]
struct NewStatus {
    status: String,
}

#[derive(Deserialize)]
struct NewStep {
    name: String,
}

#[derive(Deserialize)]
struct NewLines {
    lines: Vec<String>,
}

#[derive(Deserialize)]
struct NewArtifact {
    name: String,
    content: String,
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<usize>,
    offset: Option<usize>,
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok", "service": "lookalike"}))
}

async fn create(State(s): S, Json(new): Json<NewExecution>) -> Response {
    s.writes.fetch_add(1, Ordering::Relaxed);
    if new.name.trim().is_empty() {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "name must not be empty");
    }
    let n = s.creates.fetch_add(1, Ordering::Relaxed) + 1;
    let e = Execution {
        id: hex_id(n),
        name: new.name,
        status: "pending".into(),
        created_at: now(),
        steps: Vec::new(),
        artifacts: Vec::new(),
    };
    let body = e.summary();
    let every = s.drops.every_nth_create;
    if every > 0 && n % every == 0 {
        s.dropped_creates.fetch_add(1, Ordering::Relaxed);
    } else {
        s.store.lock().unwrap().executions.insert(e.id.clone(), e);
    }
    (StatusCode::CREATED, Json(body)).into_response()
}

async fn list(State(s): S, Query(q): Query<ListQuery>) -> Response {
    let limit = q.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit must be between 1 and 100",
        );
    }
    let store = s.store.lock().unwrap();
    let mut all: Vec<&Execution> = store.executions.values().collect();
    // Newest first by a timestamp of whole seconds; ties in id order, which is no order.
    all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
    let page: Vec<Value> = all
        .iter()
        .skip(q.offset.unwrap_or(0))
        .take(limit)
        .map(|e| e.summary())
        .collect();
    Json(json!({"executions": page, "total": all.len()})).into_response()
}

async fn get_one(State(s): S, Path(id): Path<String>) -> Response {
    match s.store.lock().unwrap().executions.get(&id) {
        Some(e) => Json(e.detail()).into_response(),
        None => not_found(),
    }
}

async fn update(State(s): S, Path(id): Path<String>, Json(new): Json<NewStatus>) -> Response {
    s.writes.fetch_add(1, Ordering::Relaxed);
    if !STATUSES.contains(&new.status.as_str()) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "unknown status");
    }
    let mut store = s.store.lock().unwrap();
    let Some(e) = store.executions.get_mut(&id) else {
        return not_found();
    };
    e.status = new.status;
    Json(e.summary()).into_response()
}

async fn add_step(State(s): S, Path(id): Path<String>, Json(new): Json<NewStep>) -> Response {
    s.writes.fetch_add(1, Ordering::Relaxed);
    let mut store = s.store.lock().unwrap();
    let Some(e) = store.executions.get_mut(&id) else {
        return not_found();
    };
    e.steps.push(Step {
        name: new.name.clone(),
        status: "pending".into(),
        logs: Vec::new(),
    });
    let index = e.steps.len() - 1;
    let body = json!({"index": index, "name": new.name, "status": "pending"});
    (StatusCode::CREATED, Json(body)).into_response()
}

fn with_step<T>(s: &Shared, id: &str, index: usize, f: impl FnOnce(&mut Step) -> T) -> Option<T> {
    let mut store = s.store.lock().unwrap();
    store
        .executions
        .get_mut(id)
        .and_then(|e| e.steps.get_mut(index))
        .map(f)
}

async fn update_step(
    State(s): S,
    Path((id, index)): Path<(String, usize)>,
    Json(new): Json<NewStatus>,
) -> Response {
    s.writes.fetch_add(1, Ordering::Relaxed);
    if !STATUSES.contains(&new.status.as_str()) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "unknown status");
    }
    match with_step(&s, &id, index, |step| step.status = new.status) {
        Some(()) => Json(json!({"index": index})).into_response(),
        None => not_found(),
    }
}

async fn append_logs(
    State(s): S,
    Path((id, index)): Path<(String, usize)>,
    Json(new): Json<NewLines>,
) -> Response {
    s.writes.fetch_add(1, Ordering::Relaxed);
    let n = s.appends.fetch_add(1, Ordering::Relaxed) + 1;
    let every = s.drops.every_nth_append;
    let drop_it = every > 0 && n % every == 0;
    let appended = with_step(&s, &id, index, |step| {
        if !drop_it {
            let ts = now();
            step.logs
                .extend(new.lines.iter().map(|l| (ts.clone(), l.clone())));
        }
    });
    match appended {
        Some(()) => {
            if drop_it {
                s.dropped_appends.fetch_add(1, Ordering::Relaxed);
            }
            (
                StatusCode::CREATED,
                Json(json!({"appended": new.lines.len()})),
            )
                .into_response()
        }
        None => not_found(),
    }
}

async fn get_logs(State(s): S, Path((id, index)): Path<(String, usize)>) -> Response {
    let lines = with_step(&s, &id, index, |step| {
        step.logs
            .iter()
            .map(|(t, c)| json!({"timestamp": t, "content": c}))
            .collect::<Vec<_>>()
    });
    match lines {
        Some(lines) => Json(json!({ "lines": lines })).into_response(),
        None => not_found(),
    }
}

async fn add_artifact(
    State(s): S,
    Path(id): Path<String>,
    Json(new): Json<NewArtifact>,
) -> Response {
    s.writes.fetch_add(1, Ordering::Relaxed);
    let mut store = s.store.lock().unwrap();
    let Some(e) = store.executions.get_mut(&id) else {
        return not_found();
    };
    e.artifacts.push((new.name.clone(), new.content));
    (StatusCode::CREATED, Json(json!({"name": new.name}))).into_response()
}

async fn list_artifacts(State(s): S, Path(id): Path<String>) -> Response {
    let store = s.store.lock().unwrap();
    let Some(e) = store.executions.get(&id) else {
        return not_found();
    };
    // Names and sizes only, as a service that keeps contents on disk might answer.
    let artifacts: Vec<Value> = e
        .artifacts
        .iter()
        .map(|(n, c)| json!({"name": n, "size": c.len()}))
        .collect();
    Json(json!({ "artifacts": artifacts })).into_response()
}

/// Counts each request by HTTP version.
async fn count_version(
    State(s): S,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if request.version() == axum::http::Version::HTTP_2 {
        s.http2_requests.fetch_add(1, Ordering::Relaxed);
    } else {
        s.http1_requests.fetch_add(1, Ordering::Relaxed);
    }
    next.run(request).await
}

/// The service's routes over `shared`.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/health", get(health))
        .route("/api/executions", get(list).post(create))
        .route("/api/executions/{id}", get(get_one).patch(update))
        .route("/api/executions/{id}/steps", axum::routing::post(add_step))
        .route(
            "/api/executions/{id}/steps/{index}",
            axum::routing::patch(update_step),
        )
        .route(
            "/api/executions/{id}/steps/{index}/logs",
            get(get_logs).post(append_logs),
        )
        .route(
            "/api/executions/{id}/artifacts",
            get(list_artifacts).post(add_artifact),
        )
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            count_version,
        ))
        .with_state(shared)
}

/// The service running on 127.0.0.1, port 0, on a runtime of its own; it stops when the
/// test process ends.
pub struct Lookalike {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    https: bool,
}

impl Lookalike {
    /// Over plain HTTP (HTTP/1.1, or HTTP/2 to a client that starts with its preface).
    pub fn start(drops: Drops) -> Lookalike {
        Lookalike::start_with(drops, None)
    }

    /// Over TLS with `tls`, when given (see `common::tls`).
    pub fn start_with(drops: Drops, tls: Option<Arc<rustls::ServerConfig>>) -> Lookalike {
        let shared = Arc::new(Shared {
            drops,
            ..Shared::default()
        });
        let app = router(Arc::clone(&shared));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("local addr");
        let https = tls.is_some();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                match tls {
                    Some(config) => {
                        let listener = super::tls::TlsListener::new(listener, config);
                        axum::serve(listener, app).await.expect("serve TLS");
                    }
                    None => axum::serve(listener, app).await.expect("serve"),
                }
            });
        });
        Lookalike {
            addr,
            shared,
            https,
        }
    }

    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Executions stored now.
    pub fn stored(&self) -> usize {
        self.shared.store.lock().unwrap().executions.len()
    }
}
