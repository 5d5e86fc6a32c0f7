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
use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use meetpool_domain::{
    Booking, BookingId, LinkCandidate, LinkId, NewBooking, SessionTypeId, Window,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::error::Kind;
use crate::{
    Backend, BookingChange, BookingFilter, ConnectOptions, DbSettings, Event, Link, LinkChange,
    LinkPatch, LockedOrder, NewEvent, NewLink, OrderClaim, PaidWindow, PaymentChange, PoolStatus,
    Result, Schedule, SessionType, Store, StoreError, Tx, MOVED,
};

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

/// Sessions last at most a day and the buffer is at most a day, so a busy
/// window that overlaps `[a, b)` starts after `a - LOOKBACK`.
const LOOKBACK: SignedDuration = SignedDuration::from_hours(48);

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

pub(crate) fn ts_out(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

pub(crate) fn ts_in(s: &str) -> Result<Timestamp> {
    let dt =
        DateTime::from_str(s).map_err(|e| StoreError::corrupt(format!("instant {s:?}: {e}")))?;
    dt.to_zoned(TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(|e| StoreError::corrupt(format!("instant {s:?}: {e}")))
}

fn uuid_in<T: FromStr>(s: &str) -> Result<T> {
    s.parse()
        .map_err(|_| StoreError::corrupt(format!("id {s:?}")))
}

/// The allocation's read ([`Tx::candidates`]): every enabled link with its
/// nearest session on either side of `?2` (`?1`: the booking to leave out).
/// Public so the benchmark can EXPLAIN exactly what runs.
pub const CANDIDATES_SQL: &str = "WITH near AS ( \
               SELECT l.id, l.seq, \
                 (SELECT b.id FROM bookings b WHERE b.meeting_link_id = l.id AND b.meeting_link_id IS NOT NULL AND b.id <> ?1 \
                    AND b.starts_at < ?2 ORDER BY b.starts_at DESC LIMIT 1) AS before_id, \
                 (SELECT b.id FROM bookings b WHERE b.meeting_link_id = l.id AND b.meeting_link_id IS NOT NULL AND b.id <> ?1 \
                    AND b.starts_at >= ?2 ORDER BY b.starts_at LIMIT 1) AS after_id \
               FROM meeting_links_pool l WHERE l.is_available = 1) \
             SELECT near.id, b.starts_at, \
               datetime(b.ends_at, '+' || s.buffer_minutes || ' minutes') AS busy_end \
             FROM near CROSS JOIN meetpool_settings s \
             LEFT JOIN bookings b ON b.id IN (near.before_id, near.after_id) \
             WHERE s.id = 1 \
             ORDER BY near.seq, b.starts_at";

const BOOKING_SELECT: &str = "SELECT b.id, b.order_id, b.user_id, b.expert_id, b.session_type_id, \
    b.booking_date, b.booking_time, b.price, b.payment_status, b.status, b.meeting_link_id, \
    l.meeting_link, b.starts_at, b.ends_at, b.join_token, b.payment_transaction_id, b.reschedules, b.hold_expires_at, b.created_at, b.updated_at \
    FROM bookings b LEFT JOIN meeting_links_pool l ON l.id = b.meeting_link_id";

fn booking_row(r: &SqliteRow) -> Result<Booking> {
    let link: Option<String> = r.try_get("meeting_link_id")?;
    let date: String = r.try_get("booking_date")?;
    let time: String = r.try_get("booking_time")?;
    let status: String = r.try_get("payment_status")?;
    Ok(Booking {
        id: uuid_in(r.try_get::<&str, _>("id")?)?,
        order_id: r.try_get("order_id")?,
        user_id: r.try_get("user_id")?,
        expert_id: r.try_get("expert_id")?,
        session_type_id: uuid_in(r.try_get::<&str, _>("session_type_id")?)?,
        booking_date: Date::from_str(&date)
            .map_err(|_| StoreError::corrupt(format!("date {date:?}")))?,
        booking_time: Time::from_str(&time)
            .map_err(|_| StoreError::corrupt(format!("time {time:?}")))?,
        price: r.try_get("price")?,
        payment_status: status.parse().map_err(StoreError::corrupt)?,
        status: r.try_get("status")?,
        meeting_link_id: link.as_deref().map(uuid_in).transpose()?,
        meeting_link: r.try_get("meeting_link")?,
        window: Window::new(
            ts_in(r.try_get::<&str, _>("starts_at")?)?,
            ts_in(r.try_get::<&str, _>("ends_at")?)?,
        ),
        join_token: r.try_get("join_token")?,
        payment_transaction_id: r.try_get("payment_transaction_id")?,
        reschedules: u32::try_from(r.try_get::<i64, _>("reschedules")?).unwrap_or_default(),
        hold_expires_at: r
            .try_get::<Option<String>, _>("hold_expires_at")?
            .map(|t| ts_in(&t))
            .transpose()?,
        created_at: ts_in(r.try_get::<&str, _>("created_at")?)?,
        updated_at: ts_in(r.try_get::<&str, _>("updated_at")?)?,
    })
}

fn link_row(r: &SqliteRow) -> Result<Link> {
    Ok(Link {
        id: uuid_in(r.try_get::<&str, _>("id")?)?,
        meeting_link: r.try_get("meeting_link")?,
        notes: r.try_get("notes")?,
        is_available: r.try_get("is_available")?,
        created_at: ts_in(r.try_get::<&str, _>("created_at")?)?,
        updated_at: ts_in(r.try_get::<&str, _>("updated_at")?)?,
    })
}

fn session_type_row(r: &SqliteRow) -> Result<SessionType> {
    Ok(SessionType {
        id: uuid_in(r.try_get::<&str, _>("id")?)?,
        name: r.try_get("name")?,
        duration: r.try_get("duration")?,
        price: r.try_get("price")?,
        created_at: ts_in(r.try_get::<&str, _>("created_at")?)?,
    })
}

const LINK_SELECT: &str =
    "SELECT id, meeting_link, notes, is_available, created_at, updated_at FROM meeting_links_pool";

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
        let rows = sqlx::query("SELECT * FROM session_types ORDER BY created_at, name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(session_type_row).collect()
    }

    async fn session_type(&self, id: SessionTypeId) -> Result<SessionType> {
        let row = sqlx::query("SELECT * FROM session_types WHERE id = ?")
            .bind(id.to_string())
            .fetch_one(&self.pool)
            .await?;
        session_type_row(&row)
    }

    async fn links(&self) -> Result<Vec<Link>> {
        let rows = sqlx::query(&format!("{LINK_SELECT} ORDER BY seq"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(link_row).collect()
    }

    async fn link(&self, id: LinkId) -> Result<Link> {
        let row = sqlx::query(&format!("{LINK_SELECT} WHERE id = ?"))
            .bind(id.to_string())
            .fetch_one(&self.pool)
            .await?;
        link_row(&row)
    }

    async fn booking(&self, id: BookingId) -> Result<Booking> {
        let row = sqlx::query(&format!("{BOOKING_SELECT} WHERE b.id = ?"))
            .bind(id.to_string())
            .fetch_one(&self.pool)
            .await?;
        booking_row(&row)
    }

    async fn booking_by_order(&self, order_id: &str) -> Result<Booking> {
        let row = sqlx::query(&format!("{BOOKING_SELECT} WHERE b.order_id = ?"))
            .bind(order_id)
            .fetch_one(&self.pool)
            .await?;
        booking_row(&row)
    }

    async fn booking_by_join_token(&self, token: &str) -> Result<Booking> {
        let row = sqlx::query(&format!("{BOOKING_SELECT} WHERE b.join_token = ?"))
            .bind(token)
            .fetch_one(&self.pool)
            .await?;
        booking_row(&row)
    }

    async fn bookings(&self, f: &BookingFilter) -> Result<Vec<Booking>> {
        let rows = sqlx::query(&format!(
            "{BOOKING_SELECT} WHERE (?1 IS NULL OR b.payment_status = ?1) \
             AND (?2 = 0 OR (b.payment_status = 'paid' AND b.meeting_link_id IS NULL AND b.ends_at > ?3)) \
             AND (?4 IS NULL OR (b.starts_at >= ?4 AND b.starts_at < ?6)) \
             AND (?7 IS NULL OR b.starts_at > ?7 OR (b.starts_at = ?7 AND b.id > ?8)) \
             ORDER BY b.starts_at, b.id LIMIT ?5"
        ))
        .bind(f.payment_status.map(|s| s.as_str()))
        .bind(f.unassigned)
        .bind(ts_out(Timestamp::now()))
        .bind(f.starts_within.map(|w| ts_out(w.start)))
        .bind(i64::from(f.limit))
        .bind(f.starts_within.map(|w| ts_out(w.end)))
        .bind(f.after.map(|(start, _)| ts_out(start)))
        .bind(f.after.map(|(_, id)| id.to_string()))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(booking_row).collect()
    }

    async fn events(&self, booking: BookingId) -> Result<Vec<Event>> {
        let rows = sqlx::query(
            "SELECT id, booking_id, kind, meeting_link_id, detail, created_at FROM booking_events \
             WHERE booking_id = ? ORDER BY id",
        )
        .bind(booking.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let link: Option<String> = r.try_get("meeting_link_id")?;
                let detail: String = r.try_get("detail")?;
                Ok(Event {
                    id: r.try_get("id")?,
                    booking_id: uuid_in(r.try_get::<&str, _>("booking_id")?)?,
                    kind: r.try_get("kind")?,
                    meeting_link_id: link.as_deref().map(uuid_in).transpose()?,
                    detail: serde_json::from_str(&detail).map_err(StoreError::corrupt)?,
                    created_at: ts_in(r.try_get::<&str, _>("created_at")?)?,
                })
            })
            .collect()
    }

    async fn pool_status(&self, now: Timestamp) -> Result<PoolStatus> {
        let r = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM meeting_links_pool) AS total_links, \
             (SELECT COUNT(*) FROM meeting_links_pool WHERE is_available = 1) AS available_links, \
             (SELECT COUNT(*) FROM bookings WHERE meeting_link_id IS NOT NULL AND starts_at <= ?1 AND ends_at > ?1) AS in_use_now, \
             (SELECT COUNT(*) FROM bookings WHERE payment_status = 'paid' AND meeting_link_id IS NULL AND ends_at > ?1) AS unassigned",
        )
        .bind(ts_out(now))
        .fetch_one(&self.pool)
        .await?;
        Ok(PoolStatus {
            total_links: r.try_get("total_links")?,
            available_links: r.try_get("available_links")?,
            in_use_now: r.try_get("in_use_now")?,
            unassigned_paid_bookings: r.try_get("unassigned")?,
        })
    }

    async fn recent_assignments(&self, limit: u32) -> Result<Vec<Booking>> {
        let rows = sqlx::query(&format!(
            "{BOOKING_SELECT} WHERE b.meeting_link_id IS NOT NULL ORDER BY b.assigned_at DESC LIMIT ?"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(booking_row).collect()
    }

    async fn waiting(&self, limit: u32) -> Result<Vec<Booking>> {
        let rows = sqlx::query(&format!(
            "{BOOKING_SELECT} WHERE b.payment_status = 'paid' AND b.meeting_link_id IS NULL AND b.ends_at > ? \
             ORDER BY b.created_at LIMIT ?"
        ))
        .bind(ts_out(Timestamp::now()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(booking_row).collect()
    }

    async fn link_sessions(&self, during: Window) -> Result<Vec<LinkCandidate>> {
        let rows = sqlx::query(
            "SELECT l.id, b.starts_at, \
               datetime(b.ends_at, '+' || s.buffer_minutes || ' minutes') AS busy_end \
             FROM meeting_links_pool l CROSS JOIN meetpool_settings s \
             LEFT JOIN bookings b ON b.meeting_link_id = l.id AND b.starts_at < ?2 AND b.starts_at > ?3 \
               AND datetime(b.ends_at, '+' || s.buffer_minutes || ' minutes') > ?1 \
               AND NOT (b.payment_status <> 'paid' AND b.hold_expires_at <= ?4) \
             WHERE s.id = 1 AND l.is_available = 1 \
             ORDER BY l.seq, b.starts_at",
        )
        .bind(ts_out(during.start))
        .bind(ts_out(during.end))
        .bind(ts_out(during.start - LOOKBACK))
        .bind(ts_out(Timestamp::now()))
        .fetch_all(&self.pool)
        .await?;
        links_from(&rows)
    }

    async fn paid_sessions(&self, during: Window) -> Result<Vec<PaidWindow>> {
        let rows = sqlx::query(
            "SELECT starts_at, ends_at, sessions, unlinked FROM paid_windows \
             WHERE starts_at < ?2 AND ends_at > ?1 AND starts_at > ?3 AND sessions > 0",
        )
        .bind(ts_out(during.start))
        .bind(ts_out(during.end))
        .bind(ts_out(during.start - LOOKBACK))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let start: String = r.try_get("starts_at")?;
                let end: String = r.try_get("ends_at")?;
                let count = |name: &str| -> Result<u32> {
                    u32::try_from(r.try_get::<i64, _>(name)?).map_err(StoreError::corrupt)
                };
                Ok(PaidWindow {
                    window: Window::new(ts_in(&start)?, ts_in(&end)?),
                    sessions: count("sessions")?,
                    unlinked: count("unlinked")?,
                })
            })
            .collect()
    }

    async fn enabled_links(&self) -> Result<u32> {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM meeting_links_pool WHERE is_available = 1")
                .fetch_one(&self.pool)
                .await?;
        u32::try_from(n).map_err(StoreError::corrupt)
    }

    async fn overlapping_pairs(&self) -> Result<Vec<(BookingId, BookingId)>> {
        let rows = sqlx::query(
            "SELECT a.id AS a, b.id AS b FROM bookings a \
             JOIN bookings b ON a.meeting_link_id = b.meeting_link_id AND a.id < b.id \
             CROSS JOIN meetpool_settings s \
             WHERE s.id = 1 AND a.meeting_link_id IS NOT NULL \
               AND a.starts_at < datetime(b.ends_at, '+' || s.buffer_minutes || ' minutes') \
               AND b.starts_at < datetime(a.ends_at, '+' || s.buffer_minutes || ' minutes')",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    uuid_in(r.try_get::<&str, _>("a")?)?,
                    uuid_in(r.try_get::<&str, _>("b")?)?,
                ))
            })
            .collect()
    }

    async fn moved_since(&self, during: Window, since: Timestamp) -> Result<Vec<BookingId>> {
        let rows = sqlx::query(&format!(
            "SELECT b.id FROM bookings b WHERE b.starts_at >= ? AND b.starts_at < ? \
               AND b.meeting_link_id IS NOT NULL AND EXISTS ( \
                 SELECT 1 FROM booking_events e WHERE e.booking_id = b.id \
                   AND {MOVED} AND e.created_at >= ?)"
        ))
        .bind(ts_out(during.start))
        .bind(ts_out(during.end))
        .bind(ts_out(since))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| uuid_in(r.try_get::<&str, _>("id")?))
            .collect()
    }
}

