//! meetpool's use cases. The HTTP API and the CLI both call these; each one
//! runs in a single database transaction (retried on concurrency conflicts),
//! takes its decisions with the domain rules and leaves an audit trail.
//!
//! Where things are:
//! - the unit of work (a transaction, and what it reports once committed)
//!   and the retry loop: [`work`];
//! - the payment rule: `payments::payment_plan`; Midtrans notifications are
//!   verified in `payments` and settled, in groups, in `settle`;
//! - the allocation (read the candidate links, apply the domain's policy,
//!   write; release and backfill): `allocate`;
//! - bookings, links and session types as operators and platforms manage
//!   them: `bookings`, `links`, `session_types`.
//!
//! A crate-private function that takes `&mut Work` runs inside the
//! caller's transaction and never commits it; a public method runs a
//! transaction of its own.
#![forbid(unsafe_code)]

mod allocate;
mod bookings;
mod capacity;
mod config;
pub mod dashboard;
mod error;
mod events;
mod filter;
mod join;
mod links;
mod metrics;
mod payments;
mod platform;
mod reschedule;
mod rooms;
mod session_types;
mod settle;
mod status;
mod sweeper;
pub mod views;
mod work;

use std::sync::Arc;

use meetpool_store::Store;

pub use bookings::{AssignOutcome, BookingInput, PaymentOutcome};
pub use capacity::{Availability, DayCapacity, CAPACITY_MAX_DAYS};
pub use config::{Config, MidtransVerify};
pub use error::AppError;
pub use events::{
    decode_secret as decode_events_secret, parse_duration, parse_schedule,
    signature as event_signature, DeliveryView, EventsConfig, DEFAULT_CONCURRENCY, DEFAULT_KEEP,
    DEFAULT_RETRY_SCHEDULE, DEFAULT_TIMEOUT, DELIVERIES_MAX,
};
pub use filter::BookingQuery;
pub use join::JoinView;
pub use links::LinkInput;
pub use meetpool_store::{ActionKind, ProviderAction};
pub use payments::NotificationOutcome;
pub use reschedule::RescheduleInput;
pub use rooms::{
    endpoint as provider_endpoint, room_of, GoogleConfig, Provider, RoomCheck, RoomsConfig,
    ZoomConfig, DEFAULT_ROOMS_RETRY,
};
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
    events: Arc<events::Events>,
    rooms: Arc<rooms::Rooms>,
}

impl App {
    pub fn new(store: Arc<dyn Store>, config: Config) -> Self {
        Self {
            store,
            rooms: Arc::new(rooms::Rooms::new(&config.rooms)),
            config: Arc::new(config),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(4))
                .build()
                .expect("HTTP client"),
            settler: Arc::default(),
            counters: Arc::default(),
            events: Arc::default(),
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

    /// Applies migrations and writes this configuration's settings (time
    /// zone, buffer) as the ones every replica shares: `meetpool migrate`,
    /// the way to change them.
    pub async fn prepare_database(&self) -> Result<()> {
        self.store.migrate().await?;
        self.store.configure(&self.config.db_settings()).await?;
        if self.config.events.is_some() {
            self.record_events(true).await?;
        }
        Ok(())
    }

    /// Every migration of this version is applied: checked before a
    /// command reads or writes, so that an unmigrated database says so
    /// rather than fail on a missing table.
    pub async fn check_migrated(&self) -> Result<()> {
        Ok(self.store.ready().await?)
    }

    /// Readies the database for serving: migrates it (unless another step
    /// does) and checks that this replica's settings are the database's.
    /// On a fresh database they become its settings; a replica started with
    /// other settings than the others refuses, rather than change the rules
    /// under them.
    pub async fn start_database(&self, migrate: bool) -> Result<()> {
        if migrate {
            self.store.migrate().await?;
        } else {
            self.store.ready().await?;
        }
        if self.config.events.is_some() {
            // On for every replica from now on: a replica or a migration
            // without the URL leaves it on, so that no change goes
            // unrecorded while another replica delivers (`meetpool events
            // off` turns it off).
            self.record_events(true).await?;
        }
        let mine = self.config.db_settings();
        let shared = self.store.adopt_settings(&mine).await?;
        if shared != mine {
            return Err(AppError::NotConfigured(format!(
                "this replica's settings (MEETPOOL_TIMEZONE={}, MEETPOOL_BUFFER_MINUTES={}) differ from \
                 the database's (MEETPOOL_TIMEZONE={}, MEETPOOL_BUFFER_MINUTES={}), which every replica \
                 shares. Start it with the database's settings, or change them for every replica by \
                 running `meetpool migrate` with the new ones.",
                mine.timezone, mine.buffer_minutes, shared.timezone, shared.buffer_minutes
            )));
        }
        Ok(())
    }
}
