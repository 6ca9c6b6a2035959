//! The monitor's HTTP API: routes, request parsing and validation, JSON responses.

use super::error::{ApiError, ErrorBody};
use super::model::{
    Artifact, Execution, ExecutionPage, ListQuery, LogLine, NewExecution, Status, Step,
};
use super::openapi::{
    BadRequestError, BodyErrors, Conventions, NotFoundError, ProtocolErrors, ServiceErrors,
    WriteErrors,
};
use super::process;
use super::storage::{Profile, Storage};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{
    DefaultBodyLimit, FromRequest, FromRequestParts, Path, RawQuery, Request, State,
};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};
use utoipa::{IntoParams, OpenApi, ToSchema};

/// Largest request body accepted, bytes.
mod extract;
mod steps;

use extract::*;
pub use extract::{require_host, JsonBody, PathParams, MAX_NAME_CHARS, NAME_PATTERN};
use steps::*;

pub const BODY_LIMIT_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub storage: Storage,
    pub started: Instant,
    /// Longest a handler waits for the whole request body.
    pub body_timeout: Duration,
    /// The performance tools (request figures, sampler, alerts, slow-query log).
    pub perf: Arc<super::perf::Perf>,
}

impl AppState {
    pub fn new(storage: Storage) -> Arc<AppState> {
        AppState::with_body_timeout(storage, super::server::Timeouts::default().read)
    }

    pub fn with_body_timeout(storage: Storage, body_timeout: Duration) -> Arc<AppState> {
        AppState::with_perf(storage, body_timeout, Arc::default())
    }

    pub fn with_perf(
        storage: Storage,
        body_timeout: Duration,
        perf: Arc<super::perf::Perf>,
    ) -> Arc<AppState> {
        Arc::new(AppState {
            storage,
            started: Instant::now(),
            body_timeout,
            perf,
        })
    }
}

type AppResult<T> = Result<T, ApiError>;
type St = State<Arc<AppState>>;

pub fn app(state: Arc<AppState>) -> Router {
    let requests = state.perf.requests.clone();
    let router = Router::new()
        .route("/api/health", get(health))
        .route("/api/openapi.json", get(openapi_json))
        .route(
            "/api/executions",
            post(create_execution).get(list_executions),
        )
        .route(
            "/api/executions/{id}",
            get(get_execution).patch(update_status),
        )
        .route("/api/executions/{id}/steps", post(add_step))
        .route("/api/executions/{id}/steps/{index}", patch(update_step))
        .route(
            "/api/executions/{id}/steps/{index}/logs",
            post(append_logs).get(read_logs),
        )
        .route(
            "/api/executions/{id}/artifacts",
            post(add_artifact).get(list_artifacts),
        )
        .route("/api/ws", get(super::ws::handler))
        .route("/performance/stats", get(performance_stats))
        .merge(super::perf::handlers::routes())
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(middleware::from_fn(only_chunked));
    // Outermost, so that every answer is timed and counted, refusals included.
    let router = match requests {
        Some(r) => router.layer(super::perf::instrument::RecordLayer(r)),
        None => router,
    };
    router.with_state(state)
}

/// The service is up.
#[derive(Serialize, ToSchema)]
struct Health {
    status: HealthStatus,
    /// The monitor's version.
    version: &'static str,
    /// Seconds since the service started.
    #[schema(minimum = 0)]
    uptime_s: f64,
    profile: ProfileName,
    /// SQLite's journal mode: `wal` (optimized) or `delete` (legacy).
    journal_mode: String,
}

/// Liveness and what the service runs with.
#[utoipa::path(
    get,
    path = "/api/health",
    tag = "service",
    responses(
        (status = 200, description = "The service is up", body = Health),
        BadRequestError,
        ProtocolErrors,
    )
)]
async fn health(State(state): St) -> Json<Health> {
    Json(Health {
        status: HealthStatus::Ok,
        version: env!("CARGO_PKG_VERSION"),
        uptime_s: state.started.elapsed().as_secs_f64(),
        profile: match state.storage.profile() {
            Profile::Optimized => ProfileName::Optimized,
            Profile::Legacy => ProfileName::Legacy,
        },
        journal_mode: state.storage.journal_mode().to_string(),
    })
}

