//! What the monitor's request instrumentation costs per request, in-process: the same router
//! (one trivial route) with and without the recording layer, driven through
//! `tower::ServiceExt::oneshot`, so the difference is the layer alone (matched-path lookup,
//! two clock reads, three relaxed atomic additions), next to nothing else.

use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion};
use std::sync::Arc;
use stepflow_bench::monitor::perf::instrument::{RecordLayer, RequestStats};
use tower::ServiceExt;

fn router(instrumented: bool) -> Router {
    let r = Router::new().route("/api/health", get(|| async { "ok" }));
    if instrumented {
        r.layer(RecordLayer(Arc::new(RequestStats::default())))
    } else {
        r
    }
}

fn instrument_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut g = c.benchmark_group("request_through_router");
    for (name, on) in [("bare", false), ("instrumented", true)] {
        let app = router(on);
        g.bench_function(name, |b| {
            b.iter(|| {
                let req = Request::get("/api/health").body(Body::empty()).unwrap();
                rt.block_on(app.clone().oneshot(req)).unwrap()
            })
        });
    }
    g.finish();
    c.bench_function("record_one_request", |b| {
        let stats = RequestStats::default();
        let route = RequestStats::route_index(Some("/api/executions/{id}"));
        b.iter(|| {
            let t = std::time::Instant::now();
            stats.record(route, 200, t.elapsed().as_nanos() as u64 + 250_000);
        })
    });
}

criterion_group!(benches, instrument_benches);
criterion_main!(benches);