/// Rows of (`id`, `starts_at`, `busy_end`), ordered by link: each link once,
/// with the busy windows its rows name.
fn links_from(rows: &[SqliteRow]) -> Result<Vec<LinkCandidate>> {
    let mut out: Vec<LinkCandidate> = Vec::new();
    for r in rows {
        let id: LinkId = uuid_in(r.try_get::<&str, _>("id")?)?;
        if out.last().is_none_or(|c| c.id != id) {
            out.push(LinkCandidate {
                id,
                busy: Vec::new(),
            });
        }
        let start: Option<String> = r.try_get("starts_at")?;
        let end: Option<String> = r.try_get("busy_end")?;
        if let (Some(s), Some(e)) = (start, end) {
            let c = out.last_mut().expect("pushed above");
            c.busy.push(Window::new(ts_in(&s)?, ts_in(&e)?));
        }
    }
    Ok(out)
}

/// [`CANDIDATES_SQL`] for one wanted window, on any connection.
async fn candidates_for(
    conn: &mut sqlx::SqliteConnection,
    want: Window,
    except: BookingId,
) -> Result<Vec<LinkCandidate>> {
    // SQLite has no LATERAL: each neighbour is found by a correlated
    // probe of (meeting_link_id, starts_at), then joined back.
    let rows = sqlx::query(CANDIDATES_SQL)
        .bind(except.to_string())
        .bind(ts_out(want.start))
        .fetch_all(conn)
        .await?;
    links_from(&rows)
}

mod checks;
mod outbox;
mod rooms;
mod tx;
pub use tx::SqliteTx;
