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

mod checks;
mod error;
mod model;
mod outbox;
mod platform;
pub mod postgres;
mod rooms;
pub mod sqlite;

use std::collections::BTreeMap;

use async_trait::async_trait;
use jiff::Timestamp;
use meetpool_domain::room::{is_safe_link, room_of};
use meetpool_domain::{
    Booking, BookingId, LinkCandidate, LinkId, NewBooking, SessionTypeId, Window,
};

pub use checks::{DueChecks, PaymentCheck, PaymentChecks};
pub use error::{DuplicateRoom, StoreError};
pub use model::{
    Backend, BookingChange, BookingFilter, ConnectOptions, Coordination, DbSettings, Event, Link,
    LinkChange, LinkPatch, LockedOrder, NewEvent, NewLink, OrderClaim, PaidWindow, PaymentChange,
    PoolStatus, Schedule, SessionType,
};
pub use outbox::{Attempt, Claim, DeliveryStatus, OutboundEvent, Outbox, OutboxStats};
pub use platform::{
    ClaimedChange, PlatformChange, PlatformChanges, PlatformProblem, ProblemReason, Wakeups,
};
pub use rooms::{
    ActionKind, ActionResult, EndedSession, NewAction, ProviderAction, ProviderActions,
};

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

/// Whether the migrations `applied` (the highest version applied, read
/// from the migrator's table) are all of `migrator`'s.
fn migrated(
    migrator: &sqlx::migrate::Migrator,
    applied: std::result::Result<Option<i64>, sqlx::Error>,
) -> Result<()> {
    let latest = migrator.iter().map(|m| m.version).max();
    match applied {
        Ok(Some(version)) if Some(version) > latest => Err(StoreError::NewerSchema {
            database: version,
            binary: latest.unwrap_or(0),
        }),
        Ok(version) if version >= latest => Ok(()),
        Ok(_) => Err(StoreError::NotMigrated),
        // No migrations table: PostgreSQL's 42P01, SQLite's "no such table".
        Err(sqlx::Error::Database(db))
            if db.code().as_deref() == Some("42P01") || db.message().contains("no such table") =>
        {
            Err(StoreError::NotMigrated)
        }
        Err(e) => Err(e.into()),
    }
}

/// Refuses, before migrating, a database that a newer meetpool migrated:
/// `applied` holds the versions applied (an error when there is no
/// migrations table yet, which is a new database).
fn not_newer<E>(
    migrator: &sqlx::migrate::Migrator,
    applied: &std::result::Result<Vec<i64>, E>,
) -> Result<()> {
    let latest = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    match applied.as_ref().ok().and_then(|v| v.iter().max()) {
        Some(&database) if database > latest => Err(StoreError::NewerSchema {
            database,
            binary: latest,
        }),
        _ => Ok(()),
    }
}

/// An event `e` that moved booking `b` off a link it no longer holds (a
/// release from another link, or a change of link), as SQL text for both
/// databases.
const MOVED: &str = "(e.kind = 'link_changed' OR (e.kind IN ('released', 'manual_released') \
     AND e.meeting_link_id <> b.meeting_link_id))";

/// The enabled links, in creation order: read before migrating, so that
/// the links a migration disables as unsafe can be reported after it, and
/// after a failed migration, to say which rooms have several links. One
/// text for both databases.
const ENABLED_LINKS_SQL: &str = "\
    SELECT CAST(id AS TEXT) AS id, meeting_link FROM meeting_links_pool \
    WHERE is_available ORDER BY seq";

/// The ids of the disabled links, read after migrating.
const DISABLED_LINKS_SQL: &str =
    "SELECT CAST(id AS TEXT) AS id FROM meeting_links_pool WHERE NOT is_available";

/// What a migration changed that an operator must hear about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Migrated {
    /// Enabled links that were not safe links (not an `https://` URL
    /// naming a host: [`meetpool_domain::room::is_safe_link`]), which the
    /// migration that makes the database refuse them (0017) disabled. Their
    /// coming sessions still hold them until moved.
    pub disabled_unsafe: Vec<UnsafeLink>,
}

/// A link disabled for not being safe to send a participant to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsafeLink {
    pub link_id: LinkId,
    pub meeting_link: String,
}

