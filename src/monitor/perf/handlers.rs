//! The performance endpoints. `api::app` merges [`routes`] into the monitor's router.

use super::{dashboard, metrics, optimize, recommend, slowlog};
use crate::monitor::api::{AppState, JsonBody};
use crate::monitor::error::ApiError;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

type St = State<Arc<AppState>>;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/performance/alerts", get(alerts))
        .route("/performance/recommendations", get(recommendations))
        .route("/performance/optimize", post(optimize_handler))
        .route("/performance/slow-queries", get(slow_queries))
        .route("/performance/dashboard", get(dashboard_page))
        .route("/performance/events", get(events))
        .route("/metrics", get(metrics_handler))
}

async fn alerts(State(state): St) -> Response {
    let perf = &state.perf;
    let (alerts, evaluated_at) = perf.alerts(&state.storage);
    Json(json!({
        "evaluated_at": evaluated_at,
        "window_s": perf.config.alerts.window_s,
        "min_requests": perf.config.alerts.min_requests,
        // Without the sampler only the gauges (WAL, RSS, queue, checkpoint lag) are judged.
        "instrumentation": perf.sampler_running(),
        "alerts": alerts,
        "thresholds": perf.config.alerts.rules,
    }))
    .into_response()
}

async fn recommendations(State(state): St) -> Result<Response, ApiError> {
    Ok(Json(recommend::derive(&state.storage, &state.perf).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OptimizeBody {
    actions: Vec<String>,
}

async fn optimize_handler(
    State(state): St,
    JsonBody(body): JsonBody<OptimizeBody>,
) -> Result<Response, ApiError> {
    optimize::check(&body.actions).map_err(ApiError::Unprocessable)?;
    Ok(Json(optimize::run(&state.storage, &body.actions).await?).into_response())
}

/// `?limit=N`, 1 to the ring's capacity; default 100.
fn parse_limit(raw: Option<&str>) -> Result<usize, ApiError> {
    let mut limit = 100;
    for (key, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if key == "limit" {
            limit = value
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=slowlog::CAPACITY).contains(l))
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "limit must be an integer from 1 to {}, got {value:?}",
                        slowlog::CAPACITY
                    ))
                })?;
        }
    }
    Ok(limit)
}

async fn slow_queries(State(state): St, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let limit = parse_limit(raw.as_deref())?;
    let body = match &state.perf.slowlog {
        Some(log) => json!({
            "enabled": true,
            "threshold_ms": log.threshold().as_secs_f64() * 1000.0,
            "capacity": slowlog::CAPACITY,
            "total": log.total(),
            "queries": log.recent(limit),
        }),
        None => json!({
            "enabled": false,
            "threshold_ms": null,
            "capacity": slowlog::CAPACITY,
            "total": 0,
            "queries": [],
            "hint": "start the monitor with --slow-query-ms MS to record statements slower than MS",
        }),
    };
    Ok(Json(body).into_response())
}

async fn metrics_handler(State(state): St) -> Response {
    let text = metrics::render(&state.perf, &state.storage);
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}

async fn dashboard_page() -> Response {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            // Nothing may leave the page: no script, style, image or connection elsewhere.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self'; img-src 'self' data:",
            ),
        ],
        Html(dashboard::PAGE),
    )
        .into_response()
}

/// Server-Sent Events: first the samples kept (`history`), then each new one (`sample`).
async fn events(State(state): St) -> Response {
    let perf = Arc::clone(&state.perf);
    let history = serde_json::to_string(&perf.history().iter().map(|s| &**s).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".into());
    let first = Event::default().event("history").data(history);
    let mut rx = perf.latest.subscribe();
    rx.mark_unchanged();
    let running = perf.sampler_running();
    let stream =
        futures_util::stream::unfold((Some(first), rx), move |(first, mut rx)| async move {
            if let Some(e) = first {
                return Some((Ok::<_, Infallible>(e), (None, rx)));
            }
            if !running {
                // No sampler: nothing will come; the keep-alive holds the stream open.
                std::future::pending::<()>().await;
            }
            rx.changed().await.ok()?;
            let sample = rx.borrow_and_update().clone();
            let data = serde_json::to_string(&sample.as_deref()).unwrap_or_else(|_| "null".into());
            Some((Ok(Event::default().event("sample").data(data)), (None, rx)))
        });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_query_limit_has_a_range() {
        assert_eq!(parse_limit(None).unwrap(), 100);
        assert_eq!(parse_limit(Some("limit=1")).unwrap(), 1);
        assert_eq!(parse_limit(Some("limit=1000")).unwrap(), 1000);
        for bad in ["limit=0", "limit=1001", "limit=-1", "limit=x", "limit="] {
            assert!(parse_limit(Some(bad)).is_err(), "{bad}");
        }
    }
}
