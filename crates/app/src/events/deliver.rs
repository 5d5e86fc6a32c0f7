//! The deliverer: claims due events, POSTs each, records the outcome.
//!
//! A claim holds its events for one attempt each (PostgreSQL: row locks in
//! the claim's transaction; SQLite: a lease for the attempt's timeout and
//! a margin), so a replica that dies mid-attempt (kill -9 included) only
//! delays its events until its connection or its lease goes; another
//! replica, or this one restarted, then sends them again (at least once).
//! A booking's events go out one at a time, in order: a claim takes a
//! booking's pending events from its first one on, and they are sent one
//! after the other; the first that fails stops the rest until its retry.
//!
//! Under load, a claim per commit would cost a transaction per event, so
//! a wake-up waits a moment ([`GATHER`]) for the changes committing with
//! it, and their events leave in one claim.
use std::future::Future;
use std::time::Duration;

use futures_util::future::join_all;
use jiff::{SignedDuration, Timestamp};
use meetpool_store::{Attempt, OutboundEvent};
use serde_json::json;
use serde_json::value::RawValue;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use super::metrics::Outcome;
use super::sign::signature;
use super::EventsConfig;
use crate::App;

/// Events claimed at a time (and sent concurrently, up to the configured
/// concurrency, one booking's after the other).
const BATCH: u32 = 256;
/// How long a wake-up waits for the changes committing with it.
const GATHER: Duration = Duration::from_millis(20);
/// How long past an attempt's timeout its claim holds.
const LEASE_MARGIN: Duration = Duration::from_secs(5);
/// How often the coming days are checked against the pool's size.
const POOL_CHECK: Duration = Duration::from_secs(60);
/// How often delivered events past their keeping are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// How many coming days `pool.low` looks at.
const POOL_LOW_DAYS: i64 = 7;