/// The enabled links of `before` that are not safe and are disabled now
/// (`disabled_now`, the ids of every disabled link): the ones the
/// migration disabled.
fn disabled_unsafe(
    before: std::result::Result<Vec<(String, String)>, sqlx::Error>,
    disabled_now: std::result::Result<Vec<String>, sqlx::Error>,
) -> Migrated {
    let (Ok(before), Ok(disabled_now)) = (before, disabled_now) else {
        // No pool before (a new database) or none after: nothing disabled.
        return Migrated::default();
    };
    let disabled_unsafe = before
        .into_iter()
        .filter(|(id, link)| !is_safe_link(link) && disabled_now.contains(id))
        .filter_map(|(id, meeting_link)| {
            Some(UnsafeLink {
                link_id: id.parse().ok()?,
                meeting_link,
            })
        })
        .collect();
    Migrated { disabled_unsafe }
}

/// A failed migration, explained: when it failed because one room has
/// several enabled links (`enabled`, read with [`ENABLED_LINKS_SQL`] after
/// the failure, grouped by the room rule of this version,
/// [`meetpool_domain::room::room_of`], which the database holds too), the
/// error says which. Links that are not safe are left out: the migration
/// disables them before it makes rooms unique.
fn explain_migration_failure(
    failed: sqlx::migrate::MigrateError,
    enabled: std::result::Result<Vec<(String, String)>, sqlx::Error>,
) -> StoreError {
    let failed = StoreError::from(failed);
    let (StoreError::Conflict(_), Ok(enabled)) = (&failed, enabled) else {
        return failed;
    };
    let mut rooms: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (id, link) in enabled.into_iter().filter(|(_, l)| is_safe_link(l)) {
        rooms.entry(room_of(&link)).or_default().push((id, link));
    }
    let duplicates: Vec<DuplicateRoom> = rooms
        .into_iter()
        .filter(|(_, links)| links.len() > 1)
        .flat_map(|(room, links)| {
            links
                .into_iter()
                .map(move |(link_id, meeting_link)| DuplicateRoom {
                    room: room.clone(),
                    link_id,
                    meeting_link,
                })
        })
        .collect();
    if duplicates.is_empty() {
        failed
    } else {
        StoreError::DuplicateRooms(duplicates)
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Connections of the pool checked out right now: near the pool's
    /// size, requests queue for one.
    fn connections_in_use(&self) -> u32;

    /// Applies the embedded migrations that are not applied yet, and says
    /// what they changed that an operator must hear about. Nothing changes
    /// when one fails ([`StoreError::DuplicateRooms`] says why when the pool
    /// holds one room under several enabled links).
    async fn migrate(&self) -> Result<Migrated>;

    /// The settings the database holds, once chosen (`None` on a fresh
    /// database).
    async fn stored_settings(&self) -> Result<Option<DbSettings>>;

    /// Bookings whose session has not ended by `now`, whatever their state.
    async fn coming(&self, now: Timestamp) -> Result<Vec<Booking>>;

    /// Changes the settings the database itself needs (the time zone that
    /// fills in bookings inserted by plain SQL, the idle buffer its overlap
    /// check uses) and, in the same transaction, gives each booking of
    /// `moved` its window in the new zone and every coming session its busy
    /// range with the new buffer. [`StoreError::Overlap`], changing
    /// nothing, when a link would then hold overlapping sessions.
    async fn change_settings(
        &self,
        settings: &DbSettings,
        moved: &[(BookingId, Window)],
        now: Timestamp,
    ) -> Result<()>;

    /// Writes `settings` if none were chosen yet (a fresh database), in one
    /// statement, and returns the settings the database holds afterwards:
    /// two replicas starting at once cannot both choose.
    async fn adopt_settings(&self, settings: &DbSettings) -> Result<DbSettings>;

    /// The database answers and every embedded migration is applied
    /// ([`StoreError::NotMigrated`] otherwise).
    async fn ready(&self) -> Result<()>;

    /// The outbound event log.
    fn outbox(&self) -> &dyn Outbox;

    /// The queue of what meetpool asks meeting providers to do.
    fn provider_actions(&self) -> &dyn ProviderActions;
    /// The pending payments reconciliation asks the gateway about.
    fn payment_checks(&self) -> &dyn PaymentChecks;

    /// Starts a write transaction. Everything that reads and then writes on
    /// what it read goes through one.
    async fn begin(&self) -> Result<Box<dyn Tx>>;

    async fn session_types(&self) -> Result<Vec<SessionType>>;
    async fn session_type(&self, id: SessionTypeId) -> Result<SessionType>;
    async fn links(&self) -> Result<Vec<Link>>;
    async fn link(&self, id: LinkId) -> Result<Link>;
    async fn booking(&self, id: BookingId) -> Result<Booking>;
    async fn booking_by_order(&self, order_id: &str) -> Result<Booking>;
    /// The booking whose participants hold this join token.
    async fn booking_by_join_token(&self, token: &str) -> Result<Booking>;
    async fn bookings(&self, filter: &BookingFilter) -> Result<Vec<Booking>>;
    async fn events(&self, booking: BookingId) -> Result<Vec<Event>>;
    async fn pool_status(&self, now: Timestamp) -> Result<PoolStatus>;
    async fn recent_assignments(&self, limit: u32) -> Result<Vec<Booking>>;
    /// Paid bookings without a link that have not ended yet, oldest first.
    async fn waiting(&self, limit: u32) -> Result<Vec<Booking>>;
    /// Every enabled link, in creation order, with the busy windows of its
    /// sessions that overlap `during`: the pool's free time over a stretch,
    /// in one range read (availability).
    async fn link_sessions(&self, during: Window) -> Result<Vec<LinkCandidate>>;
    /// Availability's read: the duration of `session_type` (`None` when
    /// there is no such type) and, as [`Store::link_sessions`], the links'
    /// busy windows over the busy time of sessions of that type starting
    /// from `starts.start` to `starts.end` (each one's end, and
    /// `buffer_minutes`, included). One statement where the database
    /// allows it; here, two reads.
    async fn sessions_of_type(
        &self,
        session_type: SessionTypeId,
        starts: Window,
        buffer_minutes: u32,
    ) -> Result<Option<(i32, Vec<LinkCandidate>)>> {
        let duration = match self.session_type(session_type).await {
            Ok(st) => st.duration,
            Err(StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        let end = starts.end
            + jiff::SignedDuration::from_mins(i64::from(duration) + i64::from(buffer_minutes));
        let links = self.link_sessions(Window::new(starts.start, end)).await?;
        Ok(Some((duration, links)))
    }
    /// The sessions of paid bookings that overlap `during`, counted by
    /// window (in no particular order): at busy times many sessions share
    /// one, and the capacity report needs only how many. Read from the
    /// counts the database keeps by window as bookings are written.
    async fn paid_sessions(&self, during: Window) -> Result<Vec<PaidWindow>>;
    /// How many links are enabled.
    async fn enabled_links(&self) -> Result<u32>;
    /// Keeps [`Store::paid_sessions`] a short read however many bookings
    /// were written: merges the paid-session counts of up to `windows`
    /// windows written since the last call into one count each, and says
    /// how many it merged (0 once none is left, and always where the
    /// counts are kept merged as they are written, as on SQLite). What
    /// `paid_sessions` answers is the same before and after.
    async fn fold_paid_windows(&self, _windows: u32) -> Result<u64> {
        Ok(0)
    }
    /// Every pair of bookings that hold the same link at overlapping times
    /// (always empty unless the invariant broke).
    async fn overlapping_pairs(&self) -> Result<Vec<(BookingId, BookingId)>>;
    /// Bookings starting within `during` that hold a link and were moved
    /// there from another one at or after `since`.
    async fn moved_since(&self, during: Window, since: Timestamp) -> Result<Vec<BookingId>>;

    /// The platform's side of a database adopted in place, where this
    /// store can be adopted (PostgreSQL); `None` elsewhere.
    fn platform(&self) -> Option<&dyn PlatformChanges> {
        None
    }
}

/// One write transaction, in domain terms. Each method is one statement
/// (one round trip on PostgreSQL) unless it says otherwise; batching is the
/// caller's, by the calls that take several items ([`Tx::lock_orders`],
/// [`Tx::candidates`], [`Tx::write_bookings`]). Dropping a transaction
/// without [`Tx::commit`] rolls it back.
#[async_trait]
pub trait Tx: Send {
    async fn commit(self: Box<Self>) -> Result<()>;

    /// Makes every other transaction that assigns a link to a session
    /// overlapping `busy` wait until this one ends, so that what
    /// [`Tx::candidates`] reads for that time stays true until commit and
    /// concurrent assignments queue instead of colliding. This is about
    /// how often writes collide, not whether links are double-booked: the
    /// database's own overlap check guarantees that, and a store may not
    /// wait at all (PostgreSQL's `constraint-only` coordination), leaving
    /// the loser of a race [`StoreError::Overlap`] to retry.
    async fn lock_window(&mut self, busy: Window) -> Result<()>;

    async fn insert_session_type(&mut self, st: &SessionType) -> Result<()>;
    async fn update_session_type(&mut self, st: &SessionType) -> Result<()>;

    /// Fails with [`StoreError::Conflict`] when the link's room is already
    /// in the pool.
    async fn insert_link(&mut self, link: &NewLink) -> Result<Link>;
    async fn update_link(&mut self, id: LinkId, patch: &LinkPatch) -> Result<Link>;
    /// Fails with [`StoreError::Conflict`] while bookings reference the link.
    async fn delete_link(&mut self, id: LinkId) -> Result<()>;

    /// Fails with [`StoreError::Conflict`] on a duplicate `order_id`.
    async fn insert_booking(&mut self, booking: &NewBooking) -> Result<()>;
    /// Reads a booking and locks it until the transaction ends.
    async fn lock_booking(&mut self, id: BookingId) -> Result<Booking>;

    /// Locks the bookings of several orders and claims each one's
    /// notification id. Returns, for each claim in order, its booking as it
    /// is now and whether the claim is the id's first, or `None` when no
    /// booking has the order id. Claims with `lock_window` also
    /// [`Tx::lock_window`] their booking's session plus `buffer_minutes`.
    ///
    /// Every booking is locked before any window, and the windows in order
    /// of their start, so two transactions doing this never wait for each
    /// other in a cycle.
    async fn lock_orders(
        &mut self,
        claims: &[OrderClaim<'_>],
        buffer_minutes: u32,
    ) -> Result<Vec<Option<LockedOrder>>>;

    /// For each of `wants` (a window, and the booking looking for a link),
    /// every enabled link in creation order with the busy windows of at
    /// most two of its sessions (other than the looking booking's): the last
    /// one that starts before the window starts, and the first one that
    /// starts at or after it. Sessions on a link never overlap, so these two
    /// tell whether the link is free for the window and how tightly it fits.
    async fn candidates(
        &mut self,
        wants: &[(Window, BookingId)],
    ) -> Result<Vec<Vec<LinkCandidate>>>;

    /// A booking holding `link` whose busy window overlaps `busy`, other than
    /// `except`.
    async fn holder_overlapping(
        &mut self,
        link: LinkId,
        busy: Window,
        except: BookingId,
    ) -> Result<Option<BookingId>>;
    /// Bookings holding a link whose session starts before `during` ends
    /// and ends after a day before it starts (a superset of those whose busy
    /// window overlaps it, buffer included), soonest first.
    async fn linked_during(&mut self, during: Window) -> Result<Vec<Booking>>;
    /// Bookings holding `link` that start at or after `from`, soonest first.
    async fn bookings_on_link_from(
        &mut self,
        link: LinkId,
        from: Timestamp,
    ) -> Result<Vec<Booking>>;
    /// Paid bookings without a link whose session overlaps `during` and has
    /// not ended by `now`, oldest booking first. Locked; bookings another
    /// transaction holds are skipped.
    async fn waiting_during(
        &mut self,
        during: Window,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Booking>>;

    /// Moves the locked booking's session to `schedule` (counting the move)
    /// and changes its link as `link` says, in one write: the database
    /// checks the new window on the link it ends up with. Returns the
    /// booking as written.
    async fn reschedule(
        &mut self,
        id: BookingId,
        schedule: &Schedule,
        link: LinkChange,
    ) -> Result<Booking>;

    /// Takes the links back from unpaid bookings whose hold expired by
    /// `now` (only those whose busy window overlaps `during`, if given):
    /// each booking and the link it had.
    async fn release_expired_holds(
        &mut self,
        during: Option<Window>,
        now: Timestamp,
    ) -> Result<Vec<(BookingId, LinkId)>>;

    /// Adds to a booking's audit trail without changing the booking.
    async fn record_event(&mut self, booking: BookingId, event: &NewEvent) -> Result<()>;

    /// Applies each change to its locked booking and returns the bookings as
    /// written, in order: several bookings in one statement, each booking at
    /// most once (a second change to one booking goes in a later call).
    /// Fails with [`StoreError::Overlap`] when the database refuses a
    /// double booking.
    async fn write_bookings(
        &mut self,
        changes: &[(BookingId, &BookingChange)],
    ) -> Result<Vec<Booking>>;

    /// [`Tx::write_bookings`] for one booking.
    async fn write(&mut self, id: BookingId, change: &BookingChange) -> Result<Booking> {
        self.write_bookings(&[(id, change)])
            .await?
            .pop()
            .ok_or(StoreError::NotFound)
    }
}
