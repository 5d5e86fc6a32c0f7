//! The storage port (the [`Store`] and [`Tx`] traits, in domain types) and
//! its two adapters: SQLite, the embedded default, and PostgreSQL, for
//! replicas. Each adapter has its own migrations, embedded in the binary.
//!
//! The adapters only read and write; every decision (which link, whether a
//! payment may apply) is taken by the caller with the domain rules. The
//! invariant that no link is double-booked is enforced by each database
//! itself, so a caller that got it wrong would get [`StoreError::Overlap`]
//! rather than a double booking.
#![forbid(unsafe_code)]

mod error;
mod model;
pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;
use jiff::Timestamp;
use meetpool_domain::{
    Booking, BookingId, EventKind, LinkCandidate, LinkId, NewBooking, PaymentStatus, SessionTypeId,
    Window,
};

pub use error::{DuplicateRoom, StoreError};
pub use model::*;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Opens the store named by a `DATABASE_URL` (`sqlite:...` or `postgres://...`).
pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Box<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Box::new(sqlite::SqliteStore::connect(url, options).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        postgres::connect(url, options).await
    } else {
        Err(StoreError::Config(
            "DATABASE_URL must start with sqlite: or postgres://".to_owned(),
        ))
    }
}

/// Enabled links that share a room (migration 0004's `room` column), listed
/// when the migration that makes rooms unique cannot be applied. One text
/// for both databases.
const DUPLICATE_ROOMS_SQL: &str = "\
    SELECT room, CAST(id AS TEXT) AS id, meeting_link FROM meeting_links_pool \
    WHERE is_available AND room IN ( \
        SELECT room FROM meeting_links_pool WHERE is_available \
        GROUP BY room HAVING count(*) > 1) \
    ORDER BY room, seq";

