//! The SQLite adapter: the embedded, zero-set-up default.
//!
//! Writes are serialised twice over: inside the process by an async mutex
//! (so waiting writers queue fairly instead of polling SQLite's lock), and
//! across processes (`meetpool` CLI next to a running server) by
//! `BEGIN IMMEDIATE`, which takes SQLite's write lock before the first read.
//! A transaction therefore reads exactly what it then writes on.
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use meetpool_domain::{Booking, BookingId, LinkCandidate, LinkId, SessionTypeId, Window};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use tokio::sync::Mutex;

use crate::error::Kind;
use crate::{
    Backend, BookingFilter, ConnectOptions, DbSettings, Event, Link, PaidWindow, PoolStatus,
    Result, SessionType, Store, StoreError, Tx,
};

mod reads;
mod rows;
mod sql;

use rows::{booking_row, ts_out};
use sql::BOOKING_SELECT;
pub use sql::CANDIDATES_SQL;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// Sorts SQLite's refusals by extended result code: busy or locked (5, 6,
/// 261, 262, 517) is worth another try; a uniqueness (2067, 1555) or
/// reference (787, and 1811 for ON DELETE RESTRICT) refusal is a conflict;
/// the double-booking trigger's abort says so in its message.
pub(crate) fn classify(db: &dyn sqlx::error::DatabaseError) -> Kind {
    let msg = db.message();
    if msg.contains("meetpool: double booking") {
        return Kind::Overlap;
    }
    // Migration 0017's triggers: SQLite's CHECK on a pool link, and the
    // room's uniqueness when a write would otherwise skip it.
    if msg.contains("meetpool: unsafe link") {
        return Kind::Refused(msg.to_owned());
    }
    if msg.contains("meetpool: duplicate room") {
        return Kind::Conflict("meeting_links_pool.room".to_owned());
    }
    match db.code().unwrap_or_default().as_ref() {
        "5" | "6" | "261" | "262" | "517" => Kind::Retry,
        // SQLITE_READONLY and its extended codes.
        "8" | "264" | "520" | "776" | "1032" | "1288" => Kind::ReadOnly,
        // "UNIQUE constraint failed: bookings.order_id" -> "bookings.order_id"
        "2067" | "1555" => Kind::Conflict(msg.rsplit(": ").next().unwrap_or("unique").to_owned()),
        "787" | "1811" if msg.contains("FOREIGN KEY") => Kind::Conflict("referenced".into()),
        // SQLITE_CONSTRAINT_CHECK, SQLITE_CONSTRAINT_NOTNULL, as on PostgreSQL.
        "275" | "1299" => Kind::Refused(msg.to_owned()),
        _ => Kind::Other,
    }
}

pub struct SqliteStore {
    pool: SqlitePool,
    write_lock: Arc<Mutex<()>>,
}

