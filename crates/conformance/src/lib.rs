//! The test harness: the real service on a real TCP listener, on a real
//! SQLite file or a real PostgreSQL schema of its own, driven over HTTP the
//! way a platform or an operator drives it.
//!
//! - [`run_on`] decides, in one place, whether a PostgreSQL test runs.
//! - [`TestApp`] is one running service; its typed helpers (`client`)
//!   answer with the types of [`model`], its `get`/`post`/... with the raw
//!   status and JSON, for tests that assert the exact body.
#![forbid(unsafe_code)]

mod client;
mod db;
mod gateway;
pub mod model;
mod pooler;
pub mod providers;
mod receiver;
mod run;
mod wait;

use std::sync::Arc;

use meetpool_app::{App, Config};
pub use meetpool_http::HttpSettings;
use meetpool_store::{ConnectOptions, Store};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::oneshot;

pub use client::{webhook_answer, WEBHOOK};
pub use db::{Backend, Hold, PlatformDb, RawDb, TestDb};
pub use gateway::{in_status, reported, settled, Gateway, Question};
pub use model::{
    ApiError, AssignAnswer, Booking, Event, Link, PoolStatus, Refused, SessionType, Settled,
    WebhookAnswer, WebhookError,
};
pub use pooler::PgBouncer;
pub use receiver::{verify, Answer, Delivery, Receiver, EVENTS_SECRET};
pub use run::{run_on, runs_on, Fixture};
pub use wait::eventually;

pub const ADMIN_TOKEN: &str = "test-admin-token";
pub const MIDTRANS_KEY: &str = "SB-Mid-server-meetpool-fixtures";

/// One running meetpool, as a user sees it.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub app: App,
    stop: Option<oneshot::Sender<()>>,
    stop_sync: Option<oneshot::Sender<()>>,
    stop_deliverer: Option<oneshot::Sender<()>>,
    stop_rooms: Option<oneshot::Sender<()>>,
    pub db: TestDb,
}

