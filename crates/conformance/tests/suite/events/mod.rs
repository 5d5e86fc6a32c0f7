//! Outbound events: a platform's endpoint hears of every change to a
//! booking's link, time and payment, signed so that it can trust them, in
//! order per booking, whatever happens to the endpoint or to the service.
//!
//! One theme a file:
//!
//! - `delivery`: what the endpoint receives, signed, once, in order.
//! - `failures`: failing, redirecting, hanging and absent receivers.
//! - `log`: the delivery log, retrying by hand, retention.
//! - `replicas`: restarts, two replicas, turning events on and off.
//! - `alerts`: alerts sent as events (`pool.low`).
//! - `commit_order`: events committed out of their numbers' order.
//!
//! This module holds the fixtures they share.
mod alerts;
mod commit_order;
mod delivery;
mod failures;
mod log;
mod replicas;

use std::cell::Cell;
use std::time::Duration;

use meetpool_conformance::{eventually, Backend, Delivery, Receiver, TestApp};
use reqwest::StatusCode;
use serde_json::Value;

const DAY: &str = "2031-06-03";
const ROOM_A: &str = "https://meet.google.com/aaa-aaaa-aaa";
const ROOM_B: &str = "https://meet.google.com/bbb-bbbb-bbb";

async fn start(backend: Backend, receiver: &Receiver) -> TestApp {
    TestApp::start_with_events(backend, receiver, |_| {}).await
}

/// The deliveries as `GET /api/events/deliveries?{query}` lists them.
async fn deliveries(t: &TestApp, query: &str) -> Vec<Value> {
    let (s, list) = t.get(&format!("/api/events/deliveries?{query}")).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    list.as_array().unwrap().clone()
}

/// Waits (30 s at most) until the log shows `n` events with `status`.
async fn wait_for_status(t: &TestApp, status: &str, n: usize) -> Vec<Value> {
    let seen = Cell::new(Vec::new());
    eventually(
        &format!("{n} {status} events"),
        Duration::from_secs(30),
        || async {
            let list = deliveries(t, &format!("status={status}")).await;
            let enough = list.len() >= n;
            seen.set(list);
            enough
        },
    )
    .await;
    seen.take()
}

fn kinds(ds: &[Delivery]) -> Vec<&str> {
    ds.iter().map(Delivery::kind).collect()
}
