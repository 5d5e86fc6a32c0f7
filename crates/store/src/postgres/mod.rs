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
use meetpool_domain::{Booking, BookingId, LinkCandidate, LinkId, SessionTypeId, Window};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::query::{Query, QueryAs, QueryScalar};
use sqlx::{FromRow, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::error::Kind;
use crate::{
    Backend, BookingFilter, ConnectOptions, Coordination, DbSettings, Event, Link, PaidWindow,
    PlatformChanges, PoolStatus, Result, SessionType, Store, StoreError, Tx,
};

pub mod adoption;
mod reads;
mod rows;
mod sql;

use rows::booking_row;
use sql::BOOKING_SELECT;
pub use sql::{
    notification_lock_sql, write_sql, CANDIDATES_SQL, LOCK_ORDERS_SQL, WRITE_BOOKINGS_SQL,
};

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

/// Statements as this store's connections take them: prepared once per
/// connection and kept, or, behind a transaction-mode pooler (which hands
/// each transaction to whichever server connection is free), sent unnamed
/// each time. Every statement the service runs is built through these;
/// only `meetpool adopt`'s, run once on a connection of its own, are not.
pub(super) trait Statements {
    /// Whether statements may be prepared and kept.
    fn prepared(&self) -> bool;

    fn query<'q>(&self, sql: &'q str) -> Query<'q, Postgres, PgArguments> {
        sqlx::query(sql).persistent(self.prepared())
    }

    fn query_as<'q, O>(&self, sql: &'q str) -> QueryAs<'q, Postgres, O, PgArguments>
    where
        O: for<'r> FromRow<'r, PgRow>,
    {
        sqlx::query_as(sql).persistent(self.prepared())
    }

    fn query_scalar<'q, O>(&self, sql: &'q str) -> QueryScalar<'q, Postgres, O, PgArguments>
    where
        (O,): for<'r> FromRow<'r, PgRow>,
    {
        sqlx::query_scalar(sql).persistent(self.prepared())
    }
}

/// Statements built apart from what holds the setting (a claim being taken
/// apart).
#[derive(Clone, Copy)]
pub(super) struct Prepared(pub bool);

impl Statements for Prepared {
    fn prepared(&self) -> bool {
        self.0
    }
}

impl Statements for PgStore {
    fn prepared(&self) -> bool {
        self.prepared
    }
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
        let applied: std::result::Result<Vec<i64>, _> = self
            .query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(&mut *self.session().await?)
            .await;
        crate::not_newer(&MIGRATOR, &applied)?;
        if applied.is_ok_and(|v| MIGRATOR.iter().all(|m| v.contains(&m.version))) {
            return Ok(crate::Migrated::default());
        }
        // Never beside the platform's tables.
        self.not_adopted_elsewhere().await?;
        let before = self
            .query_as(crate::ENABLED_LINKS_SQL)
            .fetch_all(&mut *self.session().await?)
            .await;
        let mut conn = self.session_connection("migrating").await?;
        let Err(failed) = MIGRATOR.run_direct(&mut conn).await else {
            drop(conn);
            let after = self
                .query_scalar(crate::DISABLED_LINKS_SQL)
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
        let enabled = self
            .query_as(crate::ENABLED_LINKS_SQL)
            .fetch_all(&mut *self.session().await?)
            .await;
        Err(crate::explain_migration_failure(failed, enabled))
    }

