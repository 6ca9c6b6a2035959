//! Per-route request figures recorded on the hot path: one atomic histogram and status-class
//! counters per route, no lock anywhere. A request costs two clock reads and three relaxed
//! atomic additions.

use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// Values below this many microseconds each have a bucket of their own.
const LINEAR: usize = 16;
/// Sub-buckets per power of two above that: 8, so a bucket is at most 12.5 % wide.
const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;
/// Powers of two covered above LINEAR (2^4 µs to 2^40 µs, far past any request).
const POWERS: usize = 36;
/// Buckets of one histogram.
pub const BUCKETS: usize = LINEAR + POWERS * SUB;

/// The bucket of a latency, microseconds.
pub fn bucket_of(us: u64) -> usize {
    if us < LINEAR as u64 {
        return us as usize;
    }
    let e = 63 - us.leading_zeros(); // >= 4
    let sub = ((us >> (e - SUB_BITS)) as usize) & (SUB - 1);
    (LINEAR + (e as usize - 4) * SUB + sub).min(BUCKETS - 1)
}

/// The exclusive upper edge of a bucket, microseconds: every value counted in it is below.
pub fn bucket_upper_us(index: usize) -> u64 {
    if index < LINEAR {
        return index as u64 + 1;
    }
    let e = (index - LINEAR) / SUB + 4;
    let sub = (index - LINEAR) % SUB;
    ((SUB + sub + 1) as u64) << (e as u32 - SUB_BITS)
}

/// A latency histogram of atomics: cumulative since start.
pub struct AtomicHistogram {
    buckets: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
}

impl Default for AtomicHistogram {
    fn default() -> Self {
        AtomicHistogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }
}

impl AtomicHistogram {
    pub fn record_ns(&self, ns: u64) {
        self.buckets[bucket_of(ns / 1000)].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// A copy of the counts (not atomic as a whole; each bucket is exact).
    pub fn snapshot(&self) -> HistSnapshot {
        HistSnapshot {
            buckets: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            sum_ns: self.sum_ns.load(Ordering::Relaxed),
        }
    }
}

/// Counts per bucket, as of one moment; two of them subtract to the window between.
#[derive(Debug, Clone, PartialEq)]
pub struct HistSnapshot {
    pub buckets: Vec<u64>,
    pub sum_ns: u64,
}

impl HistSnapshot {
    pub fn empty() -> Self {
        HistSnapshot {
            buckets: vec![0; BUCKETS],
            sum_ns: 0,
        }
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// What was recorded after `earlier`.
    pub fn since(&self, earlier: &HistSnapshot) -> HistSnapshot {
        HistSnapshot {
            buckets: self
                .buckets
                .iter()
                .zip(&earlier.buckets)
                .map(|(a, b)| a.saturating_sub(*b))
                .collect(),
            sum_ns: self.sum_ns.saturating_sub(earlier.sum_ns),
        }
    }

    /// The upper edge, microseconds, of the bucket holding quantile `q` (0 when empty): the
    /// true value is below it and within 12.5 % of it.
    pub fn quantile_us(&self, q: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return bucket_upper_us(i);
            }
        }
        bucket_upper_us(BUCKETS - 1)
    }
}

/// The routes the monitor serves, by their axum path pattern; anything else is `other`
/// (a route added without being listed here) or `unmatched` (a 404 for no route).
pub const ROUTES: &[&str] = &[
    "/api/health",
    "/api/executions",
    "/api/executions/{id}",
    "/api/executions/{id}/steps",
    "/api/executions/{id}/steps/{index}",
    "/api/executions/{id}/steps/{index}/logs",
    "/api/executions/{id}/artifacts",
    "/api/ws",
    "/api/openapi.json",
    "/performance/stats",
    "/performance/alerts",
    "/performance/recommendations",
    "/performance/optimize",
    "/performance/slow-queries",
    "/performance/dashboard",
    "/performance/events",
    "/metrics",
    "other",
    "unmatched",
];

const OTHER: usize = ROUTES.len() - 2;
const UNMATCHED: usize = ROUTES.len() - 1;

/// Status classes counted per route: 1xx .. 5xx.
pub const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

#[derive(Default)]
pub struct RouteStats {
    pub latency: AtomicHistogram,
    pub status: [AtomicU64; 5],
}

/// Everything the middleware records.
pub struct RequestStats {
    pub routes: Vec<RouteStats>,
}

impl Default for RequestStats {
    fn default() -> Self {
        RequestStats {
            routes: ROUTES.iter().map(|_| RouteStats::default()).collect(),
        }
    }
}

impl RequestStats {
    pub fn route_index(path: Option<&str>) -> usize {
        match path {
            None => UNMATCHED,
            Some(p) => ROUTES[..OTHER]
                .iter()
                .position(|r| *r == p)
                .unwrap_or(OTHER),
        }
    }