impl App {
    /// Delivers outbound events until `shutdown` completes: at once after
    /// each commit, and every `poll` for the rest. Without an events URL it
    /// returns at once. An attempt under way when `shutdown` completes is
    /// dropped; its lease lets the event go again later.
    pub async fn run_deliverer(&self, shutdown: impl Future<Output = ()>) {
        let Some(config) = self.config().events.clone() else {
            return;
        };
        // A redirect is not followed: reqwest would follow a 301, 302 or
        // 303 with a GET, and a page answering that GET with 200 would
        // count as a delivery the endpoint never received.
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        let sender = Sender {
            client,
            permits: Semaphore::new(config.concurrency.max(1)),
        };
        tokio::pin!(shutdown);
        let mut pool_checked: Option<tokio::time::Instant> = None;
        let mut pruned: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                () = self.deliver_due(&config, &sender) => {}
            }
            if pool_checked.is_none_or(|t| t.elapsed() >= POOL_CHECK) {
                pool_checked = Some(tokio::time::Instant::now());
                tokio::select! {
                    () = &mut shutdown => return,
                    () = self.raise_pool_low() => {}
                }
            }
            if pruned.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                pruned = Some(tokio::time::Instant::now());
                tokio::select! {
                    () = &mut shutdown => return,
                    gone = self.prune_deliveries(config.keep) => match gone {
                        Ok(0) => {}
                        Ok(n) => info!(deleted = n, "delivered events past their keeping deleted"),
                        Err(e) => warn!(error = %e, "cannot delete old delivered events; trying again in an hour"),
                    },
                }
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = self.events.wake.notified() => {}
                () = tokio::time::sleep(config.poll) => {}
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(GATHER) => {}
            }
        }
    }

    /// Claims and sends batches until a claim finds less than a batch due.
    async fn deliver_due(&self, config: &EventsConfig, sender: &Sender) {
        loop {
            let now = Timestamp::now();
            let lease = now + config.timeout + LEASE_MARGIN;
            let claim = match self.store().outbox().claim(now, lease, BATCH).await {
                Ok(claim) => claim,
                Err(e) => {
                    warn!(error = %e, "cannot read the outbound events; trying again shortly");
                    return;
                }
            };
            if claim.events().is_empty() {
                // Nothing to send, but the claim may have moved on (past
                // numbers that will never come, or events set to wait
                // behind their booking's earlier ones).
                if let Err(e) = claim.record(&[]).await {
                    warn!(error = %e, "cannot record where the outbound events stand; trying again shortly");
                }
                return;
            }
            let full = claim.events().len() >= BATCH as usize;
            let sent: Vec<_> = join_all(
                by_booking(claim.events())
                    .into_iter()
                    .map(|events| self.deliver_in_order(config, sender, events)),
            )
            .await
            .into_iter()
            .flatten()
            .collect();
            let outcomes: Vec<_> = sent
                .iter()
                .map(|(seq, attempt, _)| (*seq, attempt.clone()))
                .collect();
            if let Err(e) = claim.record(&outcomes).await {
                // The events are due again once the claim lets them go.
                warn!(error = %e, "cannot record deliveries; they will be sent again");
                return;
            }
            for (_, _, outcome) in sent {
                self.events.metrics.count(outcome);
            }
            if !full {
                return;
            }
        }
    }

    /// One booking's claimed events, one after the other, until one fails:
    /// the rest wait for its retry, unattempted.
    async fn deliver_in_order(
        &self,
        config: &EventsConfig,
        sender: &Sender,
        events: Vec<&OutboundEvent>,
    ) -> Vec<(i64, Attempt, Outcome)> {
        let mut sent = Vec::with_capacity(events.len());
        for event in events {
            let (attempt, outcome) = self.deliver(config, sender, event).await;
            let delivered = matches!(attempt, Attempt::Delivered { .. });
            sent.push((event.seq, attempt, outcome));
            if !delivered {
                break;
            }
        }
        sent
    }

    /// One attempt at `event`, and what became of it.
    async fn deliver(
        &self,
        config: &EventsConfig,
        sender: &Sender,
        event: &OutboundEvent,
    ) -> (Attempt, Outcome) {
        // The wait for a turn is not the receiver's: the attempt's
        // timeout starts when it is sent.
        let _turn = sender.permits.acquire().await.expect("never closed");
        let body = self.event_body(event);
        let timestamp = Timestamp::now().as_second();
        let sent = sender
            .client
            .post(config.url.clone())
            .header("webhook-id", &event.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                signature(config.key(), &event.id, timestamp, &body),
            )
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let result = match sent {
            // The answer is read so that the connection can be kept.
            Ok(res) if res.status().is_success() => res
                .bytes()
                .await
                .map(drop)
                .map_err(|e| failure(&e, config.timeout)),
            Ok(res) if res.status().is_redirection() => Err(format!(
                "answered HTTP {} to {}: redirects are not followed; set MEETPOOL_EVENTS_URL to the endpoint itself",
                res.status().as_u16(),
                res.headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .unwrap_or("nowhere given"),
            )),
            Ok(res) => Err(format!("answered HTTP {}", res.status().as_u16())),
            Err(e) => Err(failure(&e, config.timeout)),
        };
        let now = Timestamp::now();
        let (attempt, outcome) = match result {
            Ok(()) => {
                let lag = now.duration_since(event.created_at).unsigned_abs();
                debug!(event_id = %event.id, kind = %event.kind, lag_ms = lag.as_millis() as u64, "event delivered");
                (Attempt::Delivered { at: now }, Outcome::Delivered { lag })
            }
            Err(error) => match config.retry.get(event.attempts.saturating_sub(1) as usize) {
                Some(wait) => {
                    let next = now + with_jitter(*wait);
                    info!(event_id = %event.id, kind = %event.kind, attempt = event.attempts, error, next_attempt_at = %next, "event delivery failed; it will be retried");
                    (Attempt::RetryAt { error, next }, Outcome::Retried)
                }
                None => {
                    warn!(event_id = %event.id, kind = %event.kind, attempts = event.attempts, error, "event delivery failed for good: retry it with `meetpool events retry`");
                    (Attempt::GaveUp { error }, Outcome::Failed)
                }
            },
        };
        (attempt, outcome)
    }

    /// `{"type", "timestamp", "data"}`, with the booking's join and
    /// calendar URLs in place of its join token. Only the data's top level
    /// and its booking are taken apart; every other value is copied as the
    /// database wrote it.
    pub(crate) fn event_body(&self, event: &OutboundEvent) -> String {
        let mut body = String::with_capacity(event.data.len() + 256);
        body.push_str(r#"{"type":"#);
        push_str_value(&mut body, &event.kind);
        body.push_str(r#","timestamp":"#);
        push_str_value(&mut body, &event.created_at.to_string());
        body.push_str(r#","data":"#);
        match serde_json::from_str::<Fields>(&event.data) {
            Ok(fields) => {
                let mut token = None;
                let mut first = true;
                body.push('{');
                for (key, value) in &fields {
                    push_key(&mut body, &mut first, key);
                    let booking = (*key == "booking")
                        .then(|| serde_json::from_str::<Fields>(value.get()).ok())
                        .flatten();
                    match booking {
                        Some(booking) => {
                            let mut first = true;
                            body.push('{');
                            for (key, value) in &booking {
                                if *key == "join_token" {
                                    token = serde_json::from_str::<&str>(value.get()).ok();
                                } else {
                                    push_key(&mut body, &mut first, key);
                                    body.push_str(value.get());
                                }
                            }
                            body.push('}');
                        }
                        None => body.push_str(value.get()),
                    }
                }
                if let Some(token) = token {
                    let base = self.config().public_url.trim_end_matches('/');
                    push_key(&mut body, &mut first, "join_url");
                    push_str_value(&mut body, &format!("{base}/j/{token}"));
                    push_key(&mut body, &mut first, "calendar_url");
                    push_str_value(&mut body, &format!("{base}/j/{token}.ics"));
                }
                body.push('}');
            }
            // Not an object: passed on as it is.
            Err(_) => body.push_str(&event.data),
        }
        body.push('}');
        body
    }

    /// Raises `pool.low` for each of the coming days whose peak reaches the
    /// pool's size, once per day and pool size.
    async fn raise_pool_low(&self) {
        let today = Timestamp::now()
            .to_zoned(self.config().timezone.clone())
            .date();
        let Ok(last) = today.checked_add(jiff::Span::new().days(POOL_LOW_DAYS - 1)) else {
            return;
        };
        let days = match self.capacity(None, Some(&last.to_string())).await {
            Ok(days) => days,
            Err(e) => {
                warn!(error = %e, "cannot check the coming days against the pool");
                return;
            }
        };
        for day in days.iter().filter(|d| d.warning && d.peak_sessions > 0) {
            let key = format!("pool.low:{}:{}", day.date, day.enabled_links);
            let data = json!({
                "date": day.date, "peak_sessions": day.peak_sessions,
                "enabled_links": day.enabled_links, "unassigned": day.unassigned,
            });
            match self.store().outbox().raise("pool.low", &key, &data).await {
                Ok(true) => {
                    warn!(date = %day.date, peak = day.peak_sessions, links = day.enabled_links, "the day's peak reaches the pool's size");
                    self.events.wake.notify_one();
                }
                Ok(false) => {}
                Err(e) => warn!(error = %e, "cannot raise pool.low"),
            }
        }
    }
}

/// How attempts are made: one HTTP client, kept connections, and a
/// limit on how many attempts are under way at once
/// ([`EventsConfig::concurrency`]), so that a burst of events does not
/// open a connection per event to a small endpoint.
struct Sender {
    client: reqwest::Client,
    permits: Semaphore,
}

/// Claimed events grouped by booking, each group in order of writing;
/// an event about no booking is a group of its own.
fn by_booking(events: &[OutboundEvent]) -> Vec<Vec<&OutboundEvent>> {
    let mut groups: Vec<Vec<&OutboundEvent>> = Vec::new();
    let mut index: std::collections::HashMap<_, usize> = std::collections::HashMap::new();
    for event in events {
        match event.booking_id {
            Some(booking) => match index.entry(booking) {
                std::collections::hash_map::Entry::Occupied(at) => {
                    groups[*at.get()].push(event);
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(groups.len());
                    groups.push(vec![event]);
                }
            },
            None => groups.push(vec![event]),
        }
    }
    groups
}

/// A JSON object's members, their values as written.
type Fields<'a> = std::collections::BTreeMap<&'a str, &'a RawValue>;

/// `,"key":` (without the comma for the first member).
fn push_key(out: &mut String, first: &mut bool, key: &str) {
    if !std::mem::take(first) {
        out.push(',');
    }
    push_str_value(out, key);
    out.push(':');
}

/// `text` as a JSON string.
fn push_str_value(out: &mut String, text: &str) {
    out.push_str(&serde_json::to_string(text).unwrap_or_default());
}

fn failure(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {} ms", timeout.as_millis());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

/// `wait` plus up to a quarter more, at random, so that events that failed
/// together are not all retried at the same instant; never less than the
/// schedule says.
fn with_jitter(wait: Duration) -> SignedDuration {
    let r = uuid::Uuid::new_v4().as_u128() as u64 % 1000;
    let wait = wait + wait.mul_f64(r as f64 / 4000.0);
    SignedDuration::try_from(wait).unwrap_or(SignedDuration::MAX)
}