/// A failed migration, explained: when it failed because one room has
/// several enabled links (`duplicates`, read with [`DUPLICATE_ROOMS_SQL`]
/// after the failure), the error says which.
fn explain_migration_failure(
    failed: sqlx::migrate::MigrateError,
    duplicates: std::result::Result<Vec<(String, String, String)>, sqlx::Error>,
) -> StoreError {
    let failed = StoreError::from(failed);
    match (&failed, duplicates) {
        (StoreError::Conflict(_), Ok(rows)) if !rows.is_empty() => StoreError::DuplicateRooms(
            rows.into_iter()
                .map(|(room, link_id, meeting_link)| DuplicateRoom {
                    room,
                    link_id,
                    meeting_link,
                })
                .collect(),
        ),
        _ => failed,
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Applies the embedded migrations that are not applied yet.
    async fn migrate(&self) -> Result<()>;

    /// Writes the settings the database itself needs (the time zone that
    /// fills in bookings inserted by plain SQL, the idle buffer its overlap
    /// check uses).
    async fn configure(&self, settings: &DbSettings) -> Result<()>;

    /// The database answers and is migrated.
    async fn ready(&self) -> Result<()>;

    /// Starts a write transaction. Everything that reads and then writes on
    /// what it read goes through one.
    async fn begin(&self) -> Result<Box<dyn Tx>>;

    async fn session_types(&self) -> Result<Vec<SessionType>>;
    async fn session_type(&self, id: SessionTypeId) -> Result<SessionType>;
    async fn links(&self) -> Result<Vec<Link>>;
    async fn link(&self, id: LinkId) -> Result<Link>;
    async fn booking(&self, id: BookingId) -> Result<Booking>;
    async fn booking_by_order(&self, order_id: &str) -> Result<Booking>;
    async fn bookings(&self, filter: &BookingFilter) -> Result<Vec<Booking>>;
    async fn events(&self, booking: BookingId) -> Result<Vec<Event>>;
    async fn pool_status(&self, now: Timestamp) -> Result<PoolStatus>;
    async fn recent_assignments(&self, limit: u32) -> Result<Vec<Booking>>;
    /// Paid bookings without a link that have not ended yet, oldest first.
    async fn waiting(&self, limit: u32) -> Result<Vec<Booking>>;
    /// Every pair of bookings that hold the same link at overlapping times
    /// (always empty unless the invariant broke).
    async fn overlapping_pairs(&self) -> Result<Vec<(BookingId, BookingId)>>;
}

#[async_trait]
pub trait Tx: Send {
    async fn commit(self: Box<Self>) -> Result<()>;

    /// Serialises this transaction with every other one that assigns a link
    /// to a session overlapping `busy` (PostgreSQL: advisory locks on the
    /// hours it touches; SQLite: already serialised by its write lock).
    async fn lock_window(&mut self, busy: Window) -> Result<()>;

    async fn insert_session_type(&mut self, st: &SessionType) -> Result<()>;
    async fn update_session_type(&mut self, st: &SessionType) -> Result<()>;

    /// Fails with [`StoreError::Conflict`] when the URL is already in the pool.
    async fn insert_link(&mut self, link: &NewLink) -> Result<Link>;
    async fn update_link(&mut self, id: LinkId, patch: &LinkPatch) -> Result<Link>;
    /// Fails with [`StoreError::Conflict`] while bookings reference the link.
    async fn delete_link(&mut self, id: LinkId) -> Result<()>;

    /// Fails with [`StoreError::Conflict`] on a duplicate `order_id`.
    async fn insert_booking(&mut self, booking: &NewBooking) -> Result<()>;
    /// Reads a booking and locks it until the transaction ends.
    async fn lock_booking(&mut self, id: BookingId) -> Result<Booking>;
    async fn lock_booking_by_order(&mut self, order_id: &str) -> Result<Booking>;
    async fn set_payment(
        &mut self,
        id: BookingId,
        status: PaymentStatus,
        transaction_id: Option<&str>,
    ) -> Result<()>;

    /// Every enabled link, in creation order, with the busy windows of at
    /// most two of its sessions (other than `except`'s): the last one that
    /// starts before `want` starts, and the first one that starts at or
    /// after it. Sessions on a link never overlap, so these two tell
    /// whether the link is free for `want` and how tightly `want` fits.
    async fn candidates(&mut self, want: Window, except: BookingId) -> Result<Vec<LinkCandidate>>;
    /// Reads ahead, in one round trip, what [`Tx::candidates`] will be
    /// asked for each of `wants` (a window and the booking looking), so that
    /// several bookings can look for links in one transaction without a read
    /// each. Until asked for, each stays current with this transaction's own
    /// assignments (busy windows of `buffer_minutes` after the session); a
    /// link taken away drops them all. Only worth it where a read costs a
    /// round trip: by default it does nothing.
    async fn prefetch_candidates(
        &mut self,
        _wants: &[(Window, BookingId)],
        _buffer_minutes: u32,
    ) -> Result<()> {
        Ok(())
    }
    /// Gives `booking` the link, or takes its link away (`None`). Fails with
    /// [`StoreError::Overlap`] when the database refuses a double booking.
    async fn set_link(&mut self, booking: BookingId, link: Option<LinkId>) -> Result<()>;
    /// A booking holding `link` whose busy window overlaps `busy`, other than
    /// `except`.
    async fn holder_overlapping(
        &mut self,
        link: LinkId,
        busy: Window,
        except: BookingId,
    ) -> Result<Option<BookingId>>;
    /// Bookings holding `link` that start at or after `from`, soonest first.
    async fn bookings_on_link_from(
        &mut self,
        link: LinkId,
        from: Timestamp,
    ) -> Result<Vec<Booking>>;
    /// Paid bookings without a link whose session overlaps `during` and has
    /// not ended by `now`, oldest booking first.
    async fn waiting_during(
        &mut self,
        during: Window,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Booking>>;

    async fn record_event(
        &mut self,
        booking: BookingId,
        kind: EventKind,
        link: Option<LinkId>,
        detail: serde_json::Value,
    ) -> Result<()>;
    /// Remembers a payment notification by its de-duplication key; `false`
    /// when it was already recorded (a duplicate).
    async fn remember_notification(&mut self, key: &str, booking: BookingId) -> Result<bool>;

    /// Locks the bookings of several payment notifications, to settle them
    /// in this one transaction, and remembers their de-duplication keys.
    /// Returns, for each item in order, its booking as it is now and whether
    /// its key is new (only the first of two equal keys is), or `None` when
    /// no booking has its order id. Items with `lock_window` also
    /// [`Tx::lock_window`] their booking's session plus `buffer_minutes`.
    ///
    /// Every booking is locked before any window, and the windows in order of
    /// their start, so two transactions doing this never wait for each other
    /// in a cycle.
    async fn lock_for_notifications(
        &mut self,
        items: &[NotificationKey<'_>],
        buffer_minutes: u32,
    ) -> Result<Vec<Option<(Booking, bool)>>> {
        let mut found = Vec::with_capacity(items.len());
        for item in items {
            found.push(match self.lock_booking_by_order(item.order_id).await {
                Ok(booking) => Some(booking),
                Err(StoreError::NotFound) => None,
                Err(e) => return Err(e),
            });
        }
        let mut windows: Vec<Window> = items
            .iter()
            .zip(&found)
            .filter(|(item, _)| item.lock_window)
            .filter_map(|(_, booking)| booking.as_ref())
            .map(|booking| booking.window.busy(buffer_minutes))
            .collect();
        windows.sort_by_key(|w| (w.start, w.end));
        for window in windows {
            self.lock_window(window).await?;
        }
        let mut out = Vec::with_capacity(items.len());
        for (item, booking) in items.iter().zip(found) {
            out.push(match booking {
                Some(booking) => {
                    let fresh = self
                        .remember_notification(item.dedup_key, booking.id)
                        .await?;
                    Some((booking, fresh))
                }
                None => None,
            });
        }
        Ok(out)
    }

    /// Applies `change` to a locked booking and returns the booking as
    /// written. Fails with [`StoreError::Overlap`] like [`Tx::set_link`].
    async fn write(&mut self, id: BookingId, change: &BookingWrite) -> Result<Booking>;

    /// Applies `change` to the locked `booking` as [`Tx::write`] does, but
    /// may hold the write back to send it with the other held writes in one
    /// statement, before this transaction's next statement of any other
    /// kind (a read included, which so sees it). What it chose is already
    /// seen by [`Tx::candidates`]. Its row comes from [`Tx::written`], as do
    /// its errors when it is sent. By default it writes at once.
    async fn hold(&mut self, booking: &Booking, change: BookingWrite) -> Result<()> {
        self.write(booking.id, &change).await.map(drop)
    }

    /// Sends the held writes, then returns every booking that
    /// [`Tx::write`] or [`Tx::hold`] wrote since the last call, as written,
    /// in the order of the writes.
    async fn written(&mut self) -> Result<Vec<Booking>>;
}
