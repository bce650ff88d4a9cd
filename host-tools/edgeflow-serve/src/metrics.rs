//! Server metrics in the Prometheus text exposition format (version 0.0.4), for
//! `GET /metrics`.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `edgeflow_requests_total` | counter | `route`, `code` |
//! | `edgeflow_request_errors_total` | counter | `route` (every 4xx/5xx answer) |
//! | `edgeflow_request_duration_seconds` | histogram | `route` |
//! | `edgeflow_inferences_total` | counter | |
//! | `edgeflow_requests_in_flight` | gauge | |
//! | `edgeflow_requests_in_flight_peak` | gauge (most at once since start) | |
//! | `edgeflow_model_reloads_total` | counter | `result` = `ok` / `refused` |
//! | `edgeflow_model_info` | gauge (1) | `model_hash` |

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency histogram buckets, in seconds (`+Inf` is implied).
pub const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default, Clone)]
struct Hist {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, u16), u64>,
    errors: BTreeMap<String, u64>,
    latency: BTreeMap<String, Hist>,
}

/// Counters shared by every request handler. All methods are cheap and never panic (a
/// poisoned lock is recovered: counters stay counters).
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    inferences: AtomicU64,
    in_flight: AtomicI64,
    in_flight_peak: AtomicI64,
    reloads_ok: AtomicU64,
    reloads_refused: AtomicU64,
    model_hash: AtomicU64,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one finished request on `route` with status `code`, taking `took`.
    pub fn request(&self, route: &str, code: u16, took: Duration) {
        let mut g = self.lock();
        *g.requests.entry((route.to_string(), code)).or_default() += 1;
        if code >= 400 {
            *g.errors.entry(route.to_string()).or_default() += 1;
        }
        let h = g.latency.entry(route.to_string()).or_default();
        let s = took.as_secs_f64();
        for (c, &b) in h.counts.iter_mut().zip(BUCKETS.iter()) {
            if s <= b {
                *c += 1;
            }
        }
        h.count += 1;
        h.sum += s;
    }

    /// Counts `n` inferences.
    pub fn inferences(&self, n: u64) {
        self.inferences.fetch_add(n, Ordering::Relaxed);
    }

    /// A request started (+1) or finished (−1).
    pub fn in_flight(&self, delta: i64) {
        let now = self.in_flight.fetch_add(delta, Ordering::Relaxed) + delta;
        self.in_flight_peak.fetch_max(now, Ordering::Relaxed);
    }

    /// Counts a model reload attempt.
    pub fn reload(&self, ok: bool) {
        if ok {
            self.reloads_ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.reloads_refused.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records the served model's hash (for `edgeflow_model_info`).
    pub fn set_model(&self, hash: u32) {
        self.model_hash.store(u64::from(hash), Ordering::Relaxed);
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let g = self.lock();
        let mut o = String::new();
        // `write!` to a String cannot fail.
        let _ = writeln!(
            o,
            "# HELP edgeflow_requests_total HTTP requests answered, by route and status code."
        );
        let _ = writeln!(o, "# TYPE edgeflow_requests_total counter");
        for ((route, code), n) in &g.requests {
            let _ = writeln!(
                o,
                "edgeflow_requests_total{{route=\"{route}\",code=\"{code}\"}} {n}"
            );
        }
        let _ = writeln!(
            o,
            "# HELP edgeflow_request_errors_total Requests answered with a 4xx or 5xx status."
        );
        let _ = writeln!(o, "# TYPE edgeflow_request_errors_total counter");
        for (route, n) in &g.errors {
            let _ = writeln!(o, "edgeflow_request_errors_total{{route=\"{route}\"}} {n}");
        }
        let _ = writeln!(
            o,
            "# HELP edgeflow_request_duration_seconds Time from request to response head."
        );
        let _ = writeln!(o, "# TYPE edgeflow_request_duration_seconds histogram");
        for (route, h) in &g.latency {
            for (c, b) in h.counts.iter().zip(BUCKETS.iter()) {
                let _ = writeln!(
                    o,
                    "edgeflow_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {c}"
                );
            }
            let _ = writeln!(
                o,
                "edgeflow_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                o,
                "edgeflow_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                o,
                "edgeflow_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        let _ = writeln!(o, "# HELP edgeflow_inferences_total Model invocations.");
        let _ = writeln!(o, "# TYPE edgeflow_inferences_total counter");
        let _ = writeln!(
            o,
            "edgeflow_inferences_total {}",
            self.inferences.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP edgeflow_requests_in_flight Requests being handled now."
        );
        let _ = writeln!(o, "# TYPE edgeflow_requests_in_flight gauge");
        let _ = writeln!(
            o,
            "edgeflow_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP edgeflow_requests_in_flight_peak Most requests handled at once since start."
        );
        let _ = writeln!(o, "# TYPE edgeflow_requests_in_flight_peak gauge");
        let _ = writeln!(
            o,
            "edgeflow_requests_in_flight_peak {}",
            self.in_flight_peak.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP edgeflow_model_reloads_total Model reload attempts."
        );
        let _ = writeln!(o, "# TYPE edgeflow_model_reloads_total counter");
        let _ = writeln!(
            o,
            "edgeflow_model_reloads_total{{result=\"ok\"}} {}",
            self.reloads_ok.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "edgeflow_model_reloads_total{{result=\"refused\"}} {}",
            self.reloads_refused.load(Ordering::Relaxed)
        );
        let _ = writeln!(o, "# HELP edgeflow_model_info The model being served.");
        let _ = writeln!(o, "# TYPE edgeflow_model_info gauge");
        let _ = writeln!(
            o,
            "edgeflow_model_info{{model_hash=\"{:08x}\"}} 1",
            self.model_hash.load(Ordering::Relaxed)
        );
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.request("/v1/predict", 200, Duration::from_micros(300));
        m.request("/v1/predict", 400, Duration::from_millis(30));
        let t = m.render();
        assert!(
            t.contains(
                "edgeflow_request_duration_seconds_bucket{route=\"/v1/predict\",le=\"0.00025\"} 0"
            ),
            "{t}"
        );
        assert!(
            t.contains(
                "edgeflow_request_duration_seconds_bucket{route=\"/v1/predict\",le=\"0.0005\"} 1"
            ),
            "{t}"
        );
        assert!(
            t.contains(
                "edgeflow_request_duration_seconds_bucket{route=\"/v1/predict\",le=\"0.05\"} 2"
            ),
            "{t}"
        );
        assert!(
            t.contains("edgeflow_request_duration_seconds_count{route=\"/v1/predict\"} 2"),
            "{t}"
        );
        assert!(
            t.contains("edgeflow_requests_total{route=\"/v1/predict\",code=\"400\"} 1"),
            "{t}"
        );
        assert!(
            t.contains("edgeflow_request_errors_total{route=\"/v1/predict\"} 1"),
            "{t}"
        );
    }
}