impl SqliteStore {
    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Self> {
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("bad sqlite URL: {e}")))?;
        // `sqlite:` alone (or `sqlite::memory:`) is a database in memory:
        // each connection would see its own, and all is lost on exit.
        let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
        let path = path.split('?').next().unwrap_or_default();
        if path.is_empty() || path == ":memory:" {
            return Err(StoreError::Config(format!(
                "DATABASE_URL {url:?} names no database file: write sqlite:PATH, for example \
                 sqlite:meetpool.db"
            )));
        }
        let connect = connect
            .create_if_missing(options.create_if_missing)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(2))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await?;
        Ok(Self {
            pool,
            write_lock: Arc::new(Mutex::new(())),
        })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn connections_in_use(&self) -> u32 {
        // Both read without a lock, so they may disagree for a moment.
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        self.pool.size().saturating_sub(idle)
    }

    async fn migrate(&self) -> Result<crate::Migrated> {
        let before = sqlx::query_as(crate::ENABLED_LINKS_SQL)
            .fetch_all(&self.pool)
            .await;
        // On a connection of its own, closed after a failure: the migrator
        // holds a session lock that it does not release when a migration
        // fails, and a pooled connection would keep it, stalling every
        // later migration on this database.
        let mut conn = self.pool.acquire().await?;
        let applied: std::result::Result<Vec<i64>, _> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&mut *conn)
                .await;
        crate::not_newer(&MIGRATOR, &applied)?;
        let Err(failed) = MIGRATOR.run_direct(&mut *conn).await else {
            drop(conn);
            let after = sqlx::query_scalar(crate::DISABLED_LINKS_SQL)
                .fetch_all(&self.pool)
                .await;
            return Ok(crate::disabled_unsafe(before, after));
        };
        conn.close_on_drop();
        drop(conn);
        let enabled = sqlx::query_as(crate::ENABLED_LINKS_SQL)
            .fetch_all(&self.pool)
            .await;
        Err(crate::explain_migration_failure(failed, enabled))
    }

    async fn stored_settings(&self) -> Result<Option<DbSettings>> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT timezone, buffer_minutes FROM meetpool_settings WHERE id = 1 AND chosen",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(timezone, buffer_minutes)| {
            Ok(DbSettings {
                timezone,
                buffer_minutes: u32::try_from(buffer_minutes).map_err(StoreError::corrupt)?,
            })
        })
        .transpose()
    }

    async fn coming(&self, now: Timestamp) -> Result<Vec<Booking>> {
        let rows = sqlx::query(&format!(
            "{BOOKING_SELECT} WHERE b.ends_at > ? ORDER BY b.starts_at"
        ))
        .bind(ts_out(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(booking_row).collect()
    }

    async fn change_settings(
        &self,
        settings: &DbSettings,
        moved: &[(BookingId, Window)],
        now: Timestamp,
    ) -> Result<()> {
        let _guard = self.write_lock.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "UPDATE meetpool_settings SET timezone = ?, buffer_minutes = ?, chosen = 1 WHERE id = 1",
        )
        .bind(&settings.timezone)
        .bind(i64::from(settings.buffer_minutes))
        .execute(&mut *tx)
        .await?;
        for (id, window) in moved {
            sqlx::query("UPDATE bookings SET starts_at = ?, ends_at = ? WHERE id = ?")
                .bind(ts_out(window.start))
                .bind(ts_out(window.end))
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        // The overlap trigger checks a row when it is written; a new buffer
        // is checked here for every coming session at once.
        let clash: Option<String> = sqlx::query_scalar(
            "SELECT a.id FROM bookings a \
             JOIN bookings b ON a.meeting_link_id = b.meeting_link_id AND a.id < b.id \
             CROSS JOIN meetpool_settings s \
             WHERE s.id = 1 AND a.meeting_link_id IS NOT NULL AND a.ends_at > ?1 AND b.ends_at > ?1 \
               AND a.starts_at < datetime(b.ends_at, '+' || s.buffer_minutes || ' minutes') \
               AND b.starts_at < datetime(a.ends_at, '+' || s.buffer_minutes || ' minutes') \
             LIMIT 1",
        )
        .bind(ts_out(now))
        .fetch_optional(&mut *tx)
        .await?;
        if clash.is_some() {
            return Err(StoreError::Overlap);
        }
        tx.commit().await?;
        Ok(())
    }

    async fn adopt_settings(&self, settings: &DbSettings) -> Result<DbSettings> {
        let _guard = self.write_lock.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "UPDATE meetpool_settings SET timezone = ?, buffer_minutes = ?, chosen = 1 \
             WHERE id = 1 AND NOT chosen",
        )
        .bind(&settings.timezone)
        .bind(settings.buffer_minutes as i64)
        .execute(&mut *tx)
        .await?;
        let (timezone, buffer_minutes): (String, i64) =
            sqlx::query_as("SELECT timezone, buffer_minutes FROM meetpool_settings WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(DbSettings {
            timezone,
            buffer_minutes: u32::try_from(buffer_minutes).map_err(StoreError::corrupt)?,
        })
    }

    async fn ready(&self) -> Result<()> {
        let applied = sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.pool)
            .await;
        crate::migrated(&MIGRATOR, applied)
    }

    fn outbox(&self) -> &dyn crate::Outbox {
        self
    }

    fn provider_actions(&self) -> &dyn crate::ProviderActions {
        self
    }

    fn payment_checks(&self) -> &dyn crate::PaymentChecks {
        self
    }

    async fn begin(&self) -> Result<Box<dyn Tx>> {
        let guard = self.write_lock.clone().lock_owned().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(Box::new(SqliteTx { tx, _guard: guard }))
    }

    async fn session_types(&self) -> Result<Vec<SessionType>> {
        SqliteStore::session_types(self).await
    }

    async fn session_type(&self, id: SessionTypeId) -> Result<SessionType> {
        SqliteStore::session_type(self, id).await
    }

    async fn links(&self) -> Result<Vec<Link>> {
        SqliteStore::links(self).await
    }

    async fn link(&self, id: LinkId) -> Result<Link> {
        SqliteStore::link(self, id).await
    }

    async fn booking(&self, id: BookingId) -> Result<Booking> {
        SqliteStore::booking(self, id).await
    }

    async fn booking_by_order(&self, order_id: &str) -> Result<Booking> {
        SqliteStore::booking_by_order(self, order_id).await
    }

    async fn booking_by_join_token(&self, token: &str) -> Result<Booking> {
        SqliteStore::booking_by_join_token(self, token).await
    }

    async fn bookings(&self, f: &BookingFilter) -> Result<Vec<Booking>> {
        SqliteStore::bookings(self, f).await
    }

    async fn events(&self, booking: BookingId) -> Result<Vec<Event>> {
        SqliteStore::events(self, booking).await
    }

    async fn pool_status(&self, now: Timestamp) -> Result<PoolStatus> {
        SqliteStore::pool_status(self, now).await
    }

    async fn recent_assignments(&self, limit: u32) -> Result<Vec<Booking>> {
        SqliteStore::recent_assignments(self, limit).await
    }

    async fn waiting(&self, limit: u32) -> Result<Vec<Booking>> {
        SqliteStore::waiting(self, limit).await
    }

    async fn link_sessions(&self, during: Window) -> Result<Vec<LinkCandidate>> {
        SqliteStore::link_sessions(self, during).await
    }

    async fn paid_sessions(&self, during: Window) -> Result<Vec<PaidWindow>> {
        SqliteStore::paid_sessions(self, during).await
    }

    async fn enabled_links(&self) -> Result<u32> {
        SqliteStore::enabled_links(self).await
    }

    async fn overlapping_pairs(&self) -> Result<Vec<(BookingId, BookingId)>> {
        SqliteStore::overlapping_pairs(self).await
    }

    async fn moved_since(&self, during: Window, since: Timestamp) -> Result<Vec<BookingId>> {
        SqliteStore::moved_since(self, during, since).await
    }
}

mod checks;
mod outbox;
mod rooms;
mod tx;
pub use tx::SqliteTx;
