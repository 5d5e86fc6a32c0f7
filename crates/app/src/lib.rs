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
mod reconcile;
mod reschedule;
mod rooms;
mod session_types;
mod settle;
mod status;
mod sweeper;
pub mod views;
mod work;

use std::sync::Arc;

use meetpool_store::{DbSettings, Store, StoreError};

pub use bookings::{AssignOutcome, BookingInput, PaymentOutcome};
pub use capacity::{Availability, DayCapacity, CAPACITY_MAX_DAYS};
pub use config::{Config, MidtransVerify};
pub use error::AppError;
pub use events::{
    decode_secret as decode_events_secret, parse_duration, parse_schedule,
    signature as event_signature, DeliveryView, EventsConfig, DEFAULT_CONCURRENCY, DEFAULT_KEEP,
    DEFAULT_RETRY_SCHEDULE, DEFAULT_TIMEOUT, DELIVERIES_MAX,
};
pub use filter::{BookingPage, BookingQuery};
pub use join::JoinView;
pub use links::LinkInput;
pub use meetpool_store::PlatformProblem;
pub use meetpool_store::{ActionKind, ProviderAction};
pub use payments::NotificationOutcome;
pub use reconcile::{parse_reconcile_schedule, CheckView, DEFAULT_RECONCILE_SCHEDULE};
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
    settings_watch: Arc<work::SettingsWatch>,
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
            settings_watch: Arc::default(),
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

    /// Applies migrations and makes this configuration's settings (time
    /// zone, buffer) the database's: `meetpool migrate`. On a fresh
    /// database they become its settings. Settings the database already
    /// holds belong to the install: different ones are refused, saying how
    /// many coming bookings would move, unless `change_settings`, which
    /// moves them in the same transaction (every replica then follows).
    /// What the migrations changed that the operator must hear about is
    /// returned: links disabled for not being safe links, whose coming
    /// sessions have been moved.
    pub async fn prepare_database(
        &self,
        change_settings: bool,
    ) -> Result<meetpool_store::Migrated> {
        let migrated = self.store.migrate().await?;
        let mine = self.config.db_settings();
        let held = self.store.adopt_settings(&mine).await?;
        if held != mine {
            let now = jiff::Timestamp::now();
            let coming = self.store.coming(now).await?;
            if !change_settings {
                return Err(AppError::NotConfigured(format!(
                    "the database's settings are MEETPOOL_TIMEZONE={} and MEETPOOL_BUFFER_MINUTES={}, \
                     not {} and {}: changing them would move {} coming booking{}. Run without \
                     these settings to keep the database's, or `meetpool migrate --change-settings` \
                     to change them for every replica",
                    held.timezone,
                    held.buffer_minutes,
                    mine.timezone,
                    mine.buffer_minutes,
                    coming.len(),
                    if coming.len() == 1 { "" } else { "s" },
                )));
            }
            self.change_settings(&held, &coming, now).await?;
        }
        if self.config.events.is_some() {
            self.record_events(true).await?;
        }
        self.move_off_unsafe_links(&migrated).await?;
        Ok(migrated)
    }

    /// Changes the database's settings from `held` to this configuration's,
    /// each coming booking keeping its local date and time (so its instant
    /// moves with the zone) and its length.
    async fn change_settings(
        &self,
        held: &DbSettings,
        coming: &[meetpool_domain::Booking],
        now: jiff::Timestamp,
    ) -> Result<()> {
        let mut moved = Vec::new();
        if held.timezone != self.config.timezone_name {
            for b in coming {
                let slot = meetpool_domain::time::LocalSlot {
                    date: b.booking_date,
                    time: b.booking_time,
                };
                let start = slot.start(&self.config.timezone).map_err(|e| {
                    AppError::NotConfigured(format!(
                        "booking {} ({}) cannot move to {}: {e}; move it first",
                        b.id, b.order_id, self.config.timezone_name
                    ))
                })?;
                let length = b.window.end.duration_since(b.window.start);
                let end = start.checked_add(length).map_err(|_| {
                    AppError::NotConfigured(format!("booking {} ends out of range", b.id))
                })?;
                moved.push((b.id, meetpool_domain::Window::new(start, end)));
            }
        }
        match self
            .store
            .change_settings(&self.config.db_settings(), &moved, now)
            .await
        {
            Err(StoreError::Overlap) => Err(AppError::NotConfigured(
                "with the new settings, some link would hold overlapping sessions: nothing was \
                 changed. Move or release the sessions that would collide first"
                    .to_owned(),
            )),
            other => Ok(other?),
        }
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
            let migrated = self.store.migrate().await?;
            self.move_off_unsafe_links(&migrated).await?;
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
                 shares. Start it without them (or with the database's), or change them for every \
                 replica by running `meetpool migrate --change-settings` with the new ones.",
                mine.timezone, mine.buffer_minutes, shared.timezone, shared.buffer_minutes
            )));
        }
        Ok(())
    }
}
