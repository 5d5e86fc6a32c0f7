//! One behaviour suite, run against SQLite and against PostgreSQL.

/// Runs an `async fn(Backend)` scenario once per backend.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(meetpool_conformance::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(meetpool_conformance::Backend::Postgres).await
            }
        }
    )*};
}

mod admin;
mod assignment;
mod invariant;
mod midtrans;
mod openapi;
mod postgres_only;
mod rooms;
