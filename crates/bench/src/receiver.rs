//! A platform's endpoint for outbound events, inside the load generator:
//! it accepts every delivery at once and notes when each event arrived, so
//! that the time from the change to its delivery can be measured. The
//! event's `timestamp` is written in the transaction, just before its
//! commit, so arrival minus timestamp slightly overstates commit to
//! delivery.
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use jiff::Timestamp;

#[derive(Default)]
struct Seen {
    ids: HashSet<String>,
    duplicates: usize,
    lags: Vec<Duration>,
}

pub struct Receiver {
    seen: Arc<Mutex<Seen>>,
}

/// What arrived.
pub struct Arrivals {
    pub events: usize,
    pub duplicates: usize,
    /// Sorted.
    pub lags: Vec<Duration>,
}

impl Receiver {
    pub async fn listen(addr: SocketAddr) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot receive events on {addr}"))?;
        let seen = Arc::<Mutex<Seen>>::default();
        let app = axum::Router::new()
            .fallback(axum::routing::post(receive))
            .with_state(seen.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { seen })
    }

    pub fn received(&self) -> usize {
        self.seen.lock().unwrap().ids.len()
    }

    /// Waits until `n` distinct events arrived or `patience` passed.
    pub async fn wait_for(&self, n: usize, patience: Duration) -> Arrivals {
        let deadline = tokio::time::Instant::now() + patience;
        while self.received() < n && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let seen = self.seen.lock().unwrap();
        let mut lags = seen.lags.clone();
        lags.sort();
        Arrivals {
            events: seen.ids.len(),
            duplicates: seen.duplicates,
            lags,
        }
    }
}

/// The one field of an event the receiver reads.
#[derive(serde::Deserialize)]
struct Written<'a> {
    timestamp: &'a str,
}

async fn receive(
    State(seen): State<Arc<Mutex<Seen>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let now = Timestamp::now();
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let written = serde_json::from_slice::<Written>(&body)
        .ok()
        .and_then(|w| w.timestamp.parse::<Timestamp>().ok());
    let mut seen = seen.lock().unwrap();
    if !seen.ids.insert(id) {
        seen.duplicates += 1;
    } else if let Some(written) = written {
        seen.lags.push(now.duration_since(written).unsigned_abs());
    }
    StatusCode::NO_CONTENT
}
