//! The PostgreSQL adapter, for any number of replicas on one database.
//!
//! Transactions are plain READ COMMITTED. The exclusion constraint
//! `bookings_no_double_booking` is what guarantees that no link is
//! double-booked; the hour advisory locks of [`Tx::lock_window`] only make
//! concurrent assignments for overlapping times wait for each other instead
//! of colliding on the constraint and retrying.

use async_trait::async_trait;
use jiff::Timestamp;
use jiff_sqlx::ToSqlx;
use meetpool_domain::{
    Booking, BookingId, LinkCandidate, LinkId, NewBooking, SessionTypeId, Window,
};
use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::{PgPool, Postgres, Row, Transaction};
use uuid::Uuid;

use crate::error::Kind;
use crate::{
    Backend, BookingChange, BookingFilter, ConnectOptions, Coordination, DbSettings, Event, Link,
    LinkChange, LinkPatch, LockedOrder, NewEvent, NewLink, OrderClaim, PoolStatus, Result,
    Schedule, SessionType, Store, StoreError, Tx,
};

mod sql;

pub use sql::{
    notification_lock_sql, write_sql, CANDIDATES_SQL, LOCK_ORDERS_SQL, WRITE_BOOKINGS_SQL,
};
use sql::{BOOKING_SELECT, LINK_COLUMNS, LOCK_BOOKING_SQL, SESSION_TYPE_SELECT};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Sorts PostgreSQL's refusals by SQLSTATE, by class where the class says
/// it all: the connection lost (08), the server short of resources (53),
/// shutting down (57) or failing (58), the database or its schema gone
/// (3D000, 3F000) or not migrated (a missing table 42P01 or function 42883)
/// are all "unavailable, try later"; only a few codes are specific.
pub(crate) fn classify(db: &dyn sqlx::error::DatabaseError) -> Kind {
    let code = db.code().unwrap_or_default();
    let constraint = || db.constraint().map(str::to_owned);
    match (code.get(..2).unwrap_or_default(), code.as_ref()) {
        (_, "23P01") => Kind::Overlap,
        (_, "40P01" | "40001" | "55P03") => Kind::Retry,
        (_, "23505") => Kind::Conflict(constraint().unwrap_or_else(|| "unique".into())),
        (_, "23503") => Kind::Conflict(constraint().unwrap_or_else(|| "referenced".into())),
        ("08" | "53" | "57" | "58", _) | (_, "3D000" | "3F000" | "42P01" | "42883") => {
            Kind::Unavailable
        }
        _ => Kind::Other,
    }
}

pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Box<dyn Store>> {
    Ok(Box::new(PgStore::connect(url, options).await?))
}

pub struct PgStore {
    pool: PgPool,
    coordination: Coordination,
}