    async fn stored_settings(&self) -> Result<Option<DbSettings>> {
        let row: Option<(String, i32)> = self
            .query_as(
                "SELECT timezone, buffer_minutes FROM meetpool_settings WHERE id = 1 AND chosen",
            )
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
        let rows = self
            .query(&format!(
                "{BOOKING_SELECT} WHERE b.ends_at > $1 ORDER BY b.starts_at"
            ))
            .bind(now.to_sqlx())
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
        self.query(
            "UPDATE meetpool_settings SET timezone = $1, buffer_minutes = $2, chosen = true \
             WHERE id = 1",
        )
        .bind(&settings.timezone)
        .bind(buffer(settings)?)
        .execute(&mut *tx)
        .await?;
        let ids: Vec<Uuid> = moved.iter().map(|(id, _)| id.0).collect();
        let starts: Vec<jiff_sqlx::Timestamp> =
            moved.iter().map(|(_, w)| w.start.to_sqlx()).collect();
        let ends: Vec<jiff_sqlx::Timestamp> = moved.iter().map(|(_, w)| w.end.to_sqlx()).collect();
        self.query(
            "UPDATE bookings b SET starts_at = v.s, ends_at = v.e \
             FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[]) AS v(id, s, e) \
             WHERE b.id = v.id",
        )
        .bind(ids)
        .bind(starts)
        .bind(ends)
        .execute(&mut *tx)
        .await?;
        // An explicit busy range is recomputed with the buffer now in force
        // (bookings_derive, migration 0014): the exclusion constraint then
        // checks every coming session against the new buffer.
        self.query(
            "UPDATE bookings SET busy = 'empty' WHERE meeting_link_id IS NOT NULL AND ends_at > $1",
        )
        .bind(now.to_sqlx())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn adopt_settings(&self, settings: &DbSettings) -> Result<DbSettings> {
        let mut tx = self.pool.begin().await?;
        let (timezone, buffer_minutes): (String, i32) = self.query_as(
            "WITH chose AS (UPDATE meetpool_settings SET timezone = $1, buffer_minutes = $2, chosen = true \
                            WHERE id = 1 AND NOT chosen RETURNING timezone, buffer_minutes) \
             SELECT timezone, buffer_minutes FROM chose \
             UNION ALL SELECT timezone, buffer_minutes FROM meetpool_settings \
               WHERE id = 1 AND NOT EXISTS (SELECT 1 FROM chose)",
        )
        .bind(&settings.timezone)
        .bind(buffer(settings)?)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(DbSettings {
            timezone,
            buffer_minutes: u32::try_from(buffer_minutes).map_err(StoreError::corrupt)?,
        })
    }

    async fn ready(&self) -> Result<()> {
        let applied = self
            .query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
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
        PgStore::session_types(self).await
    }

    async fn session_type(&self, id: SessionTypeId) -> Result<SessionType> {
        PgStore::session_type(self, id).await
    }

    async fn links(&self) -> Result<Vec<Link>> {
        PgStore::links(self).await
    }

    async fn link(&self, id: LinkId) -> Result<Link> {
        PgStore::link(self, id).await
    }

    async fn booking(&self, id: BookingId) -> Result<Booking> {
        PgStore::booking(self, id).await
    }

    async fn booking_by_order(&self, order_id: &str) -> Result<Booking> {
        PgStore::booking_by_order(self, order_id).await
    }

    async fn booking_by_join_token(&self, token: &str) -> Result<Booking> {
        PgStore::booking_by_join_token(self, token).await
    }

    async fn bookings(&self, f: &BookingFilter) -> Result<Vec<Booking>> {
        PgStore::bookings(self, f).await
    }

    async fn events(&self, booking: BookingId) -> Result<Vec<Event>> {
        PgStore::events(self, booking).await
    }

    async fn pool_status(&self, now: Timestamp) -> Result<PoolStatus> {
        PgStore::pool_status(self, now).await
    }

    async fn recent_assignments(&self, limit: u32) -> Result<Vec<Booking>> {
        PgStore::recent_assignments(self, limit).await
    }

    async fn waiting(&self, limit: u32) -> Result<Vec<Booking>> {
        PgStore::waiting(self, limit).await
    }

    async fn link_sessions(&self, during: Window) -> Result<Vec<LinkCandidate>> {
        PgStore::link_sessions(self, during).await
    }

    async fn sessions_of_type(
        &self,
        session_type: SessionTypeId,
        starts: Window,
        buffer_minutes: u32,
    ) -> Result<Option<(i32, Vec<LinkCandidate>)>> {
        PgStore::sessions_of_type(self, session_type, starts, buffer_minutes).await
    }

    async fn paid_sessions(&self, during: Window) -> Result<Vec<PaidWindow>> {
        PgStore::paid_sessions(self, during).await
    }

    async fn enabled_links(&self) -> Result<u32> {
        PgStore::enabled_links(self).await
    }

    async fn fold_paid_windows(&self, windows: u32) -> Result<u64> {
        PgStore::fold_paid_windows(self, windows).await
    }

    async fn overlapping_pairs(&self) -> Result<Vec<(BookingId, BookingId)>> {
        PgStore::overlapping_pairs(self).await
    }

    async fn moved_since(&self, during: Window, since: Timestamp) -> Result<Vec<BookingId>> {
        PgStore::moved_since(self, during, since).await
    }

    fn platform(&self) -> Option<&dyn PlatformChanges> {
        Some(self)
    }
}

mod checks;
mod outbox;
mod platform;
mod rooms;
mod stream;
mod tx;
pub use tx::PgTx;
