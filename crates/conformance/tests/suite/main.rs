//! One behaviour suite, run against SQLite and against PostgreSQL.
//!
//! A scenario is an `async fn` taking what it starts from: a ready
//! `TestApp`, a `TestDb`, the `Backend` alone (to configure the service
//! itself), or a fixture of its own (`midtrans::Shop`). Whether the
//! PostgreSQL half runs is decided by `meetpool_conformance::run_on`, never
//! by the scenario.

/// Runs each scenario once per backend: `<scenario>::sqlite` and
/// `<scenario>::postgres`.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                meetpool_conformance::run_on(meetpool_conformance::Backend::Sqlite, super::$name)
                    .await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                meetpool_conformance::run_on(meetpool_conformance::Backend::Postgres, super::$name)
                    .await
            }
        }
    )*};
}

/// Runs each scenario on PostgreSQL only: `<scenario>::postgres`.
macro_rules! on_postgres {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                meetpool_conformance::run_on(meetpool_conformance::Backend::Postgres, super::$name)
                    .await
            }
        }
    )*};
}

mod admin;
mod adopt;
mod adopted_payments;
mod assignment;
mod browser;
mod capacity;
mod cors;
mod dashboard;
mod edges;
mod events;
mod holds;
mod invariant;
mod join;
mod metrics;
mod midtrans;
mod openapi;
mod outage;
mod platform;
mod postgres_only;
mod providers;
mod repack;
mod requests;
mod reschedule;
mod rooms;
mod settings;
mod slow_clients;
mod text;
