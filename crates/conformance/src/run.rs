//! The one place that decides whether the PostgreSQL half of the suite
//! runs, and what a scenario starts from.
//!
//! PostgreSQL is asked once per test binary. When it cannot be reached, its
//! half is skipped with a message naming each skipped test, unless `CI` is
//! `true` (or `1`): then every PostgreSQL test fails, so that CI proves the
//! half ran. SQLite always runs.
use std::collections::BTreeSet;
use std::future::Future;
use std::io::Write;
use std::sync::Mutex;

use tokio::sync::OnceCell;

use crate::db::{connect_admin, postgres_base_url};
use crate::{Backend, PlatformDb, TestApp, TestDb};

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Whether PostgreSQL answers, asked once: `Err` says why not.
async fn postgres_reachable() -> &'static Result<(), String> {
    static REACHABLE: OnceCell<Result<(), String>> = OnceCell::const_new();
    REACHABLE
        .get_or_init(|| async {
            let base = postgres_base_url();
            match connect_admin(&base).await {
                Ok(pool) => {
                    pool.close().await;
                    Ok(())
                }
                Err(e) => Err(format!("cannot reach PostgreSQL at {base}: {e}")),
            }
        })
        .await
}

/// Whether a test on `backend` runs here. `false` (with a message) only for
/// PostgreSQL out of reach outside CI; in CI that is a failure.
pub async fn runs_on(backend: Backend) -> bool {
    if backend == Backend::Sqlite {
        return true;
    }
    let Err(why) = postgres_reachable().await else {
        return true;
    };
    if in_ci() {
        panic!("CI is set and the PostgreSQL half cannot run: {why}");
    }
    // Once per test (a property test asks for every case), written past the
    // test harness's capture so that it shows.
    static TOLD: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let test = std::thread::current()
        .name()
        .unwrap_or("a PostgreSQL test")
        .to_owned();
    if TOLD
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(test.clone())
    {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: {why}. Start PostgreSQL or set MEETPOOL_TEST_DATABASE_URL; \
             with CI=true this is a failure."
        );
    }
    false
}

/// What a scenario starts from, made ready for one backend.
pub trait Fixture: Sized {
    fn ready(backend: Backend) -> impl Future<Output = Self> + Send;
}

/// Only the backend: the scenario configures and starts what it needs.
impl Fixture for Backend {
    async fn ready(backend: Backend) -> Self {
        backend
    }
}

/// A database of its own, nothing running on it yet.
impl Fixture for TestDb {
    async fn ready(backend: Backend) -> Self {
        TestDb::create(backend).await
    }
}

/// A platform's database before meetpool (PostgreSQL only).
impl Fixture for PlatformDb {
    async fn ready(backend: Backend) -> Self {
        assert_eq!(
            backend,
            Backend::Postgres,
            "a platform's database is PostgreSQL"
        );
        PlatformDb::create().await
    }
}

/// The service with its default configuration on a database of its own.
impl Fixture for TestApp {
    async fn ready(backend: Backend) -> Self {
        TestApp::start(backend).await
    }
}

/// Runs `scenario` on `backend`, from the fixture its argument names, or
/// skips it (see [`runs_on`]).
pub async fn run_on<F, Fut>(backend: Backend, scenario: impl FnOnce(F) -> Fut)
where
    F: Fixture,
    Fut: Future<Output = ()>,
{
    if runs_on(backend).await {
        scenario(F::ready(backend).await).await;
    }
}
