//! Request latency by route template and status class: the histogram of
//! `GET /metrics`. Labels stay few: one series per route the router serves
//! and class of status, and every path no route serves under one label.
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use axum::http::StatusCode;

/// The label of every path no route serves.
pub const UNMATCHED: &str = "unmatched";

/// Upper bounds, in seconds: from a cached read to the request timeout.
const BOUNDS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    /// Observations at or below each bound, not yet accumulated.
    buckets: [u64; BOUNDS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct HttpMetrics {
    by_route: Mutex<BTreeMap<String, BTreeMap<&'static str, Histogram>>>,
}

fn class(status: StatusCode) -> &'static str {
    match status.as_u16() / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

impl HttpMetrics {
    pub fn observe(&self, route: &str, status: StatusCode, seconds: f64) {
        let mut by_route = self.by_route.lock().unwrap_or_else(|e| e.into_inner());
        let classes = match by_route.get_mut(route) {
            Some(classes) => classes,
            None => by_route.entry(route.to_owned()).or_default(),
        };
        let h = classes.entry(class(status)).or_default();
        if let Some(i) = BOUNDS.iter().position(|b| seconds <= *b) {
            h.buckets[i] += 1;
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// The histogram in Prometheus' text format.
    pub fn render(&self) -> String {
        const NAME: &str = "meetpool_http_request_duration_seconds";
        let mut out = format!(
            "# HELP {NAME} Time to answer a request, by route template and status class.\n\
             # TYPE {NAME} histogram\n"
        );
        let by_route = self.by_route.lock().unwrap_or_else(|e| e.into_inner());
        for (route, classes) in by_route.iter() {
            let route = escape(route);
            for (status, h) in classes {
                let labels = format!("route=\"{route}\",status=\"{status}\"");
                let mut cumulative = 0;
                for (bound, n) in BOUNDS.iter().zip(h.buckets) {
                    cumulative += n;
                    let _ = writeln!(out, "{NAME}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
                }
                let _ = writeln!(out, "{NAME}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(out, "{NAME}_sum{{{labels}}} {}", h.sum);
                let _ = writeln!(out, "{NAME}_count{{{labels}}} {}", h.count);
            }
        }
        out
    }
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