impl TestApp {
    /// Starts meetpool on a fresh database of `backend` with the default
    /// configuration (UTC, best-fit, no buffer, the fixtures' Midtrans key).
    /// For a scenario, which [`run_on`] runs only where its backend runs.
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// The same with the configuration changed by `tweak`.
    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        let db = TestDb::create(backend).await;
        Self::boot(db, test_config(tweak), &ConnectOptions::default()).await
    }

    /// The same with HTTP settings of its own (timeouts, limits, CORS).
    pub async fn start_with_http(backend: Backend, http: HttpSettings) -> Self {
        let db = TestDb::create(backend).await;
        let store = meetpool_store::connect(&db.url, &ConnectOptions::default())
            .await
            .expect("connect to the test database");
        Self::serve_with(db, store, test_config(|_| {}), &http).await
    }

    /// For a test of its own, outside `run_on`: [`TestApp::start`], or
    /// `None` where the PostgreSQL half does not run ([`runs_on`] decides).
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, |_| {}).await
    }

    /// [`TestApp::start_with`], or `None` as [`TestApp::spawn`].
    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Option<Self> {
        if !runs_on(backend).await {
            return None;
        }
        Some(Self::start_with(backend, tweak).await)
    }

    /// Another replica on the same database (its own connection pool).
    pub async fn replica(&self) -> TestApp {
        self.replica_with(&ConnectOptions::default()).await
    }

    /// The service stopped and started again on the same database, with the
    /// same configuration.
    pub async fn restart(mut self) -> TestApp {
        let config = self.app.config().clone();
        let db = self.db.share();
        self.stop_now();
        drop(self);
        Self::boot(db, config, &ConnectOptions::default()).await
    }

    /// Starts meetpool delivering outbound events to `receiver`, with short
    /// retry waits and timeout (`tweak` may change them).
    pub async fn start_with_events(
        backend: Backend,
        receiver: &Receiver,
        tweak: impl FnOnce(&mut meetpool_app::EventsConfig),
    ) -> Self {
        Self::start_with(backend, |c| {
            c.events = Some(test_events(&receiver.url, tweak))
        })
        .await
    }

    /// A replica connecting with other options (PostgreSQL coordination).
    pub async fn replica_with(&self, options: &ConnectOptions) -> TestApp {
        let config = self.app.config().clone();
        Self::boot(self.db.share(), config, options).await
    }

    async fn boot(db: TestDb, config: Config, options: &ConnectOptions) -> Self {
        let store: Box<dyn Store> = meetpool_store::connect(&db.url, options)
            .await
            .expect("connect to the test database");
        Self::serve(db, store, config).await
    }

    /// Starts meetpool on `db` through a store the test opened itself (via a
    /// proxy it can cut, or keeping a handle on the pool to close it), so
    /// that a test can take the database away from the running service.
    pub async fn spawn_on_store(
        db: TestDb,
        store: Box<dyn Store>,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        Self::serve(db, store, test_config(tweak)).await
    }

    /// meetpool as `meetpool serve --no-migrate` runs it on a platform's
    /// database adopted in place: as the service role, carrying out the
    /// platform's own changes as they come.
    pub async fn start_adopted(
        url: String,
        options: &ConnectOptions,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let store = meetpool_store::connect(&url, options)
            .await
            .expect("connect to the adopted database");
        let app = App::new(Arc::from(store), test_config(tweak));
        app.start_database(false)
            .await
            .expect("start on the adopted database");
        assert!(app.adopted().await.unwrap(), "the database is adopted");
        let (stop_sync, stopped) = oneshot::channel::<()>();
        tokio::spawn({
            let app = app.clone();
            async move {
                app.run_platform_sync(async {
                    let _ = stopped.await;
                })
                .await
            }
        });
        let mut t = Self::listen(
            TestDb::at(Backend::Postgres, url),
            app,
            &HttpSettings::default(),
        )
        .await;
        t.stop_sync = Some(stop_sync);
        t
    }

    async fn serve(db: TestDb, store: Box<dyn Store>, config: Config) -> Self {
        Self::serve_with(db, store, config, &HttpSettings::default()).await
    }

    async fn serve_with(
        db: TestDb,
        store: Box<dyn Store>,
        config: Config,
        http: &HttpSettings,
    ) -> Self {
        let app = App::new(Arc::from(store), config);
        app.prepare_database(false).await.expect("migrate");
        Self::listen(db, app, http).await
    }

    async fn listen(db: TestDb, app: App, http: &HttpSettings) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = meetpool_http::router_with(app.clone(), ADMIN_TOKEN.into(), http);
        let (stop, stopped) = oneshot::channel::<()>();
        // The deliverer and the reconciler (which only runs when the test's
        // configuration turns it on) stop on one signal.
        let (stop_deliverer, stopping) = oneshot::channel::<()>();
        let (stop_events, events_stopped) = oneshot::channel::<()>();
        let (stop_checks, checks_stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = stopping.await;
            let _ = stop_events.send(());
            let _ = stop_checks.send(());
        });
        tokio::spawn({
            let app = app.clone();
            async move {
                app.run_deliverer(async {
                    let _ = events_stopped.await;
                })
                .await
            }
        });
        tokio::spawn({
            let app = app.clone();
            async move {
                app.run_reconciler(async {
                    let _ = checks_stopped.await;
                })
                .await
            }
        });
        let (stop_rooms, rooms_stopped) = oneshot::channel::<()>();
        tokio::spawn({
            let app = app.clone();
            async move {
                app.run_rooms(async {
                    let _ = rooms_stopped.await;
                })
                .await
            }
        });
        tokio::spawn(meetpool_http::launch_with(
            listener,
            router,
            http,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            base,
            http: reqwest::Client::new(),
            app,
            stop: Some(stop),
            stop_sync: None,
            stop_deliverer: Some(stop_deliverer),
            stop_rooms: Some(stop_rooms),
            db,
        }
    }
}

/// Events to `url` signed with [`EVENTS_SECRET`], retried after 50, 100
/// and 200 ms, each attempt given 500 ms; then `tweak`.
pub fn test_events(
    url: &str,
    tweak: impl FnOnce(&mut meetpool_app::EventsConfig),
) -> meetpool_app::EventsConfig {
    let mut events = meetpool_app::EventsConfig::new(url, EVENTS_SECRET).unwrap();
    events.retry = [50, 100, 200]
        .map(std::time::Duration::from_millis)
        .to_vec();
    events.timeout = std::time::Duration::from_millis(500);
    events.poll = std::time::Duration::from_millis(100);
    tweak(&mut events);
    events
}

/// The tests' configuration: UTC, best-fit, no buffer, the fixtures'
/// Midtrans key; then `tweak`.
fn test_config(tweak: impl FnOnce(&mut Config)) -> Config {
    let mut config = Config::new("UTC").unwrap();
    config.midtrans_server_key = Some(MIDTRANS_KEY.into());
    tweak(&mut config);
    config
}

impl TestApp {
    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(stop) = self.stop_sync.take() {
            let _ = stop.send(());
        }
        if let Some(stop) = self.stop_deliverer.take() {
            let _ = stop.send(());
        }
        if let Some(stop) = self.stop_rooms.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// The raw API: the status and the body as JSON (a string when it is not
/// JSON), for tests that assert exact answers.
impl TestApp {
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
}
