//! meetpool's use cases. The HTTP API and the CLI both call these; each one
//! runs in a single database transaction (retried on concurrency conflicts),
//! takes its decisions with the domain rules and leaves an audit trail.
#![forbid(unsafe_code)]

mod allocate;
mod bookings;
mod config;
mod error;
mod filter;
mod links;
mod metrics;
mod payments;
mod retry;
mod session_types;
mod settle;
mod status;
mod sweeper;
pub mod views;

use std::sync::Arc;

use meetpool_store::Store;

pub use bookings::{AssignOutcome, BookingInput, PaymentOutcome};
pub use config::{Config, MidtransVerify};
pub use error::AppError;
pub use filter::BookingQuery;
pub use links::LinkInput;
pub use payments::NotificationOutcome;
pub use session_types::SessionTypeInput;

pub type Result<T, E = AppError> = std::result::Result<T, E>;

/// The application: configuration plus the store. Cheap to clone.
#[derive(Clone)]
pub struct App {
    store: Arc<dyn Store>,
    config: Arc<Config>,
    http: reqwest::Client,
    settler: Arc<settle::Settler>,
    counters: Arc<metrics::Counters>,
}

impl App {
    pub fn new(store: Arc<dyn Store>, config: Config) -> Self {
        Self {
            store,
            config: Arc::new(config),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(4))
                .build()
                .expect("HTTP client"),
            settler: Arc::default(),
            counters: Arc::default(),
        }
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// This application's counters, in Prometheus' text format.
    pub fn metrics(&self) -> String {
        self.counters.render()
    }

    /// Applies migrations and writes the settings the database enforces.
    pub async fn prepare_database(&self) -> Result<()> {
        self.store.migrate().await?;
        self.store.configure(&self.config.db_settings()).await?;
        Ok(())
    }
}
