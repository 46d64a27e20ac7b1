//! Request counts by route and status and a latency histogram per route, in the Prometheus text
//! format (`GET /metrics`).

use super::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Upper bounds (seconds) of the latency histogram's buckets.
const BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// What the server has answered since it started.
pub struct Metrics {
    started: Instant,
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Empty metrics.
    pub fn new() -> Metrics {
        Metrics { started: Instant::now(), requests: Mutex::new(BTreeMap::new()), latency: Mutex::new(BTreeMap::new()) }
    }

    fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        *self.requests.lock().unwrap_or_else(|e| e.into_inner()).entry((method.to_string(), route.to_string(), status)).or_default() += 1;
        let mut latency = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let h = latency.entry(route.to_string()).or_default();
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// The metrics in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP tracehound_http_requests_total HTTP requests answered, by method, route and status.");
        let _ = writeln!(out, "# TYPE tracehound_http_requests_total counter");
        for ((method, route, status), n) in self.requests.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "tracehound_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}", escape(method), escape(route));
        }
        let _ = writeln!(out, "# HELP tracehound_http_request_duration_seconds Time to answer a request, by route.");
        let _ = writeln!(out, "# TYPE tracehound_http_request_duration_seconds histogram");
        for (route, h) in self.latency.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let route = escape(route);
            for (i, le) in BUCKETS.iter().enumerate() {
                let _ = writeln!(out, "tracehound_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {}", h.counts[i]);
            }
            let _ = writeln!(out, "tracehound_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "tracehound_http_request_duration_seconds_sum{{route=\"{route}\"}} {}", h.sum);
            let _ = writeln!(out, "tracehound_http_request_duration_seconds_count{{route=\"{route}\"}} {}", h.count);
        }
        let _ = writeln!(out, "# HELP tracehound_uptime_seconds Seconds since the server started.");
        let _ = writeln!(out, "# TYPE tracehound_uptime_seconds gauge");
        let _ = writeln!(out, "tracehound_uptime_seconds {}", self.started.elapsed().as_secs_f64());
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Counts each request under its route template (`/v1/chains/{chain}/addresses/{address}`, so
/// addresses do not become labels; `unmatched` for unknown paths) and, with `-v`, logs it on
/// standard error: method, path, status, time and key id, never a header.
pub async fn record(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let res = next.run(req).await;
    let seconds = started.elapsed().as_secs_f64();
    state.metrics.record(&method, &route, res.status().as_u16(), seconds);
    if state.access_log {
        let key = res.extensions().get::<super::auth::Caller>().map(|c| format!(" key {}", c.id)).unwrap_or_default();
        eprintln!("{method} {path} {} {:.1} ms{key}", res.status().as_u16(), seconds * 1e3);
    }
    res
}
