//! Prometheus metrics, kept in process and rendered as text at `/metrics`.

use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
};

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// Request counters and latency histograms by operation: the method and route template of the
/// matched route (`GET /api/v1/users/{id}`), or one of `unmatched` (no route), `refused` (rate
/// or body limit, before routing) and `panicked`. Labels come from the code's routes, never
/// from the request, so their number is bounded.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    rate_limited: Mutex<BTreeMap<&'static str, u64>>,
    panics: AtomicU64,
}

impl Metrics {
    /// Records one request.
    pub fn observe(&self, operation: &str, status: u16, seconds: f64) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((operation.to_string(), status)).or_default() += 1;
        }
        if let Ok(mut l) = self.latency.lock() {
            let h = l.entry(operation.to_string()).or_default();
            for (i, b) in BUCKETS.iter().enumerate() {
                if seconds <= *b {
                    h.counts[i] += 1;
                }
            }
            h.sum += seconds;
            h.count += 1;
        }
    }

    /// Counts a request refused by a rate limit (`ip` or `tenant`).
    pub fn rate_limited(&self, scope: &'static str) {
        if let Ok(mut r) = self.rate_limited.lock() {
            *r.entry(scope).or_default() += 1;
        }
    }

    /// Counts a request whose handler panicked (answered 500 by the edge).
    pub fn panicked(&self) {
        self.panics.fetch_add(1, Ordering::Relaxed);
    }

    /// The text exposition, with the families read at scrape time appended.
    pub fn render(&self, extra: &[Family]) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP trainflow_http_requests_total HTTP requests by operation and status.\n",
        );
        out.push_str("# TYPE trainflow_http_requests_total counter\n");
        if let Ok(r) = self.requests.lock() {
            for ((op, status), n) in r.iter() {
                let _ = writeln!(
                    out,
                    "trainflow_http_requests_total{{operation=\"{op}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP trainflow_http_request_duration_seconds HTTP latency by operation.\n");
        out.push_str("# TYPE trainflow_http_request_duration_seconds histogram\n");
        if let Ok(l) = self.latency.lock() {
            for (op, h) in l.iter() {
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "trainflow_http_request_duration_seconds_bucket{{operation=\"{op}\",le=\"{b}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(out, "trainflow_http_request_duration_seconds_bucket{{operation=\"{op}\",le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(
                    out,
                    "trainflow_http_request_duration_seconds_sum{{operation=\"{op}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "trainflow_http_request_duration_seconds_count{{operation=\"{op}\"}} {}",
                    h.count
                );
            }
        }
        out.push_str("# HELP trainflow_rate_limited_total Requests refused by a rate limit.\n");
        out.push_str("# TYPE trainflow_rate_limited_total counter\n");
        if let Ok(r) = self.rate_limited.lock() {
            for (scope, n) in r.iter() {
                let _ = writeln!(out, "trainflow_rate_limited_total{{scope=\"{scope}\"}} {n}");
            }
        }
        out.push_str("# HELP trainflow_panics_total Requests whose handler panicked.\n");
        out.push_str("# TYPE trainflow_panics_total counter\n");
        let _ = writeln!(
            out,
            "trainflow_panics_total {}",
            self.panics.load(Ordering::Relaxed)
        );
        for family in extra {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}",
                name = family.name,
                help = family.help,
                kind = family.kind,
            );
            for (labels, value) in &family.samples {
                if labels.is_empty() {
                    let _ = writeln!(out, "{} {value}", family.name);
                } else {
                    let _ = writeln!(out, "{}{{{labels}}} {value}", family.name);
                }
            }
        }
        out
    }
}

/// A metric family read at scrape time (pool, jobs, outbox, connector runs): its samples are
/// label sets (`job="x",status="y"`, empty for none) and values. Label values come from the
/// code (job names, run statuses), never from requests.
#[derive(Debug, Clone)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    /// `gauge` or `counter`.
    pub kind: &'static str,
    pub samples: Vec<(String, f64)>,
}

impl Family {
    /// A gauge with one unlabelled value.
    pub fn gauge(name: &'static str, help: &'static str, value: f64) -> Self {
        Self {
            name,
            help,
            kind: "gauge",
            samples: vec![(String::new(), value)],
        }
    }

    /// A family of `kind` with labelled samples.
    pub fn labelled(
        name: &'static str,
        help: &'static str,
        kind: &'static str,
        samples: Vec<(String, f64)>,
    ) -> Self {
        Self {
            name,
            help,
            kind,
            samples,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_lands_in_its_bucket_and_the_total() {
        let m = Metrics::default();
        m.observe("list_users", 200, 0.004);
        let text = m.render(&[
            Family::gauge("trainflow_db_pool_size", "Pool size.", 3.0),
            Family::labelled(
                "trainflow_job_runs_total",
                "Runs.",
                "counter",
                vec![("job=\"a\",outcome=\"failed\"".into(), 2.0)],
            ),
        ]);
        assert!(text
            .contains("trainflow_http_requests_total{operation=\"list_users\",status=\"200\"} 1"));
        assert!(text.contains("le=\"0.0025\"} 0"));
        assert!(text.contains("le=\"0.005\"} 1"));
        assert!(text.contains("trainflow_db_pool_size 3"));
        assert!(text.contains("# TYPE trainflow_job_runs_total counter"));
        assert!(text.contains("trainflow_job_runs_total{job=\"a\",outcome=\"failed\"} 2"));
    }
}