    pub fn record(&self, route: usize, status: u16, ns: u64) {
        let r = &self.routes[route];
        r.latency.record_ns(ns);
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        r.status[class].fetch_add(1, Ordering::Relaxed);
    }

    /// Cumulative latency and status counts of every route.
    pub fn snapshot(&self) -> Vec<RouteSnapshot> {
        self.routes
            .iter()
            .map(|r| RouteSnapshot {
                latency: r.latency.snapshot(),
                status: std::array::from_fn(|i| r.status[i].load(Ordering::Relaxed)),
            })
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct RouteSnapshot {
    pub latency: HistSnapshot,
    pub status: [u64; 5],
}

impl RouteSnapshot {
    pub fn empty() -> Self {
        RouteSnapshot {
            latency: HistSnapshot::empty(),
            status: [0; 5],
        }
    }

    pub fn since(&self, earlier: &RouteSnapshot) -> RouteSnapshot {
        RouteSnapshot {
            latency: self.latency.since(&earlier.latency),
            status: std::array::from_fn(|i| self.status[i].saturating_sub(earlier.status[i])),
        }
    }

    pub fn requests(&self) -> u64 {
        self.status.iter().sum()
    }
}

/// The layer that times every request and counts it under its route and status class: a
/// plain tower service (no boxed future, no clone of the inner service per request), so a
/// request pays two clock reads and three relaxed atomic additions. SSE streams are counted
/// when their answer head is ready, not when they end.
#[derive(Clone)]
pub struct RecordLayer(pub Arc<RequestStats>);

impl<S> tower::Layer<S> for RecordLayer {
    type Service = Record<S>;
    fn layer(&self, inner: S) -> Record<S> {
        Record {
            inner,
            stats: Arc::clone(&self.0),
        }
    }
}

#[derive(Clone)]
pub struct Record<S> {
    inner: S,
    stats: Arc<RequestStats>,
}

impl<S> tower::Service<Request> for Record<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Recorded<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let route =
            RequestStats::route_index(req.extensions().get::<MatchedPath>().map(|m| m.as_str()));
        Recorded {
            inner: self.inner.call(req),
            stats: Arc::clone(&self.stats),
            route,
            started: Instant::now(),
        }
    }
}

pin_project_lite::pin_project! {
    pub struct Recorded<F> {
        #[pin]
        inner: F,
        stats: Arc<RequestStats>,
        route: usize,
        started: Instant,
    }
}

impl<F, E> Future for Recorded<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        if let Ok(response) = &out {
            let ns = u64::try_from(this.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            this.stats
                .record(*this.route, response.status().as_u16(), ns);
        }
        Poll::Ready(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_below_its_bucket_edge_and_within_an_eighth() {
        for us in (0..5000u64).chain([65_535, 65_536, 1_000_000, 59_999_999, u64::MAX / 2]) {
            let b = bucket_of(us);
            let upper = bucket_upper_us(b);
            if b < BUCKETS - 1 {
                assert!(us < upper, "{us} in bucket {b} with upper {upper}");
                assert!(
                    upper as f64 <= (us as f64 + 1.0) * 1.125 + 1.0,
                    "{us}: {upper}"
                );
            }
            if b > 0 && b < BUCKETS - 1 {
                assert!(
                    us >= bucket_upper_us(b - 1),
                    "{us} below bucket {b}'s floor"
                );
            }
        }
    }

    #[test]
    fn quantiles_and_windows() {
        let h = AtomicHistogram::default();
        for _ in 0..99 {
            h.record_ns(100_000); // 100 µs
        }
        let before = h.snapshot();
        h.record_ns(50_000_000); // 50 ms
        let after = h.snapshot();
        assert_eq!(after.count(), 100);
        assert!((100..=113).contains(&after.quantile_us(0.5)));
        assert!((100..=113).contains(&after.quantile_us(0.99)));
        assert!((50_000..=56_250).contains(&after.quantile_us(1.0)));
        let window = after.since(&before);
        assert_eq!(window.count(), 1);
        assert!((50_000..=56_250).contains(&window.quantile_us(0.5)));
        assert_eq!(HistSnapshot::empty().quantile_us(0.99), 0);
    }

    #[test]
    fn routes_are_counted_by_pattern_and_class() {
        let s = RequestStats::default();
        let get = RequestStats::route_index(Some("/api/executions/{id}"));
        assert_eq!(ROUTES[get], "/api/executions/{id}");
        assert_eq!(ROUTES[RequestStats::route_index(Some("/new"))], "other");
        assert_eq!(ROUTES[RequestStats::route_index(None)], "unmatched");
        s.record(get, 200, 1000);
        s.record(get, 404, 1000);
        s.record(get, 503, 1000);
        let snap = &s.snapshot()[get];
        assert_eq!(snap.status, [0, 1, 0, 1, 1]);
        assert_eq!(snap.requests(), 3);
    }
}