/// A new execution.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateExecution {
    /// Not empty nor only white space, at most 1024 characters.
    #[schema(
        min_length = 1,
        max_length = 1024,
        pattern = r"[^\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    name: String,
    /// The command line that runs the script, if any.
    #[serde(default)]
    command: Option<String>,
    /// Any JSON object (or null, for none), kept as sent and served verbatim: numbers keep
    /// their digits, keys their order. A number beyond the range of a double is refused (400).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    metadata: Option<Box<serde_json::value::RawValue>>,
}

/// Records a new execution, status `pending`.
#[utoipa::path(
    post,
    path = "/api/executions",
    tag = "executions",
    request_body = CreateExecution,
    responses(
        (status = 201, description = "Created and committed", body = Execution),
        BadRequestError,
        BodyErrors,
        WriteErrors,
        ServiceErrors,
        ProtocolErrors,
    )
)]
async fn create_execution(
    State(state): St,
    JsonBody(body): JsonBody<CreateExecution>,
) -> AppResult<Response> {
    check_name(&body.name, "name")?;
    let metadata = body.metadata.map(|raw| raw.get().to_owned());
    if let Some(text) = &metadata {
        // Parsed only to be judged: an object, and nothing common parsers refuse (a number
        // beyond any float, a lone surrogate), as before the text was kept.
        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text).map_err(|e| {
            ApiError::BadRequest(format!(
                "invalid field in request body: metadata must be a JSON object: {e}"
            ))
        })?;
    }
    let new = NewExecution {
        name: body.name,
        command: body.command,
        metadata,
    };
    let execution = state.storage.create_execution(new).await?;
    Ok((StatusCode::CREATED, Json(execution)).into_response())
}

fn parse_list_query(raw: Option<&str>) -> AppResult<ListQuery> {
    let mut q = ListQuery::default();
    let Some(raw) = raw else { return Ok(q) };
    // Decoded as a form is: `+` is a space, `%XX` a byte; bytes that are not UTF-8 become
    // U+FFFD, which no value accepts, so they are refused with the value shown.
    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        let value = value.as_ref();
        match key.as_ref() {
            "limit" => {
                q.limit = value
                    .parse()
                    .ok()
                    .filter(|l| (1..=1000).contains(l))
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "limit must be an integer from 1 to 1000, got {value:?}"
                        ))
                    })?;
            }
            "offset" => {
                q.offset = value.parse().map_err(|_| {
                    ApiError::BadRequest(format!(
                        "offset must be a non-negative integer, got {value:?}"
                    ))
                })?;
            }
            "status" => {
                q.status = Some(value.parse().map_err(|e: super::model::UnknownStatus| {
                    ApiError::BadRequest(e.to_string())
                })?);
            }
            // Unknown parameters are ignored, as most HTTP APIs do, so cache-busters pass.
            _ => {}
        }
    }
    Ok(q)
}

/// Lists executions, newest first, a page at a time.
///
/// Query values are percent-decoded as a form is (`+` is a space); unknown parameters are
/// ignored.
#[utoipa::path(
    get,
    path = "/api/executions",
    tag = "executions",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000,
            description = "Page size, 1 to 1000; 50 when absent"),
        ("offset" = Option<u64>, Query, minimum = 0, maximum = 18446744073709551615_usize,
            description = "Executions to skip, newest first; 0 when absent"),
        ("status" = Option<Status>, Query, description = "Only executions with this status"),
    ),
    responses(
        (status = 200, description = "One page, and how many match in all", body = ExecutionPage),
        BadRequestError,
        ServiceErrors,
        ProtocolErrors,
    )
)]
async fn list_executions(
    State(state): St,
    RawQuery(raw): RawQuery,
) -> AppResult<Json<ExecutionPage>> {
    let q = parse_list_query(raw.as_deref())?;
    Ok(Json(state.storage.list_executions(q).await?))
}