impl PgStore {
    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect(url)
            .await?;
        Ok(Self {
            pool,
            coordination: options.coordination,
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// The 0-based index of the input a row answers: its `WITH ORDINALITY`
/// number (1-based) in `col`, checked against the `len` inputs.
fn ordinal(r: &PgRow, col: &str, len: usize) -> Result<usize> {
    let n: i64 = r.try_get(col)?;
    usize::try_from(n - 1)
        .ok()
        .filter(|&i| i < len)
        .ok_or_else(|| StoreError::corrupt(format!("{col} number {n} out of range")))
}

fn ts(r: &PgRow, col: &str) -> Result<Timestamp> {
    Ok(r.try_get::<jiff_sqlx::Timestamp, _>(col)?.to_jiff())
}

fn booking_row(r: &PgRow) -> Result<Booking> {
    let status: String = r.try_get("payment_status")?;
    Ok(Booking {
        id: BookingId(r.try_get("id")?),
        order_id: r.try_get("order_id")?,
        user_id: r.try_get("user_id")?,
        expert_id: r.try_get("expert_id")?,
        session_type_id: SessionTypeId(r.try_get("session_type_id")?),
        booking_date: r.try_get::<jiff_sqlx::Date, _>("booking_date")?.to_jiff(),
        booking_time: r.try_get::<jiff_sqlx::Time, _>("booking_time")?.to_jiff(),
        price: r.try_get("price")?,
        payment_status: status.parse().map_err(StoreError::corrupt)?,
        status: r.try_get("status")?,
        meeting_link_id: r.try_get::<Option<Uuid>, _>("meeting_link_id")?.map(LinkId),
        meeting_link: r.try_get("meeting_link")?,
        window: Window::new(ts(r, "starts_at")?, ts(r, "ends_at")?),
        join_token: r.try_get("join_token")?,
        payment_transaction_id: r.try_get("payment_transaction_id")?,
        reschedules: u32::try_from(r.try_get::<i32, _>("reschedules")?).unwrap_or_default(),
        hold_expires_at: r
            .try_get::<Option<jiff_sqlx::Timestamp>, _>("hold_expires_at")?
            .map(|t| t.to_jiff()),
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

fn link_row(r: &PgRow) -> Result<Link> {
    Ok(Link {
        id: LinkId(r.try_get("id")?),
        meeting_link: r.try_get("meeting_link")?,
        notes: r.try_get("notes")?,
        is_available: r.try_get("is_available")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

fn session_type_row(r: &PgRow) -> Result<SessionType> {
    Ok(SessionType {
        id: SessionTypeId(r.try_get("id")?),
        name: r.try_get("name")?,
        duration: r.try_get("duration")?,
        price: r.try_get("price")?,
        created_at: ts(r, "created_at")?,
    })
}

fn buffer(settings: &DbSettings) -> Result<i32> {
    i32::try_from(settings.buffer_minutes)
        .map_err(|_| StoreError::Config("buffer too large".into()))
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn connections_in_use(&self) -> u32 {
        // Both read without a lock, so they may disagree for a moment.
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        self.pool.size().saturating_sub(idle)
    }

    async fn migrate(&self) -> Result<()> {
        // On a connection of its own, closed after a failure: the migrator
        // holds a session lock that it does not release when a migration
        // fails, and a pooled connection would keep it, stalling every
        // later migration on this database.
        let mut conn = self.pool.acquire().await?;
        let Err(failed) = MIGRATOR.run_direct(&mut *conn).await else {
            return Ok(());
        };
        conn.close_on_drop();
        drop(conn);
        let duplicates = sqlx::query_as(crate::DUPLICATE_ROOMS_SQL)
            .fetch_all(&self.pool)
            .await;
        Err(crate::explain_migration_failure(failed, duplicates))
    }

    async fn configure(&self, settings: &DbSettings) -> Result<()> {
        // Only when something changes: an idle rewrite would still take the
        // row lock.
        sqlx::query(
            "UPDATE meetpool_settings SET timezone = $1, buffer_minutes = $2, chosen = true \
             WHERE id = 1 AND (timezone, buffer_minutes, chosen) IS DISTINCT FROM ($1, $2, true)",
        )
        .bind(&settings.timezone)
        .bind(buffer(settings)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn adopt_settings(&self, settings: &DbSettings) -> Result<DbSettings> {
        let (timezone, buffer_minutes): (String, i32) = sqlx::query_as(
            "WITH chose AS (UPDATE meetpool_settings SET timezone = $1, buffer_minutes = $2, chosen = true \
                            WHERE id = 1 AND NOT chosen RETURNING timezone, buffer_minutes) \
             SELECT timezone, buffer_minutes FROM chose \
             UNION ALL SELECT timezone, buffer_minutes FROM meetpool_settings \
               WHERE id = 1 AND NOT EXISTS (SELECT 1 FROM chose)",
        )
        .bind(&settings.timezone)
        .bind(buffer(settings)?)
        .fetch_one(&self.pool)
        .await?;
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

    async fn begin(&self) -> Result<Box<dyn Tx>> {
        let tx = self.pool.begin().await?;
        Ok(Box::new(PgTx {
            tx,
            coordination: self.coordination,
            failed: false,
            locked: Vec::new(),
        }))
    }

    async fn session_types(&self) -> Result<Vec<SessionType>> {
        let rows = sqlx::query(&format!("{SESSION_TYPE_SELECT} ORDER BY created_at, name"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(session_type_row).collect()
    }

    async fn session_type(&self, id: SessionTypeId) -> Result<SessionType> {
        let row = sqlx::query(&format!("{SESSION_TYPE_SELECT} WHERE id = $1"))
            .bind(id.0)
            .fetch_one(&self.pool)
            .await?;
        session_type_row(&row)
    }

    async fn links(&self) -> Result<Vec<Link>> {
        let rows = sqlx::query(&format!(
            "SELECT {LINK_COLUMNS} FROM meeting_links_pool ORDER BY seq"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(link_row).collect()
    }

    async fn link(&self, id: LinkId) -> Result<Link> {
        let row = sqlx::query(&format!(
            "SELECT {LINK_COLUMNS} FROM meeting_links_pool WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_one(&self.pool)
        .await?;
        link_row(&row)
    }

    async fn booking(&self, id: BookingId) -> Result<Booking> {
        let row = sqlx::query(&format!("{BOOKING_SELECT} WHERE b.id = $1"))
            .bind(id.0)
            .fetch_one(&self.pool)
            .await?;
        booking_row(&row)
    }

    async fn booking_by_order(&self, order_id: &str) -> Result<Booking> {
        let row = sqlx::query(&format!("{BOOKING_SELECT} WHERE b.order_id = $1"))
            .bind(order_id)
            .fetch_one(&self.pool)
            .await?;
        booking_row(&row)
    }

    async fn booking_by_join_token(&self, token: &str) -> Result<Booking> {
        let row = sqlx::query(&format!("{BOOKING_SELECT} WHERE b.join_token = $1"))
            .bind(token)
            .fetch_one(&self.pool)
            .await?;
        booking_row(&row)
    }

    async fn bookings(&self, f: &BookingFilter) -> Result<Vec<Booking>> {
        let rows = sqlx::query(&format!(
            "{BOOKING_SELECT} WHERE ($1::text IS NULL OR b.payment_status = $1) \
             AND (NOT $2 OR (b.payment_status = 'paid' AND b.meeting_link_id IS NULL AND b.ends_at > now())) \
             AND ($3::timestamptz IS NULL OR (b.starts_at >= $3 AND b.starts_at < $5)) \
             ORDER BY b.starts_at, b.created_at LIMIT $4"
        ))
        .bind(f.payment_status.map(|s| s.as_str()))
        .bind(f.unassigned)
        .bind(f.starts_within.map(|w| w.start.to_sqlx()))
        .bind(i64::from(f.limit))
        .bind(f.starts_within.map(|w| w.end.to_sqlx()))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(booking_row).collect()
    }

    async fn events(&self, booking: BookingId) -> Result<Vec<Event>> {
        let rows = sqlx::query(
            "SELECT id, booking_id, kind, meeting_link_id, detail::text AS detail, created_at \
             FROM booking_events WHERE booking_id = $1 ORDER BY id",
        )
        .bind(booking.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let detail: String = r.try_get("detail")?;
                Ok(Event {
                    id: r.try_get("id")?,
                    booking_id: BookingId(r.try_get("booking_id")?),
                    kind: r.try_get("kind")?,
                    meeting_link_id: r.try_get::<Option<Uuid>, _>("meeting_link_id")?.map(LinkId),
                    detail: serde_json::from_str(&detail).map_err(StoreError::corrupt)?,
                    created_at: ts(r, "created_at")?,
                })
            })
            .collect()
    }

    async fn pool_status(&self, now: Timestamp) -> Result<PoolStatus> {
        let r = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM meeting_links_pool) AS total_links, \
             (SELECT COUNT(*) FROM meeting_links_pool WHERE is_available) AS available_links, \
             (SELECT COUNT(*) FROM bookings WHERE meeting_link_id IS NOT NULL AND starts_at <= $1 AND ends_at > $1) AS in_use_now, \
             (SELECT COUNT(*) FROM bookings WHERE payment_status = 'paid' AND meeting_link_id IS NULL AND ends_at > $1) AS unassigned",
        )
        .bind(now.to_sqlx())
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
            "{BOOKING_SELECT} WHERE b.meeting_link_id IS NOT NULL ORDER BY b.assigned_at DESC NULLS LAST LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(booking_row).collect()
    }

    async fn waiting(&self, limit: u32) -> Result<Vec<Booking>> {
        let rows = sqlx::query(&format!(
            "{BOOKING_SELECT} WHERE b.payment_status = 'paid' AND b.meeting_link_id IS NULL AND b.ends_at > now() \
             ORDER BY b.created_at LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(booking_row).collect()
    }

    async fn link_sessions(&self, during: Window) -> Result<Vec<LinkCandidate>> {
        // The lower bound on starts_at (sessions and buffers last at most a
        // day each) lets each link's probe use bookings_link_starts.
        let rows = sqlx::query(
            "SELECT l.id, lower(b.busy) AS busy_start, upper(b.busy) AS busy_end \
             FROM meeting_links_pool l \
             LEFT JOIN bookings b ON b.meeting_link_id = l.id AND b.meeting_link_id IS NOT NULL \
               AND b.starts_at < $2 AND b.starts_at > $1 - interval '2881 minutes' \
               AND b.busy && tstzrange($1, $2, '[)') \
               AND NOT (b.payment_status <> 'paid' AND b.hold_expires_at <= now()) \
             WHERE l.is_available ORDER BY l.seq, b.starts_at",
        )
        .bind(during.start.to_sqlx())
        .bind(during.end.to_sqlx())
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            add_row(&mut out, r)?;
        }
        Ok(out)
    }

    async fn paid_sessions(&self, during: Window) -> Result<Vec<(Window, bool)>> {
        // Sessions last at most a day: the lower bound on starts_at lets the
        // planner use bookings_starts.
        let rows = sqlx::query(
            "SELECT starts_at, ends_at, meeting_link_id IS NOT NULL AS linked FROM bookings \
             WHERE payment_status = 'paid' AND starts_at < $2 AND ends_at > $1 \
               AND starts_at > $1 - interval '1441 minutes'",
        )
        .bind(during.start.to_sqlx())
        .bind(during.end.to_sqlx())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    Window::new(ts(r, "starts_at")?, ts(r, "ends_at")?),
                    r.try_get("linked")?,
                ))
            })
            .collect()
    }

    async fn overlapping_pairs(&self) -> Result<Vec<(BookingId, BookingId)>> {
        let rows = sqlx::query(
            "SELECT a.id AS a, b.id AS b FROM bookings a \
             JOIN bookings b ON a.meeting_link_id = b.meeting_link_id AND a.id < b.id AND a.busy && b.busy \
             WHERE a.meeting_link_id IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((BookingId(r.try_get("a")?), BookingId(r.try_get("b")?))))
            .collect()
    }
}

/// [`CANDIDATES_SQL`]'s parameters for `wants`.
fn candidate_params(wants: &[(Window, BookingId)]) -> (Vec<Uuid>, Vec<jiff_sqlx::Timestamp>) {
    (
        wants.iter().map(|(_, id)| id.0).collect(),
        wants.iter().map(|(w, _)| w.start.to_sqlx()).collect(),
    )
}

/// [`CANDIDATES_SQL`]'s rows, for each of `n` wants in order.
fn candidates_from(rows: &[PgRow], n: usize) -> Result<Vec<Vec<LinkCandidate>>> {
    let mut out: Vec<Vec<LinkCandidate>> = vec![Vec::new(); n];
    for r in rows {
        add_row(&mut out[ordinal(r, "want", n)?], r)?;
    }
    Ok(out)
}

/// A row of (`id`, `busy_start`, `busy_end`), rows ordered by link: the
/// link once, with each busy window its rows name.
fn add_row(links: &mut Vec<LinkCandidate>, r: &PgRow) -> Result<()> {
    let id = LinkId(r.try_get("id")?);
    if links.last().is_none_or(|c| c.id != id) {
        links.push(LinkCandidate {
            id,
            busy: Vec::new(),
        });
    }
    let start: Option<jiff_sqlx::Timestamp> = r.try_get("busy_start")?;
    let end: Option<jiff_sqlx::Timestamp> = r.try_get("busy_end")?;
    if let (Some(s), Some(e)) = (start, end) {
        let c = links.last_mut().expect("pushed above");
        c.busy.push(Window::new(s.to_jiff(), e.to_jiff()));
    }
    Ok(())
}

pub struct PgTx {
    tx: Transaction<'static, Postgres>,
    coordination: Coordination,
    /// A statement failed. Unlike SQLite, PostgreSQL then refuses everything
    /// but a rollback, and answers COMMIT with a silent ROLLBACK: a caller
    /// that caught the error (a Conflict, an Overlap) and carried on must not
    /// believe its other writes were kept.
    failed: bool,
    /// Windows whose hour locks this transaction holds already.
    locked: Vec<Window>,
}

impl PgTx {
    /// Sorts a failed statement's error into the port's kinds, and
    /// remembers that the transaction can no longer commit.
    fn track<T>(&mut self, r: std::result::Result<T, sqlx::Error>) -> Result<T> {
        r.map_err(|e| {
            // fetch_one's "no row" is the driver's, not a failed statement.
            self.failed |= !matches!(e, sqlx::Error::RowNotFound);
            StoreError::classify(e)
        })
    }
}

#[async_trait]
impl Tx for PgTx {
    async fn commit(mut self: Box<Self>) -> Result<()> {
        if self.failed {
            self.tx.rollback().await?;
            tracing::warn!("commit after a failed statement: rolled back, to be retried");
            return Err(StoreError::Retry);
        }
        self.tx.commit().await?;
        Ok(())
    }

    async fn lock_window(&mut self, busy: Window) -> Result<()> {
        if self.coordination == Coordination::ConstraintOnly
            || self
                .locked
                .iter()
                .any(|w| w.start <= busy.start && busy.end <= w.end)
        {
            return Ok(());
        }
        // The hours and their order are meetpool_lock_window's (migration 0002).
        let done = sqlx::query("SELECT meetpool_lock_window(tstzrange($1, $2, '[)'))")
            .bind(busy.start.to_sqlx())
            .bind(busy.end.to_sqlx())
            .execute(&mut *self.tx)
            .await;
        self.track(done)?;
        self.locked.push(busy);
        Ok(())
    }

    async fn insert_session_type(&mut self, st: &SessionType) -> Result<()> {
        let done = sqlx::query(
            "INSERT INTO session_types (id, name, duration, price, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(st.id.0)
        .bind(&st.name)
        .bind(st.duration)
        .bind(st.price)
        .bind(st.created_at.to_sqlx())
        .execute(&mut *self.tx)
        .await;
        self.track(done)?;
        Ok(())
    }

    async fn update_session_type(&mut self, st: &SessionType) -> Result<()> {
        let done = sqlx::query(
            "UPDATE session_types SET name = $1, duration = $2, price = $3, updated_at = now() WHERE id = $4",
        )
        .bind(&st.name)
        .bind(st.duration)
        .bind(st.price)
        .bind(st.id.0)
        .execute(&mut *self.tx)
        .await;
        let done = self.track(done)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn insert_link(&mut self, link: &NewLink) -> Result<Link> {
        let row = sqlx::query(&format!(
            "INSERT INTO meeting_links_pool (id, meeting_link, notes, is_available) VALUES ($1, $2, $3, $4) \
             RETURNING {LINK_COLUMNS}"
        ))
        .bind(link.id.0)
        .bind(link.meeting_link.as_str())
        .bind(&link.notes)
        .bind(link.is_available)
        .fetch_one(&mut *self.tx)
        .await;
        let row = self.track(row)?;
        link_row(&row)
    }

    async fn update_link(&mut self, id: LinkId, patch: &LinkPatch) -> Result<Link> {
        let row = sqlx::query(&format!(
            "UPDATE meeting_links_pool SET \
               meeting_link = COALESCE($1, meeting_link), \
               notes = CASE WHEN $2 THEN $3 ELSE notes END, \
               is_available = COALESCE($4, is_available) \
             WHERE id = $5 RETURNING {LINK_COLUMNS}"
        ))
        .bind(patch.meeting_link.as_ref().map(|u| u.as_str()))
        .bind(patch.notes.is_some())
        .bind(patch.notes.clone().flatten())
        .bind(patch.is_available)
        .bind(id.0)
        .fetch_one(&mut *self.tx)
        .await;
        let row = self.track(row)?;
        link_row(&row)
    }

    async fn delete_link(&mut self, id: LinkId) -> Result<()> {
        let done = sqlx::query("DELETE FROM meeting_links_pool WHERE id = $1")
            .bind(id.0)
            .execute(&mut *self.tx)
            .await;
        let done = self.track(done)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn insert_booking(&mut self, b: &NewBooking) -> Result<()> {
        let done = sqlx::query(
            "INSERT INTO bookings (id, order_id, user_id, expert_id, session_type_id, booking_date, \
             booking_time, price, payment_status, status, starts_at, ends_at, join_token, hold_expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(b.id.0)
        .bind(b.order_id.as_str())
        .bind(&b.user_id)
        .bind(&b.expert_id)
        .bind(b.session_type_id.0)
        .bind(b.booking_date.to_sqlx())
        .bind(b.booking_time.to_sqlx())
        .bind(b.price)
        .bind(b.payment_status.as_str())
        .bind(&b.status)
        .bind(b.window.start.to_sqlx())
        .bind(b.window.end.to_sqlx())
        .bind(&b.join_token)
        .bind(b.hold_expires_at.map(|t| t.to_sqlx()))
        .execute(&mut *self.tx)
        .await;
        self.track(done)?;
        Ok(())
    }

    async fn lock_booking(&mut self, id: BookingId) -> Result<Booking> {
        let row = sqlx::query(LOCK_BOOKING_SQL)
            .bind(id.0)
            .fetch_one(&mut *self.tx)
            .await;
        let row = self.track(row)?;
        booking_row(&row)
    }

    async fn candidates(
        &mut self,
        wants: &[(Window, BookingId)],
    ) -> Result<Vec<Vec<LinkCandidate>>> {
        let (except, starts) = candidate_params(wants);
        let rows = sqlx::query(CANDIDATES_SQL)
            .bind(&except)
            .bind(&starts)
            .fetch_all(&mut *self.tx)
            .await;
        candidates_from(&self.track(rows)?, wants.len())
    }

    async fn holder_overlapping(
        &mut self,
        link: LinkId,
        busy: Window,
        except: BookingId,
    ) -> Result<Option<BookingId>> {
        let row = sqlx::query_scalar::<_, Uuid>(
            "SELECT b.id FROM bookings b \
             WHERE b.meeting_link_id = $1 AND b.id <> $2 AND b.busy && tstzrange($3, $4, '[)') \
             ORDER BY b.starts_at LIMIT 1",
        )
        .bind(link.0)
        .bind(except.0)
        .bind(busy.start.to_sqlx())
        .bind(busy.end.to_sqlx())
        .fetch_optional(&mut *self.tx)
        .await;
        let row = self.track(row)?;
        Ok(row.map(BookingId))
    }

    async fn linked_during(&mut self, during: Window) -> Result<Vec<Booking>> {
        let rows = sqlx::query(&format!(
            "{BOOKING_SELECT} WHERE b.meeting_link_id IS NOT NULL AND b.starts_at < $2 \
             AND b.ends_at > $1 - interval '1441 minutes' ORDER BY b.starts_at"
        ))
        .bind(during.start.to_sqlx())
        .bind(during.end.to_sqlx())
        .fetch_all(&mut *self.tx)
        .await;
        let rows = self.track(rows)?;
        rows.iter().map(booking_row).collect()
    }

    async fn bookings_on_link_from(
        &mut self,
        link: LinkId,
        from: Timestamp,
    ) -> Result<Vec<Booking>> {
        let rows = sqlx::query(&format!(
            "{BOOKING_SELECT} WHERE b.meeting_link_id = $1 AND b.starts_at >= $2 ORDER BY b.starts_at"
        ))
        .bind(link.0)
        .bind(from.to_sqlx())
        .fetch_all(&mut *self.tx)
        .await;
        let rows = self.track(rows)?;
        rows.iter().map(booking_row).collect()
    }

    // Locked, and skipping bookings another transaction holds: that one may
    // be refunding the booking this one is about to give a link.
    async fn waiting_during(
        &mut self,
        during: Window,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Booking>> {
        let rows = sqlx::query(&format!(
            "{BOOKING_SELECT} WHERE b.payment_status = 'paid' AND b.meeting_link_id IS NULL \
             AND b.starts_at < $1 AND b.ends_at > $2 AND b.ends_at > $3 \
             ORDER BY b.created_at LIMIT $4 \
             FOR UPDATE OF b SKIP LOCKED"
        ))
        .bind(during.end.to_sqlx())
        .bind(during.start.to_sqlx())
        .bind(now.to_sqlx())
        .bind(i64::from(limit))
        .fetch_all(&mut *self.tx)
        .await;
        let rows = self.track(rows)?;
        rows.iter().map(booking_row).collect()
    }

    async fn reschedule(
        &mut self,
        id: BookingId,
        schedule: &Schedule,
        link: LinkChange,
    ) -> Result<Booking> {
        let (set_link, new_link) = match link {
            LinkChange::Keep => (false, None),
            LinkChange::Set(l) => (true, Some(l.0)),
            LinkChange::Clear => (true, None),
        };
        let done = sqlx::query(
            "UPDATE bookings SET booking_date = $2, booking_time = $3, session_type_id = $4, \
               starts_at = $5, ends_at = $6, reschedules = reschedules + 1, \
               meeting_link_id = CASE WHEN $7 THEN $8 ELSE meeting_link_id END, \
               assigned_at = CASE WHEN NOT $7 THEN assigned_at WHEN $8::uuid IS NULL THEN NULL ELSE now() END \
             WHERE id = $1",
        )
        .bind(id.0)
        .bind(schedule.booking_date.to_sqlx())
        .bind(schedule.booking_time.to_sqlx())
        .bind(schedule.session_type_id.0)
        .bind(schedule.window.start.to_sqlx())
        .bind(schedule.window.end.to_sqlx())
        .bind(set_link)
        .bind(new_link)
        .execute(&mut *self.tx)
        .await;
        if self.track(done)?.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.lock_booking(id).await
    }

    async fn release_expired_holds(
        &mut self,
        during: Option<Window>,
        now: Timestamp,
    ) -> Result<Vec<(BookingId, LinkId)>> {
        let rows = sqlx::query(
            "WITH expired AS (SELECT id, meeting_link_id FROM bookings \
               WHERE payment_status <> 'paid' AND meeting_link_id IS NOT NULL AND hold_expires_at <= $1 \
                 AND ($2::timestamptz IS NULL OR (busy && tstzrange($2, $3, '[)'))) \
               ORDER BY id FOR UPDATE SKIP LOCKED) \
             UPDATE bookings b SET meeting_link_id = NULL, assigned_at = NULL, hold_expires_at = NULL \
             FROM expired WHERE b.id = expired.id RETURNING b.id, expired.meeting_link_id",
        )
        .bind(now.to_sqlx())
        .bind(during.map(|w| w.start.to_sqlx()))
        .bind(during.map(|w| w.end.to_sqlx()))
        .fetch_all(&mut *self.tx)
        .await;
        self.track(rows)?
            .iter()
            .map(|r| {
                Ok((
                    BookingId(r.try_get("id")?),
                    LinkId(r.try_get("meeting_link_id")?),
                ))
            })
            .collect()
    }

    async fn record_event(&mut self, booking: BookingId, event: &NewEvent) -> Result<()> {
        // sqlx's json feature is off: jsonb travels as text.
        let done = sqlx::query(
            "INSERT INTO booking_events (booking_id, kind, meeting_link_id, detail) VALUES ($1, $2, $3, $4::jsonb)",
        )
        .bind(booking.0)
        .bind(event.kind.as_str())
        .bind(event.link.map(|l| l.0))
        .bind(event.detail.to_string())
        .execute(&mut *self.tx)
        .await;
        self.track(done)?;
        Ok(())
    }

    // One round trip for the whole group: the row locks, the
    // de-duplication and the hour locks (after the row locks, as everywhere
    // else).
    async fn lock_orders(
        &mut self,
        items: &[OrderClaim<'_>],
        buffer_minutes: u32,
    ) -> Result<Vec<Option<LockedOrder>>> {
        let hour_locks = self.coordination == Coordination::HourLocks;
        let orders: Vec<&str> = items.iter().map(|i| i.order_id).collect();
        let keys: Vec<&str> = items.iter().map(|i| i.notification_id).collect();
        let lock: Vec<bool> = items.iter().map(|i| i.lock_window && hour_locks).collect();
        let rows = sqlx::query(LOCK_ORDERS_SQL)
            .bind(&orders)
            .bind(&keys)
            .bind(i32::try_from(buffer_minutes).unwrap_or(i32::MAX))
            .bind(&lock)
            .fetch_all(&mut *self.tx)
            .await;
        let rows = self.track(rows)?;
        let mut out = vec![None; items.len()];
        for r in &rows {
            let i = ordinal(r, "item", items.len())?;
            let booking = booking_row(r)?;
            if lock[i] {
                self.locked.push(booking.window.busy(buffer_minutes));
            }
            out[i] = Some(LockedOrder {
                booking,
                first_claim: r.try_get("fresh")?,
            });
        }
        Ok(out)
    }

    async fn write_bookings(
        &mut self,
        writes: &[(BookingId, &BookingChange)],
    ) -> Result<Vec<Booking>> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = writes.iter().map(|(id, _)| id.0).collect();
        let statuses: Vec<Option<&str>> = writes
            .iter()
            .map(|(_, c)| c.payment.as_ref().map(|p| p.status.as_str()))
            .collect();
        let txns: Vec<Option<&str>> = writes
            .iter()
            .map(|(_, c)| c.payment.as_ref().and_then(|p| p.transaction_id.as_deref()))
            .collect();
        let set_links: Vec<bool> = writes
            .iter()
            .map(|(_, c)| c.link != LinkChange::Keep)
            .collect();
        let links: Vec<Option<Uuid>> = writes
            .iter()
            .map(|(_, c)| match c.link {
                LinkChange::Set(l) => Some(l.0),
                LinkChange::Keep | LinkChange::Clear => None,
            })
            .collect();
        let events = writes
            .iter()
            .zip(1_i64..)
            .flat_map(|((_, c), item)| c.events.iter().map(move |e| (item, e)));
        let mut of_items = Vec::new();
        let mut kinds = Vec::new();
        let mut event_links = Vec::new();
        let mut details = Vec::new();
        for (item, e) in events {
            of_items.push(item);
            kinds.push(e.kind.as_str());
            event_links.push(e.link.map(|l| l.0));
            details.push(e.detail.to_string());
        }
        let rows = sqlx::query(WRITE_BOOKINGS_SQL)
            .bind(&ids)
            .bind(&statuses)
            .bind(&txns)
            .bind(&set_links)
            .bind(&links)
            .bind(&of_items)
            .bind(&kinds)
            .bind(&event_links)
            .bind(&details)
            .fetch_all(&mut *self.tx)
            .await;
        let rows = self.track(rows)?;
        if rows.len() != writes.len() {
            return Err(StoreError::NotFound);
        }
        // bookings_derive() has recomputed `busy`; a double booking was
        // refused by the exclusion constraint (23P01, StoreError::Overlap).
        rows.iter().map(booking_row).collect()
    }
}
