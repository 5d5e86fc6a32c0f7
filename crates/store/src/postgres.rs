//! The PostgreSQL adapter, for any number of replicas on one database.
//!
//! Transactions are plain READ COMMITTED. The exclusion constraint
//! `bookings_no_double_booking` is what guarantees that no link is
//! double-booked; the hour advisory locks of [`Tx::lock_window`] only make
//! concurrent assignments for overlapping times wait for each other instead
//! of colliding on the constraint and retrying.

use std::collections::HashMap;

use async_trait::async_trait;
use jiff::Timestamp;
use jiff_sqlx::ToSqlx;
use meetpool_domain::{
    Booking, BookingId, LinkCandidate, LinkId, NewBooking, SessionTypeId, Window,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Postgres, Row, Transaction};
use uuid::Uuid;

use crate::error::Kind;
use crate::{
    Backend, BookingChange, BookingFilter, ClaimedChange, ConnectOptions, Coordination, DbSettings,
    Event, Link, LinkChange, LinkPatch, LockedOrder, NewEvent, NewLink, OrderClaim, PaidWindow,
    PlatformProblem, PoolStatus, ProblemReason, Result, Schedule, SessionType, Store, StoreError,
    Tx, Wakeups, MOVED,
};

pub mod adoption;
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
/// are all "unavailable, try later"; a data exception (22) or a value a
/// rule refuses (23502, 23514) is the write's fault; only a few codes are
/// specific.
pub(crate) fn classify(db: &dyn sqlx::error::DatabaseError) -> Kind {
    let code = db.code().unwrap_or_default();
    let constraint = || db.constraint().map(str::to_owned);
    match (code.get(..2).unwrap_or_default(), code.as_ref()) {
        (_, "23P01") => Kind::Overlap,
        (_, "40P01" | "40001" | "55P03") => Kind::Retry,
        (_, "23505") => Kind::Conflict(constraint().unwrap_or_else(|| "unique".into())),
        (_, "23503") => Kind::Conflict(constraint().unwrap_or_else(|| "referenced".into())),
        // Data exceptions (a value of the wrong type, out of range, too
        // long), a missing value, a check: the write's values, not the
        // database, are at fault.
        ("22", _) | (_, "23502" | "23514") => Kind::Refused(db.message().to_owned()),
        ("08" | "53" | "57" | "58", _) | (_, "3D000" | "3F000" | "42P01" | "42883") => {
            Kind::Unavailable
        }
        _ => Kind::Other,
    }
}

/// The sessions holding a link whose busy time overlaps `$1` up to the
/// bound that follows (a `UNION ALL` arm after the links). No busy range is
/// longer than the settings' `longest_busy` (migration 0012), which bounds
/// the read to a range of bookings_starts. The overlap is spelt out on the
/// range's ends rather than with `&&`, which would offer the planner the
/// exclusion constraint's GiST index: on a long history it then intersects
/// that index's matches over every past session with the range, several
/// times slower than the range alone.
const SESSIONS_DURING: &str =
    "SELECT meeting_link_id, NULL, starts_at, upper(busy), NULL FROM bookings \
    WHERE meeting_link_id IS NOT NULL \
      AND starts_at > $1 - (SELECT longest_busy FROM meetpool_settings WHERE id = 1) \
      AND upper(busy) > $1 \
      AND NOT (payment_status <> 'paid' AND hold_expires_at <= now()) \
      AND starts_at <";

/// The rows of [`SESSIONS_DURING`] after the links' (and a duration's):
/// every enabled link in creation order with its sessions' busy windows,
/// and the duration if a row carried one.
fn links_with_sessions(rows: &[PgRow]) -> Result<(Option<i32>, Vec<LinkCandidate>)> {
    let mut duration = None;
    let mut links: Vec<(i64, LinkCandidate)> = Vec::new();
    let mut sessions: Vec<(Uuid, Window)> = Vec::new();
    for r in rows {
        let Some(id) = r.try_get::<Option<Uuid>, _>("link_id")? else {
            duration = r.try_get("duration")?;
            continue;
        };
        match r.try_get::<Option<i64>, _>("seq")? {
            Some(seq) => links.push((
                seq,
                LinkCandidate {
                    id: LinkId(id),
                    busy: Vec::new(),
                },
            )),
            None => sessions.push((id, Window::new(ts(r, "starts_at")?, ts(r, "busy_end")?))),
        }
    }
    links.sort_by_key(|l| l.0);
    sessions.sort_by_key(|s| s.1.start);
    let at: HashMap<Uuid, usize> = links
        .iter()
        .enumerate()
        .map(|(i, l)| (l.1.id.0, i))
        .collect();
    for (link, window) in sessions {
        // A session on a disabled link is no one's candidate.
        if let Some(&i) = at.get(&link) {
            links[i].1.busy.push(window);
        }
    }
    Ok((duration, links.into_iter().map(|l| l.1).collect()))
}

pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Box<dyn Store>> {
    Ok(Box::new(PgStore::connect(url, options).await?))
}

pub struct PgStore {
    pool: PgPool,
    coordination: Coordination,
    /// Statements are prepared once per connection and kept; not behind a
    /// transaction-mode pooler, which hands each transaction to whichever
    /// server connection is free.
    prepared: bool,
    direct_url: Option<String>,
}

/// A connection for one statement outside the use cases' transactions.
/// Behind a transaction-mode pooler it is a transaction too (rolled back
/// when dropped, so only for reads): preparing, binding and executing a
/// statement take two round trips, and only a transaction keeps both on
/// one server connection.
enum Session {
    Direct(sqlx::pool::PoolConnection<Postgres>),
    Pooled(Transaction<'static, Postgres>),
}

impl std::ops::Deref for Session {
    type Target = sqlx::PgConnection;
    fn deref(&self) -> &Self::Target {
        match self {
            Session::Direct(c) => c,
            Session::Pooled(t) => t,
        }
    }
}

impl std::ops::DerefMut for Session {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match self {
            Session::Direct(c) => c,
            Session::Pooled(t) => t,
        }
    }
}

impl PgStore {
    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Self> {
        let mut connect: PgConnectOptions = url.parse()?;
        if options.pooler {
            // PgBouncer refuses start-up parameters it does not know.
            connect = connect.extra_float_digits(None).statement_cache_capacity(0);
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await?;
        Ok(Self {
            pool,
            coordination: options.coordination,
            prepared: !options.pooler,
            direct_url: options.direct_url.clone(),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn session(&self) -> Result<Session> {
        Ok(if self.prepared {
            Session::Direct(self.pool.acquire().await?)
        } else {
            Session::Pooled(self.pool.begin().await?)
        })
    }

    /// A connection of its own for what needs a session: the direct one
    /// when given, else this store's database unless it is reached
    /// through a pooler.
    pub async fn session_connection(&self, what: &str) -> Result<sqlx::PgConnection> {
        use sqlx::Connection;
        match (&self.direct_url, self.prepared) {
            (Some(url), _) => Ok(sqlx::PgConnection::connect(url).await?),
            (None, true) => Ok(self.pool.acquire().await?.detach()),
            (None, false) => Err(StoreError::Config(format!(
                "{what} needs a session of its own, which a transaction-mode pooler does not \
                 keep: set MEETPOOL_DIRECT_DATABASE_URL to a connection that bypasses the pooler"
            ))),
        }
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

    async fn migrate(&self) -> Result<crate::Migrated> {
        // On a connection of its own, closed after a failure: the migrator
        // holds a session lock that it does not release when a migration
        // fails, and a pooled connection would keep it, stalling every
        // later migration on this database.
        // Up to date: nothing to lock or create (and nothing the service's
        // role on an adopted database would be refused).
        let applied: std::result::Result<Vec<i64>, _> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .persistent(self.prepared)
                .fetch_all(&mut *self.session().await?)
                .await;
        crate::not_newer(&MIGRATOR, &applied)?;
        if applied.is_ok_and(|v| MIGRATOR.iter().all(|m| v.contains(&m.version))) {
            return Ok(crate::Migrated::default());
        }
        // Never beside the platform's tables.
        self.not_adopted_elsewhere().await?;
        let before = sqlx::query_as(crate::ENABLED_LINKS_SQL)
            .persistent(self.prepared)
            .fetch_all(&mut *self.session().await?)
            .await;
        let mut conn = self.session_connection("migrating").await?;
        let Err(failed) = MIGRATOR.run_direct(&mut conn).await else {
            drop(conn);
            let after = sqlx::query_scalar(crate::DISABLED_LINKS_SQL)
                .persistent(self.prepared)
                .fetch_all(&mut *self.session().await?)
                .await;
            return Ok(crate::disabled_unsafe(before, after));
        };
        if let sqlx::migrate::MigrateError::Execute(sqlx::Error::Database(db)) = &failed {
            if db.code().as_deref() == Some("42501") {
                return Err(StoreError::Config(format!(
                    "this database role may not apply meetpool's migrations ({}). On a database \
                     adopted with `meetpool adopt`, run adopt again as the tables' owner, then \
                     `meetpool serve --no-migrate`",
                    db.message()
                )));
            }
        }
        drop(conn);
        let enabled = sqlx::query_as(crate::ENABLED_LINKS_SQL)
            .persistent(self.prepared)
            .fetch_all(&mut *self.session().await?)
            .await;
        Err(crate::explain_migration_failure(failed, enabled))
    }

    async fn stored_settings(&self) -> Result<Option<DbSettings>> {
        let row: Option<(String, i32)> = sqlx::query_as(
            "SELECT timezone, buffer_minutes FROM meetpool_settings WHERE id = 1 AND chosen",
        )
        .persistent(self.prepared)
        .fetch_optional(&mut *self.session().await?)
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
            "{BOOKING_SELECT} WHERE b.ends_at > $1 ORDER BY b.starts_at"
        ))
        .bind(now.to_sqlx())
        .persistent(self.prepared)
        .fetch_all(&mut *self.session().await?)
        .await?;
        rows.iter().map(booking_row).collect()
    }

    async fn change_settings(
        &self,
        settings: &DbSettings,
        moved: &[(BookingId, Window)],
        now: Timestamp,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE meetpool_settings SET timezone = $1, buffer_minutes = $2, chosen = true \
             WHERE id = 1",
        )
        .bind(&settings.timezone)
        .bind(buffer(settings)?)
        .persistent(self.prepared)
        .execute(&mut *tx)
        .await?;
        let ids: Vec<Uuid> = moved.iter().map(|(id, _)| id.0).collect();
        let starts: Vec<jiff_sqlx::Timestamp> =
            moved.iter().map(|(_, w)| w.start.to_sqlx()).collect();
        let ends: Vec<jiff_sqlx::Timestamp> = moved.iter().map(|(_, w)| w.end.to_sqlx()).collect();
        sqlx::query(
            "UPDATE bookings b SET starts_at = v.s, ends_at = v.e \
             FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[]) AS v(id, s, e) \
             WHERE b.id = v.id",
        )
        .bind(ids)
        .bind(starts)
        .bind(ends)
        .persistent(self.prepared)
        .execute(&mut *tx)
        .await?;
        // An explicit busy range is recomputed with the buffer now in force
        // (bookings_derive, migration 0014): the exclusion constraint then
        // checks every coming session against the new buffer.
        sqlx::query(
            "UPDATE bookings SET busy = 'empty' WHERE meeting_link_id IS NOT NULL AND ends_at > $1",
        )
        .bind(now.to_sqlx())
        .persistent(self.prepared)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn adopt_settings(&self, settings: &DbSettings) -> Result<DbSettings> {
        let mut tx = self.pool.begin().await?;
        let (timezone, buffer_minutes): (String, i32) = sqlx::query_as(
            "WITH chose AS (UPDATE meetpool_settings SET timezone = $1, buffer_minutes = $2, chosen = true \
                            WHERE id = 1 AND NOT chosen RETURNING timezone, buffer_minutes) \
             SELECT timezone, buffer_minutes FROM chose \
             UNION ALL SELECT timezone, buffer_minutes FROM meetpool_settings \
               WHERE id = 1 AND NOT EXISTS (SELECT 1 FROM chose)",
        )
        .bind(&settings.timezone)
        .bind(buffer(settings)?)
        .persistent(self.prepared)
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
            .persistent(self.prepared)
            .fetch_one(&mut *self.session().await?)
            .await;
        match crate::migrated(&MIGRATOR, applied) {
            Err(StoreError::NotMigrated) => {
                self.not_adopted_elsewhere().await?;
                Err(StoreError::NotMigrated)
            }
            other => other,
        }
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
        let tx = self.pool.begin().await?;
        Ok(Box::new(PgTx {
            tx,
            coordination: self.coordination,
            prepared: self.prepared,
            failed: false,
            locked: Vec::new(),
        }))
    }

    async fn session_types(&self) -> Result<Vec<SessionType>> {
        let rows = sqlx::query(&format!("{SESSION_TYPE_SELECT} ORDER BY created_at, name"))
            .persistent(self.prepared)
            .fetch_all(&mut *self.session().await?)
            .await?;
        rows.iter().map(session_type_row).collect()
    }

    async fn session_type(&self, id: SessionTypeId) -> Result<SessionType> {
        let row = sqlx::query(&format!("{SESSION_TYPE_SELECT} WHERE id = $1"))
            .bind(id.0)
            .persistent(self.prepared)
            .fetch_one(&mut *self.session().await?)
            .await?;
        session_type_row(&row)
    }

    async fn links(&self) -> Result<Vec<Link>> {
        let rows = sqlx::query(&format!(
            "SELECT {LINK_COLUMNS} FROM meeting_links_pool ORDER BY seq"
        ))
        .persistent(self.prepared)
        .fetch_all(&mut *self.session().await?)
        .await?;
        rows.iter().map(link_row).collect()
    }

    async fn link(&self, id: LinkId) -> Result<Link> {
        let row = sqlx::query(&format!(
            "SELECT {LINK_COLUMNS} FROM meeting_links_pool WHERE id = $1"
        ))
        .bind(id.0)
        .persistent(self.prepared)
        .fetch_one(&mut *self.session().await?)
        .await?;
        link_row(&row)
    }

    async fn booking(&self, id: BookingId) -> Result<Booking> {
        let row = sqlx::query(&format!("{BOOKING_SELECT} WHERE b.id = $1"))
            .bind(id.0)
            .persistent(self.prepared)
            .fetch_one(&mut *self.session().await?)
            .await?;
        booking_row(&row)
    }

    async fn booking_by_order(&self, order_id: &str) -> Result<Booking> {
        let row = sqlx::query(&format!("{BOOKING_SELECT} WHERE b.order_id = $1"))
            .bind(order_id)
            .persistent(self.prepared)
            .fetch_one(&mut *self.session().await?)
            .await?;
        booking_row(&row)
    }

    async fn booking_by_join_token(&self, token: &str) -> Result<Booking> {
        let row = sqlx::query(&format!("{BOOKING_SELECT} WHERE b.join_token = $1"))
            .bind(token)
            .persistent(self.prepared)
            .fetch_one(&mut *self.session().await?)
            .await?;
        booking_row(&row)
    }

    async fn bookings(&self, f: &BookingFilter) -> Result<Vec<Booking>> {
        let rows = sqlx::query(&format!(
            "{BOOKING_SELECT} WHERE ($1::text IS NULL OR b.payment_status = $1) \
             AND (NOT $2 OR (b.payment_status = 'paid' AND b.meeting_link_id IS NULL AND b.ends_at > now())) \
             AND ($3::timestamptz IS NULL OR (b.starts_at >= $3 AND b.starts_at < $5)) \
             AND ($6::timestamptz IS NULL OR (b.starts_at, b.id) > ($6, $7)) \
             ORDER BY b.starts_at, b.id LIMIT $4"
        ))
        .bind(f.payment_status.map(|s| s.as_str()))
        .bind(f.unassigned)
        .bind(f.starts_within.map(|w| w.start.to_sqlx()))
        .bind(i64::from(f.limit))
        .bind(f.starts_within.map(|w| w.end.to_sqlx()))
        .bind(f.after.map(|(start, _)| start.to_sqlx()))
        .bind(f.after.map(|(_, id)| id.0))
        .persistent(self.prepared).fetch_all(&mut *self.session().await?)
        .await?;
        rows.iter().map(booking_row).collect()
    }

    async fn events(&self, booking: BookingId) -> Result<Vec<Event>> {
        let rows = sqlx::query(
            "SELECT id, booking_id, kind, meeting_link_id, detail::text AS detail, created_at \
             FROM booking_events WHERE booking_id = $1 ORDER BY id",
        )
        .bind(booking.0)
        .persistent(self.prepared)
        .fetch_all(&mut *self.session().await?)
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
        .persistent(self.prepared).fetch_one(&mut *self.session().await?)
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
        .persistent(self.prepared).fetch_all(&mut *self.session().await?)
        .await?;
        rows.iter().map(booking_row).collect()
    }

    async fn waiting(&self, limit: u32) -> Result<Vec<Booking>> {
        let rows = sqlx::query(&format!(
            "{BOOKING_SELECT} WHERE b.payment_status = 'paid' AND b.meeting_link_id IS NULL AND b.ends_at > now() \
             ORDER BY b.created_at LIMIT $1"
        ))
        .bind(i64::from(limit))
        .persistent(self.prepared).fetch_all(&mut *self.session().await?)
        .await?;
        rows.iter().map(booking_row).collect()
    }

    async fn link_sessions(&self, during: Window) -> Result<Vec<LinkCandidate>> {
        // The enabled links and the sessions on any link, in one statement
        // and one snapshot, matched up here: a join would cost PostgreSQL
        // more to plan (each time: the range's bounds change the plan) and
        // to run than it saves.
        let rows = sqlx::query(&format!(
            "SELECT id AS link_id, seq, NULL::timestamptz AS starts_at, \
               NULL::timestamptz AS busy_end, NULL::int4 AS duration \
             FROM meeting_links_pool WHERE is_available \
             UNION ALL {SESSIONS_DURING} $2"
        ))
        .bind(during.start.to_sqlx())
        .bind(during.end.to_sqlx())
        .persistent(self.prepared)
        .fetch_all(&mut *self.session().await?)
        .await?;
        Ok(links_with_sessions(&rows)?.1)
    }

    async fn sessions_of_type(
        &self,
        session_type: SessionTypeId,
        starts: Window,
        buffer_minutes: u32,
    ) -> Result<Option<(i32, Vec<LinkCandidate>)>> {
        // The session type's duration in the same statement: one round
        // trip where a read of the type first would be two.
        let rows = sqlx::query(&format!(
            "WITH st AS (SELECT duration FROM session_types WHERE id = $3) \
             SELECT NULL::uuid AS link_id, NULL::int8 AS seq, NULL::timestamptz AS starts_at, \
               NULL::timestamptz AS busy_end, duration FROM st \
             UNION ALL \
             SELECT id, seq, NULL, NULL, NULL FROM meeting_links_pool WHERE is_available \
             UNION ALL {SESSIONS_DURING} \
               $2 + make_interval(mins => (SELECT duration FROM st) + $4)"
        ))
        .bind(starts.start.to_sqlx())
        .bind(starts.end.to_sqlx())
        .bind(session_type.0)
        .bind(i32::try_from(buffer_minutes).unwrap_or(i32::MAX))
        .persistent(self.prepared)
        .fetch_all(&mut *self.session().await?)
        .await?;
        let (duration, links) = links_with_sessions(&rows)?;
        Ok(duration.map(|d| (d, links)))
    }

    async fn paid_sessions(&self, during: Window) -> Result<Vec<PaidWindow>> {
        // Sessions last at most a day: the lower bound on starts_at bounds
        // the read to a range of paid_window_deltas_window, in its order. A
        // window's count is the sum of its rows (migration 0010), added up
        // here: the rows are as many as the windows once folded, and
        // PostgreSQL's grouping would cost more than it saves.
        let rows = sqlx::query(
            "SELECT starts_at, ends_at, sessions, unlinked FROM paid_window_deltas \
             WHERE starts_at < $2 AND ends_at > $1 AND starts_at > $1 - interval '1441 minutes' \
             ORDER BY starts_at, ends_at",
        )
        .bind(during.start.to_sqlx())
        .bind(during.end.to_sqlx())
        .persistent(self.prepared)
        .fetch_all(&mut *self.session().await?)
        .await?;
        let mut sums: Vec<(Window, i64, i64)> = Vec::new();
        for r in &rows {
            let window = Window::new(ts(r, "starts_at")?, ts(r, "ends_at")?);
            let sessions: i64 = r.try_get("sessions")?;
            let unlinked: i64 = r.try_get("unlinked")?;
            match sums.last_mut() {
                Some(last) if last.0 == window => {
                    last.1 += sessions;
                    last.2 += unlinked;
                }
                _ => sums.push((window, sessions, unlinked)),
            }
        }
        sums.into_iter()
            .filter(|s| s.1 > 0)
            .map(|(window, sessions, unlinked)| {
                Ok(PaidWindow {
                    window,
                    sessions: u32::try_from(sessions).map_err(StoreError::corrupt)?,
                    unlinked: u32::try_from(unlinked).map_err(StoreError::corrupt)?,
                })
            })
            .collect()
    }

    async fn enabled_links(&self) -> Result<u32> {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM meeting_links_pool WHERE is_available")
                .persistent(self.prepared)
                .fetch_one(&mut *self.session().await?)
                .await?;
        u32::try_from(n).map_err(StoreError::corrupt)
    }

    async fn fold_paid_windows(&self, windows: u32) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT meetpool_fold_paid_windows($1)")
            .bind(i32::try_from(windows).unwrap_or(i32::MAX))
            .persistent(self.prepared)
            .fetch_one(&mut *self.session().await?)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn overlapping_pairs(&self) -> Result<Vec<(BookingId, BookingId)>> {
        let rows = sqlx::query(
            "SELECT a.id AS a, b.id AS b FROM bookings a \
             JOIN bookings b ON a.meeting_link_id = b.meeting_link_id AND a.id < b.id AND a.busy && b.busy \
             WHERE a.meeting_link_id IS NOT NULL",
        )
        .persistent(self.prepared).fetch_all(&mut *self.session().await?)
        .await?;
        rows.iter()
            .map(|r| Ok((BookingId(r.try_get("a")?), BookingId(r.try_get("b")?))))
            .collect()
    }

    async fn moved_since(&self, during: Window, since: Timestamp) -> Result<Vec<BookingId>> {
        let rows = sqlx::query(&format!(
            "SELECT b.id FROM bookings b WHERE b.starts_at >= $1 AND b.starts_at < $2 \
               AND b.meeting_link_id IS NOT NULL AND EXISTS ( \
                 SELECT 1 FROM booking_events e WHERE e.booking_id = b.id \
                   AND {MOVED} AND e.created_at >= $3)"
        ))
        .bind(during.start.to_sqlx())
        .bind(during.end.to_sqlx())
        .bind(since.to_sqlx())
        .persistent(self.prepared)
        .fetch_all(&mut *self.session().await?)
        .await?;
        rows.iter()
            .map(|r| Ok(BookingId(r.try_get("id")?)))
            .collect()
    }

    async fn adopted(&self) -> Result<bool> {
        PgStore::adopted(self).await
    }

    async fn claim_platform_changes(&self, limit: u32) -> Result<Vec<ClaimedChange>> {
        PgStore::claim_platform_changes(self, limit).await
    }

    async fn platform_change_done(&self, id: i64) -> Result<()> {
        PgStore::platform_change_done(self, id).await
    }

    async fn platform_problems(&self) -> Result<Vec<PlatformProblem>> {
        PgStore::platform_problems(self).await
    }

    async fn claim_problems_to_alert(&self) -> Result<Vec<PlatformProblem>> {
        PgStore::claim_problems_to_alert(self).await
    }

    async fn note_platform_problem(
        &self,
        booking: BookingId,
        reason: ProblemReason,
        detail: &str,
    ) -> Result<()> {
        PgStore::note_platform_problem(self, booking, reason, detail).await
    }

    async fn platform_broken(&self) -> Result<Option<String>> {
        PgStore::platform_broken(self).await
    }

    async fn platform_listener(&self) -> Result<Option<Box<dyn Wakeups>>> {
        PgStore::platform_listener(self).await
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

mod checks;
mod outbox;
mod platform;
mod rooms;
mod stream;
mod tx;
pub use tx::PgTx;