/// One execution with its steps.
#[utoipa::path(
    get,
    path = "/api/executions/{id}",
    tag = "executions",
    params(ExecutionPath),
    responses(
        (status = 200, description = "The execution, with its `steps` array", body = Execution),
        BadRequestError,
        NotFoundError,
        ServiceErrors,
        ProtocolErrors,
    )
)]
async fn get_execution(
    State(state): St,
    PathParams(id): PathParams<String>,
) -> AppResult<Json<Execution>> {
    let id = parse_id(&id, "execution id")?;
    Ok(Json(state.storage.get_execution(id).await?))
}

/// The service's own figures: DB operation latencies, group commit, WAL, RSS, CPU time.
#[utoipa::path(
    get,
    path = "/performance/stats",
    tag = "performance",
    responses(
        (status = 200, description = "A JSON object of the service's figures; its fields are \
            listed in README.md and may grow", body = Object),
        BadRequestError,
        ProtocolErrors,
    )
)]
async fn performance_stats(State(state): St) -> Response {
    let db = state.storage.stats();
    let usage = process::usage();
    Json(serde_json::json!({
        "uptime_s": state.started.elapsed().as_secs_f64(),
        "profile": state.storage.profile().as_str(),
        "journal_mode": state.storage.journal_mode(),
        "db": db.operations,
        "group_commit": db.group_commit,
        "writer_queue_depth": db.writer_queue_depth,
        "wal_bytes": state.storage.wal_bytes(),
        "wal": db.wal,
        "rss_bytes": usage.rss_bytes,
        "rss_peak_bytes": usage.rss_peak_bytes,
        "rss_anon_bytes": usage.rss_anon_bytes,
        "rss_file_bytes": usage.rss_file_bytes,
        "cpu_user_s": usage.cpu_user_s,
        "cpu_system_s": usage.cpu_system_s,
        "cpu_s": usage.cpu_user_s + usage.cpu_system_s,
        "websocket": state.storage.events().stats(),
    }))
    .into_response()
}

/// The API as an OpenAPI 3.1 document (this document).
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "service",
    responses(
        (status = 200, description = "This document; `schema/openapi.json` in the repository \
            is a copy of it", body = Object),
        BadRequestError,
        ProtocolErrors,
    )
)]
async fn openapi_json() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        super::openapi::document(),
    )
        .into_response()
}

