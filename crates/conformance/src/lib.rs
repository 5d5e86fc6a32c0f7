//! The test harness: the real service on a real TCP listener, on a real
//! SQLite file or a real PostgreSQL schema of its own, driven over HTTP the
//! way a platform or an operator drives it.
#![forbid(unsafe_code)]

mod db;

use std::sync::Arc;

use meetpool_app::{App, Config};
use meetpool_store::{ConnectOptions, Store};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::oneshot;

pub use db::{Backend, RawDb, TestDb};

pub const ADMIN_TOKEN: &str = "test-admin-token";
pub const MIDTRANS_KEY: &str = "SB-Mid-server-meetpool-fixtures";

/// One running meetpool, as a user sees it.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub app: App,
    stop: Option<oneshot::Sender<()>>,
    pub db: TestDb,
}

impl TestApp {
    /// Starts meetpool on a fresh database of `backend` with the default
    /// configuration (UTC, best-fit, no buffer, the fixtures' Midtrans key).
    /// `None` when PostgreSQL is not there and this is not CI.
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Option<Self> {
        let db = TestDb::create(backend).await?;
        let mut config = Config::new("UTC").unwrap();
        config.midtrans_server_key = Some(MIDTRANS_KEY.into());
        tweak(&mut config);
        Some(Self::start(db, config, &ConnectOptions::default()).await)
    }

    /// Another replica on the same database (its own connection pool).
    pub async fn replica(&self) -> TestApp {
        self.replica_with(&ConnectOptions::default()).await
    }

    /// A replica connecting with other options (PostgreSQL coordination).
    pub async fn replica_with(&self, options: &ConnectOptions) -> TestApp {
        let config = self.app.config().clone();
        Self::start(self.db.share(), config, options).await
    }

    async fn start(db: TestDb, config: Config, options: &ConnectOptions) -> Self {
        let store: Box<dyn Store> = meetpool_store::connect(&db.url, options)
            .await
            .expect("connect to the test database");
        Self::serve(db, store, config).await
    }

    async fn serve(db: TestDb, store: Box<dyn Store>, config: Config) -> Self {
        let app = App::new(Arc::from(store), config);
        app.prepare_database().await.expect("migrate");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = meetpool_http::router(app.clone(), ADMIN_TOKEN.into());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(meetpool_http::launch(listener, router, async move {
            let _ = stopped.await;
        }));
        Self {
            base,
            http: reqwest::Client::new(),
            app,
            stop: Some(stop),
            db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let res = req.send().await.expect("request");
        let status = res.status();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.http.get(self.url(path)).bearer_auth(ADMIN_TOKEN))
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(
            self.http
                .post(self.url(path))
                .bearer_auth(ADMIN_TOKEN)
                .json(&body),
        )
        .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(
            self.http
                .patch(self.url(path))
                .bearer_auth(ADMIN_TOKEN)
                .json(&body),
        )
        .await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(
            self.http
                .put(self.url(path))
                .bearer_auth(ADMIN_TOKEN)
                .json(&body),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.http.delete(self.url(path)).bearer_auth(ADMIN_TOKEN))
            .await
    }

    /// A POST with a raw body and no admin token (what Midtrans sends).
    pub async fn post_raw(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value) {
        self.send(
            self.http
                .post(self.url(path))
                .header("content-type", "application/json")
                .body(body),
        )
        .await
    }

    /// The previous system's assign call.
    pub async fn assign(&self, booking_id: &str) -> (StatusCode, Value) {
        self.post(
            "/functions/v1/assign-meeting-link",
            json!({ "bookingId": booking_id }),
        )
        .await
    }

    pub async fn session_type(&self, minutes: i64) -> String {
        let (s, b) = self
            .post(
                "/api/session-types",
                json!({ "name": format!("{minutes} min"), "duration": minutes, "price": 100000 }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b["id"].as_str().unwrap().to_owned()
    }

    pub async fn add_link(&self, url: &str) -> String {
        let (s, b) = self
            .post("/api/links", json!({ "meeting_link": url }))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b["id"].as_str().unwrap().to_owned()
    }

    /// The previous system's three production links.
    pub async fn seed_links(&self) -> Vec<String> {
        let mut ids = Vec::new();
        for url in [
            "https://meet.google.com/kcw-ebey-pqu",
            "https://meet.google.com/ppt-myeq-puu",
            "https://meet.google.com/wyk-nvfk-qkq",
        ] {
            ids.push(self.add_link(url).await);
        }
        ids
    }

    /// Creates a booking and returns its JSON.
    pub async fn booking(&self, st: &str, date: &str, time: &str, payment_status: &str) -> Value {
        self.booking_with_order(
            &format!("TEST-{}", uuid::Uuid::new_v4()),
            st,
            date,
            time,
            payment_status,
        )
        .await
    }

    pub async fn booking_with_order(
        &self,
        order: &str,
        st: &str,
        date: &str,
        time: &str,
        payment_status: &str,
    ) -> Value {
        let (s, b) = self
            .post(
                "/api/bookings",
                json!({
                    "order_id": order, "user_id": "user-1", "expert_id": "expert-1",
                    "session_type_id": st, "booking_date": date, "booking_time": time,
                    "price": 100000, "payment_status": payment_status,
                }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b
    }

    pub async fn get_booking(&self, id: &str) -> Value {
        let (s, b) = self.get(&format!("/api/bookings/{id}")).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b
    }

    /// `GET /metrics`, as text.
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// A counter of `GET /metrics`, by its name.
    pub async fn metric(&self, name: &str) -> u64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
            .parse()
            .unwrap()
    }

    /// Pairs of bookings holding one link at overlapping times, as the
    /// database sees them.
    pub async fn overlaps(&self) -> usize {
        self.app.store().overlapping_pairs().await.unwrap().len()
    }

    /// Starts meetpool on `db` through a store the test opened itself (via a
    /// proxy it can cut, or keeping a handle on the pool to close it), so
    /// that a test can take the database away from the running service.
    pub async fn spawn_on_store(
        db: TestDb,
        store: Box<dyn Store>,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = Config::new("UTC").unwrap();
        config.midtrans_server_key = Some(MIDTRANS_KEY.into());
        tweak(&mut config);
        Self::serve(db, store, config).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Event kinds of a booking's audit trail, in order.
pub async fn event_kinds(t: &TestApp, booking: &str) -> Vec<String> {
    let (s, b) = t.get(&format!("/api/bookings/{booking}/events")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b.as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}
