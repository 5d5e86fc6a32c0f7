//! The timed part: notifications sent by a number of concurrent clients,
//! each answer's latency and outcome tallied. Both the load run and the
//! latency probe (one client) measure through here, so they time alike.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::Value;

use crate::client::Bench;
use crate::imitate::Imitator;

#[derive(Default)]
pub struct Tally {
    pub latencies: Vec<Duration>,
    pub ok: usize,
    pub errors: usize,
    pub with_link: usize,
    pub first_error: Option<String>,
}

impl Tally {
    pub fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.ok += other.ok;
        self.errors += other.errors;
        self.with_link += other.with_link;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Sends every body once, from `clients` workers polled on the current task
/// (the work is network-bound); the latencies come back sorted. Each
/// answered notification is told to `imitator`, if any.
pub async fn send_all(
    b: &Bench,
    bodies: &[String],
    clients: usize,
    imitator: Option<&Imitator>,
) -> (Tally, Duration) {
    let url = b.url("/webhooks/midtrans");
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let worker = || async {
        let mut t = Tally::default();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(body) = bodies.get(i) else {
                return t;
            };
            let t0 = Instant::now();
            let sent = b
                .http
                .post(&url)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await;
            let answer = match sent {
                Ok(r) => {
                    let status = r.status();
                    r.bytes().await.map(|bytes| (status, bytes))
                }
                Err(e) => Err(e),
            };
            t.latencies.push(t0.elapsed());
            match answer {
                Ok((status, bytes)) if status.is_success() => {
                    t.ok += 1;
                    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                    let linked = v["meetingLink"].is_string();
                    if linked {
                        t.with_link += 1;
                    }
                    if let Some(imitator) = imitator {
                        imitator.paid(i, linked);
                    }
                }
                Ok((status, bytes)) => {
                    t.errors += 1;
                    t.first_error.get_or_insert_with(|| {
                        format!("{status}: {}", String::from_utf8_lossy(&bytes))
                    });
                }
                Err(e) => {
                    t.errors += 1;
                    t.first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
    };
    let workers: Vec<_> = (0..clients.max(1)).map(|_| worker()).collect();
    let parts = join_all(workers).await;
    let elapsed = started.elapsed();
    let mut all = Tally::default();
    for p in parts {
        all.merge(p);
    }
    all.latencies.sort();
    (all, elapsed)
}