/// Every route of [`app`], described from the handlers' own annotations and types. A route
/// added to the router must be added here too: `tests/openapi.rs` checks that each path the
/// spec lists answers every method it documents, and that each path's `Allow` header names
/// no other method.
#[derive(OpenApi)]
#[openapi(
    paths(
        health,
        openapi_json,
        create_execution,
        list_executions,
        get_execution,
        update_status,
        add_step,
        update_step,
        append_logs,
        read_logs,
        add_artifact,
        list_artifacts,
        performance_stats,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Conventions),
    tags(
        (name = "service", description = "Liveness and this document"),
        (name = "executions", description = "Recorded script executions"),
        (name = "steps", description = "An execution's steps and their logs"),
        (name = "artifacts", description = "Named text attached to an execution"),
        (name = "performance", description = "The service's own performance figures"),
    )
)]
pub struct ApiDoc;
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_query_accepts_bounds_and_rejects_bad_values() {
        let q = parse_list_query(Some("limit=1000&offset=20&status=running&x=1")).unwrap();
        assert_eq!(q.limit, 1000);
        assert_eq!(q.offset, 20);
        assert_eq!(q.status, Some(Status::Running));
        assert_eq!(parse_list_query(None).unwrap(), ListQuery::default());
        for bad in [
            "limit=0",
            "limit=1001",
            "limit=ten",
            "offset=-1",
            "status=done",
            "limit=",
        ] {
            assert!(
                matches!(parse_list_query(Some(bad)), Err(ApiError::BadRequest(_))),
                "{bad} should be rejected"
            );
        }
    }

    #[test]
    fn json_content_types() {
        for yes in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
            " application/json ;q=1",
        ] {
            assert!(is_json_type(&HeaderValue::from_static(yes)), "{yes}");
        }
        for no in [
            "text/plain",
            "text/json",
            "application/x-www-form-urlencoded",
            "application/+json",
            "application",
            "",
        ] {
            assert!(!is_json_type(&HeaderValue::from_static(no)), "{no}");
        }
        assert!(!is_json_type(
            &HeaderValue::from_bytes(b"application/json\xff").unwrap()
        ));
    }

    #[test]
    fn only_chunked_is_a_known_transfer_coding() {
        let codings = |values: &[&'static str]| {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append(header::TRANSFER_ENCODING, HeaderValue::from_static(v));
            }
            unknown_transfer_coding(&headers)
        };
        assert_eq!(codings(&[]), None);
        assert_eq!(codings(&["chunked"]), None);
        assert_eq!(codings(&["Chunked"]), None);
        assert_eq!(codings(&["gzip, chunked"]).as_deref(), Some("gzip"));
        assert_eq!(codings(&["deflate", "chunked"]).as_deref(), Some("deflate"));
        assert_eq!(codings(&["chunked;x=1"]).as_deref(), Some("chunked;x=1"));
        assert_eq!(codings(&["identity"]).as_deref(), Some("identity"));
    }

    #[test]
    fn list_query_values_are_percent_decoded() {
        let q = parse_list_query(Some("limit=%31%30&status=%70ending&offset=+2")).unwrap_err();
        assert!(
            matches!(q, ApiError::BadRequest(_)),
            "a space is not a number"
        );
        let q = parse_list_query(Some("limit=%31%30&status=%70ending")).unwrap();
        assert_eq!((q.limit, q.status), (10, Some(Status::Pending)));
        assert!(parse_list_query(Some("status=%FF")).is_err());
    }

    /// The characters of a bracket expression `[^...]` as `NAME_PATTERN` writes it.
    fn pattern_class(pattern: &str) -> Vec<(char, char)> {
        let class = pattern
            .strip_prefix("[^")
            .and_then(|s| s.strip_suffix(']'))
            .expect("a negated bracket expression");
        let mut chars = class.chars().peekable();
        let atom = |chars: &mut std::iter::Peekable<std::str::Chars>| -> char {
            match chars.next().unwrap() {
                '\\' => match chars.next().unwrap() {
                    't' => '\t',
                    'n' => '\n',
                    'v' => '\u{b}',
                    'f' => '\u{c}',
                    'r' => '\r',
                    'u' => {
                        let hex: String = chars.by_ref().take(4).collect();
                        char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap()
                    }
                    other => panic!("unexpected escape \\{other}"),
                },
                c => c,
            }
        };
        let mut ranges = Vec::new();
        while chars.peek().is_some() {
            let first = atom(&mut chars);
            if chars.peek() == Some(&'-') {
                chars.next();
                ranges.push((first, atom(&mut chars)));
            } else {
                ranges.push((first, first));
            }
        }
        ranges
    }

    #[test]
    fn name_pattern_is_what_check_name_refuses() {
        let class = pattern_class(NAME_PATTERN);
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let in_class = class.iter().any(|&(a, b)| (a..=b).contains(&c));
            assert_eq!(in_class, c.is_whitespace(), "U+{:04X}", c as u32);
            assert_eq!(
                check_name(&c.to_string(), "name").is_err(),
                in_class,
                "U+{:04X}",
                c as u32
            );
        }
    }

    #[test]
    fn names_are_limited_in_characters_not_bytes() {
        assert!(check_name(&"é".repeat(MAX_NAME_CHARS), "name").is_ok());
        assert!(check_name(&"é".repeat(MAX_NAME_CHARS + 1), "name").is_err());
        assert!(check_name(&"x".repeat(MAX_NAME_CHARS + 1), "name").is_err());
    }

    #[test]
    fn ids_must_be_non_negative_integers() {
        assert_eq!(parse_id("42", "id").unwrap(), 42);
        for bad in ["-1", "abc", "1.5", "", "99999999999999999999"] {
            assert!(parse_id(bad, "id").is_err(), "{bad}");
        }
    }
}
