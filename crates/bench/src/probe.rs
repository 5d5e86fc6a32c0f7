//! One server under the latency probe. Kept apart from the command because
//! the baseline and the measured server each need their own bookings,
//! tallies and report, built up over alternating turns.
use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};

use crate::cli::Api;
use crate::client::Bench;
use crate::report::{pct, say};
use crate::send::{send_all, Tally};

/// One server under the latency probe: its bookings, and what it answered.
pub struct Probe {
    pub bench: Bench,
    pub orders: Vec<String>,
    bodies: Vec<String>,
    warm: Tally,
    pub timed: Tally,
    elapsed: Duration,
    pub stored: Option<i64>,
}

impl Probe {
    pub async fn new(api: Api, count: usize) -> Result<Self> {
        let bench = Bench::new(api, 1)?;
        let orders = bench.setup(count, 8).await?;
        let bodies = orders.iter().map(|o| bench.notification(o)).collect();
        Ok(Self {
            bench,
            orders,
            bodies,
            warm: Tally::default(),
            timed: Tally::default(),
            elapsed: Duration::ZERO,
            stored: None,
        })
    }

    /// Sends bodies[range] one at a time, timed or not.
    pub async fn send(&mut self, range: std::ops::Range<usize>, timed: bool) {
        let (t, elapsed) = send_all(&self.bench, &self.bodies[range], 1, None).await;
        if timed {
            self.timed.merge(t);
            self.elapsed += elapsed;
        } else {
            self.warm.merge(t);
        }
    }

    pub fn errors(&self) -> usize {
        self.warm.errors + self.timed.errors
    }

    fn mean_ms(&self) -> f64 {
        self.elapsed.as_secs_f64() * 1000.0 / self.timed.latencies.len().max(1) as f64
    }

    pub fn report(&self, j: bool) {
        let t = &self.timed;
        say(
            j,
            format!(
                "latency at {}: {} notifications one at a time ({} warm-up) with {} bookings stored: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, mean {:.2} ms; {} errors, {} got a link",
                self.bench.api.url,
                t.latencies.len(),
                self.warm.latencies.len(),
                self.stored.map_or("?".into(), |n| n.to_string()),
                pct(&t.latencies, 50.0),
                pct(&t.latencies, 95.0),
                pct(&t.latencies, 99.0),
                self.mean_ms(),
                self.errors(),
                t.with_link,
            ),
        );
        if let Some(e) = t.first_error.as_ref().or(self.warm.first_error.as_ref()) {
            say(j, format!("first error: {e}"));
        }
    }

    pub fn json(&self) -> Value {
        let t = &self.timed;
        json!({
            "url": self.bench.api.url,
            "stored": self.stored,
            "notifications": t.latencies.len(),
            "p50_ms": pct(&t.latencies, 50.0),
            "p95_ms": pct(&t.latencies, 95.0),
            "p99_ms": pct(&t.latencies, 99.0),
            "mean_ms": self.mean_ms(),
            "errors": self.errors(),
            "with_link": t.with_link,
        })
    }
}
