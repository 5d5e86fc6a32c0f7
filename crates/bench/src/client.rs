//! The HTTP side of a run against one `meetpool serve`: the untimed set-up
//! (session type, links, pending bookings) through the admin API, and the
//! signed notifications that the timed part sends.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use futures_util::future::join_all;
use jiff::ToSpan;
use meetpool_domain::midtrans::signature;
use serde_json::{json, Value};

use crate::cli::Api;
use crate::fixture::{DURATION_MIN, GROSS_AMOUNT, PRICE};

pub struct Bench {
    pub http: reqwest::Client,
    pub api: Api,
    /// Distinguishes this run's rows from any earlier run's.
    pub tag: String,
}

impl Bench {
    pub fn new(api: Api, clients: usize) -> Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(clients.max(1))
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(60))
            .build()?;
        let tag = format!("B{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        Ok(Self { http, api, tag })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.api.url.trim_end_matches('/'), path)
    }

    async fn admin_post(&self, path: &str, body: Value) -> Result<Value> {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.api.admin_token)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = r.status();
        let text = r.text().await?;
        if !status.is_success() {
            bail!("POST {path}: {status}: {text}");
        }
        Ok(serde_json::from_str(&text)?)
    }

    /// A session type, the links asked for, and `n` pending bookings spread
    /// over hourly slots, `per_slot` to a slot. Returns the order ids.
    pub async fn setup(&self, n: usize, concurrency: usize) -> Result<Vec<String>> {
        let st = self
            .admin_post(
                "/api/session-types",
                json!({ "name": format!("bench {}", self.tag), "duration": DURATION_MIN, "price": PRICE }),
            )
            .await?;
        let st_id = st["id"]
            .as_str()
            .context("session type without id")?
            .to_owned();
        let links = self.api.links as usize;
        self.parallel(links, concurrency, |i| async move {
            self.admin_post(
                "/api/links",
                json!({ "meeting_link": format!("https://meet.example.com/{}-{i}", self.tag) }),
            )
            .await
            .map(|_| ())
        })
        .await?;
        let per_slot = self.api.per_slot.max(1) as usize;
        let slots = n.div_ceil(per_slot).max(1);
        let start = self.api.start_date;
        let st_id = &st_id;
        self.parallel(n, concurrency, |i| {
            let b = self;
            async move {
                // Consecutive bookings land in different slots, so concurrent
                // notifications rarely compete for the same hours.
                let slot = i % slots;
                let per_day = if b.api.odd_hours { 12 } else { 24 };
                let date = start.checked_add(((slot / per_day) as i64).days())?;
                let hour = if b.api.odd_hours {
                    2 * (slot % 12) + 1
                } else {
                    slot % 24
                };
                let body = json!({
                    "order_id": b.order_id(i),
                    "user_id": format!("user-{i}"),
                    "expert_id": format!("expert-{}", i % 97),
                    "session_type_id": st_id,
                    "booking_date": date.to_string(),
                    "booking_time": format!("{hour:02}:00"),
                    "price": PRICE,
                });
                b.admin_post("/api/bookings", body).await.map(|_| ())
            }
        })
        .await?;
        Ok((0..n).map(|i| self.order_id(i)).collect())
    }

    fn order_id(&self, i: usize) -> String {
        format!("{}-{i:07}", self.tag)
    }

    /// Runs `f(i)` for i in 0..n from `concurrency` workers, polled on the
    /// current task: the work is network-bound, and the closures borrow
    /// `self`, which spawned tasks could not.
    async fn parallel<F, Fut>(&self, n: usize, concurrency: usize, f: F) -> Result<()>
    where
        F: Fn(usize) -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        let next = AtomicUsize::new(0);
        let worker = || async {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), anyhow::Error>(());
                }
                f(i).await?;
            }
        };
        let workers: Vec<_> = (0..concurrency.max(1)).map(|_| worker()).collect();
        for r in join_all(workers).await {
            r?;
        }
        Ok(())
    }

    pub fn notification(&self, order_id: &str) -> String {
        json!({
            "order_id": order_id,
            "status_code": "200",
            "gross_amount": GROSS_AMOUNT,
            "signature_key": signature(order_id, "200", GROSS_AMOUNT, &self.api.server_key),
            "transaction_status": "settlement",
            "transaction_id": uuid::Uuid::new_v4().to_string(),
            "fraud_status": "accept",
            "payment_type": "bank_transfer",
            "transaction_time": "2030-01-01 10:00:00",
            "currency": "IDR",
        })
        .to_string()
    }
}
