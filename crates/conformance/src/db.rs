//! A database of its own for each test: a SQLite file in a temporary
//! directory, or a PostgreSQL schema dropped when the test ends.
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{PgPool, Postgres, Row, Sqlite, SqlitePool, Transaction};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn postgres_base_url() -> String {
    std::env::var("MEETPOOL_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// PostgreSQL's server, for creating and dropping test schemas.
pub(crate) async fn connect_admin(base: &str) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect(base)
        .await
}

struct PgSchema {
    base: String,
    name: String,
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let base = self.base.clone();
        let stmt = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        // Drop runs outside any runtime guarantee: use a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(pool) = PgPoolOptions::new().max_connections(1).connect(&base).await {
                    let _ = sqlx::query(&stmt).execute(&pool).await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}

/// The database a test runs on. Clones share it (replicas).
#[derive(Clone)]
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    _dir: Option<Arc<tempfile::TempDir>>,
    _schema: Option<Arc<PgSchema>>,
}

impl TestDb {
    /// A fresh database. On PostgreSQL, the server must be there: whether
    /// the PostgreSQL half runs at all is decided before (see `run_on`).
    pub async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite:{}", dir.path().join("meetpool.db").display());
                Self {
                    backend,
                    url,
                    _dir: Some(Arc::new(dir)),
                    _schema: None,
                }
            }
            Backend::Postgres => {
                let base = postgres_base_url();
                let admin = connect_admin(&base)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL at {base} is unreachable: {e}"));
                // btree_gist lives in public, shared by every test schema;
                // concurrent first creations race, so tolerate the loser.
                for _ in 0..3 {
                    if sqlx::query("CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA public")
                        .execute(&admin)
                        .await
                        .is_ok()
                    {
                        break;
                    }
                }
                let name = format!("mp_{}", uuid::Uuid::new_v4().simple());
                sqlx::query(&format!("CREATE SCHEMA {name}"))
                    .execute(&admin)
                    .await
                    .unwrap();
                admin.close().await;
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{sep}options=-c%20search_path%3D{name}%2Cpublic");
                Self {
                    backend,
                    url,
                    _dir: None,
                    _schema: Some(Arc::new(PgSchema { base, name })),
                }
            }
        }
    }

    pub fn share(&self) -> Self {
        self.clone()
    }

    /// A database that outlives the test's handle on it (an adopted
    /// platform's, which the platform's fixture drops).
    pub fn at(backend: Backend, url: String) -> Self {
        Self {
            backend,
            url,
            _dir: None,
            _schema: None,
        }
    }

    /// A plain SQL connection to this test's database, as an operator's.
    pub async fn raw(&self) -> RawDb {
        match self.backend {
            Backend::Sqlite => RawDb::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect(&self.url)
                    .await
                    .unwrap(),
            ),
            Backend::Postgres => RawDb::Pg(
                PgPoolOptions::new()
                    .max_connections(2)
                    .connect(&self.url)
                    .await
                    .unwrap(),
            ),
        }
    }
}

/// A plain SQL connection, beside the service's own.
pub enum RawDb {
    /// One connection: a [`Hold`] keeps it until released.
    Sqlite(SqlitePool),
    Pg(PgPool),
}

/// A transaction of the test's own that holds up every settlement of
/// payment notifications until [`Hold::release`]: on SQLite the database's
/// write lock (`BEGIN IMMEDIATE`), on PostgreSQL a `SHARE` lock on the
/// table where every settlement records its notifications (the way an
/// operator's long transaction would).
pub enum Hold {
    Sqlite(Transaction<'static, Sqlite>),
    Pg(Transaction<'static, Postgres>),
}

impl Hold {
    /// Ends the transaction: the settlements waiting for it go on.
    pub async fn release(self) {
        match self {
            Hold::Sqlite(tx) => tx.commit().await.unwrap(),
            Hold::Pg(tx) => tx.commit().await.unwrap(),
        }
    }
}

impl RawDb {
    /// Holds up the service's settlements (see [`Hold`]).
    pub async fn hold_settlements(&self) -> Hold {
        match self {
            RawDb::Sqlite(p) => Hold::Sqlite(p.begin_with("BEGIN IMMEDIATE").await.unwrap()),
            RawDb::Pg(p) => {
                let mut tx = p.begin().await.unwrap();
                sqlx::query("LOCK TABLE payment_notifications IN SHARE MODE")
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                Hold::Pg(tx)
            }
        }
    }

    /// Runs a statement; the database's error text when it refuses.
    pub async fn execute(&self, sql: &str) -> Result<u64, String> {
        match self {
            RawDb::Sqlite(p) => sqlx::query(sql).execute(p).await.map(|r| r.rows_affected()),
            RawDb::Pg(p) => sqlx::query(sql).execute(p).await.map(|r| r.rows_affected()),
        }
        .map_err(|e| e.to_string())
    }

    /// Runs a script of several statements, as `psql -f` or `sqlite3` would.
    pub async fn execute_script(&self, sql: &str) -> Result<(), String> {
        match self {
            RawDb::Sqlite(p) => sqlx::raw_sql(sql).execute(p).await.map(drop),
            RawDb::Pg(p) => sqlx::raw_sql(sql).execute(p).await.map(drop),
        }
        .map_err(|e| e.to_string())
    }

    /// Takes the database back to the release before migration 0017: its
    /// room rule (0004, 0005), no rule on safe links, 0017 not applied,
    /// as a database that `meetpool migrate` has yet to bring up to date.
    pub async fn as_before_0017(&self) {
        // The release before 0017 had none of the migrations after it either
        // (0018's provider actions, SQLite's 0019 index; 0019's triggers are
        // replaced when it runs again).
        let (undo, m4, m5) = match self {
            RawDb::Pg(_) => (
                "DROP TABLE provider_actions; \
                 DROP TRIGGER booking_events_attendance_outbound ON booking_events; \
                 DROP FUNCTION meetpool_attendance_outbound(); \
                 ALTER TABLE meeting_links_pool DROP CONSTRAINT meeting_links_safe; \
                 ALTER TABLE meeting_links_pool DROP COLUMN room; \
                 DROP FUNCTION meetpool_room(text); DROP FUNCTION meetpool_safe_link(text); \
                 DROP FUNCTION meetpool_url_parts(text);",
                include_str!("../../store/migrations/postgres/0004_room.sql"),
                include_str!("../../store/migrations/postgres/0005_room_unique.sql"),
            ),
            RawDb::Sqlite(_) => (
                "DROP INDEX bookings_held; \
                 DROP TABLE provider_actions; DROP TRIGGER booking_events_attendance_outbound; \
                 DROP TRIGGER meeting_links_url_insert; DROP TRIGGER meeting_links_url_update; \
                 DROP INDEX meeting_links_room; \
                 ALTER TABLE meeting_links_pool DROP COLUMN room; \
                 ALTER TABLE meeting_links_pool DROP COLUMN url_safe; \
                 ALTER TABLE meeting_links_pool DROP COLUMN url_segments; \
                 ALTER TABLE meeting_links_pool DROP COLUMN url_query; \
                 ALTER TABLE meeting_links_pool DROP COLUMN url_fragment; \
                 ALTER TABLE meeting_links_pool DROP COLUMN url_path; \
                 ALTER TABLE meeting_links_pool DROP COLUMN url_host; \
                 ALTER TABLE meeting_links_pool DROP COLUMN url_authority; \
                 ALTER TABLE meeting_links_pool DROP COLUMN url_text;",
                include_str!("../../store/migrations/sqlite/0004_room.sql"),
                include_str!("../../store/migrations/sqlite/0005_room_unique.sql"),
            ),
        };
        self.execute_script(&format!(
            "{undo}\n{m4}\n{m5}\nDELETE FROM _sqlx_migrations WHERE version >= 17;"
        ))
        .await
        .unwrap();
    }

    /// The first column of every row, as text.
    pub async fn column(&self, sql: &str) -> Result<Vec<Option<String>>, String> {
        match self {
            RawDb::Sqlite(p) => sqlx::query(sql).fetch_all(p).await.map(|rows| {
                rows.iter()
                    .map(|r| r.try_get::<Option<String>, _>(0).unwrap())
                    .collect()
            }),
            RawDb::Pg(p) => sqlx::query(sql).fetch_all(p).await.map(|rows| {
                rows.iter()
                    .map(|r| r.try_get::<Option<String>, _>(0).unwrap())
                    .collect()
            }),
        }
        .map_err(|e| e.to_string())
    }
}

/// A platform's own PostgreSQL database, as it was before meetpool: a
/// database of its own (its tables live in `public`), built from
/// `fixtures/adopter.sql`, dropped with its service role when the test
/// ends.
pub struct PlatformDb {
    pub name: String,
    /// The login role `meetpool adopt` gives the service, unique to the test.
    pub role: String,
    pub role_password: String,
    base: String,
}

impl PlatformDb {
    pub async fn create() -> Self {
        let base = postgres_base_url();
        let admin = connect_admin(&base)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {base} is unreachable: {e}"));
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("mp_platform_{suffix}");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let db = Self {
            name,
            role: format!("mp_service_{}", &suffix[..12]),
            role_password: format!("pw-{}", &suffix[12..]),
            base,
        };
        let owner = db.owner().await;
        sqlx::raw_sql(include_str!("../fixtures/adopter.sql"))
            .execute(&owner)
            .await
            .expect("the platform's schema and data");
        owner.close().await;
        db
    }

    fn url(&self, user: &str, password: Option<&str>) -> String {
        let mut url = reqwest::Url::parse(&self.base).expect("MEETPOOL_TEST_DATABASE_URL");
        url.set_username(user).unwrap();
        url.set_password(password).unwrap();
        url.set_path(&self.name);
        url.set_query(None);
        url.to_string()
    }

    /// The platform's owner of the tables (who runs `meetpool adopt`).
    pub fn owner_url(&self) -> String {
        let base = reqwest::Url::parse(&self.base).expect("MEETPOOL_TEST_DATABASE_URL");
        let user = base.username().to_owned();
        let password = base.password().map(str::to_owned);
        self.url(&user, password.as_deref())
    }

    /// The role meetpool's service connects as, once adopted.
    pub fn service_url(&self) -> String {
        self.url(&self.role, Some(&self.role_password))
    }

    /// The platform's own connection, as its application's.
    pub async fn owner(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(4)
            .connect(&self.owner_url())
            .await
            .expect("connect to the platform's database")
    }

    /// Everything in the database that a change could touch: schemas,
    /// columns, constraints, indexes, triggers, functions, policies,
    /// extensions, the service role's settings, and every row of every
    /// table. Equal before and after means nothing changed.
    pub async fn fingerprint(&self) -> String {
        let pool = self.owner().await;
        let mut parts: Vec<String> = sqlx::query_scalar(
            "SELECT x FROM ( \
               SELECT 'schema ' || nspname FROM pg_namespace \
                 WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' \
               UNION ALL SELECT 'column ' || table_schema || '.' || table_name || '.' || column_name \
                 || ' ' || data_type || ' ' || coalesce(column_default, '') || ' ' || is_nullable \
                 FROM information_schema.columns WHERE table_schema NOT IN ('pg_catalog', 'information_schema') \
               UNION ALL SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' \
                 || pg_get_constraintdef(c.oid) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace \
                 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') \
               UNION ALL SELECT 'index ' || pg_get_indexdef(i.indexrelid) FROM pg_index i \
                 JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') \
               UNION ALL SELECT 'trigger ' || tgrelid::regclass::text || ' ' || tgname || ' ' || tgenabled::text \
                 FROM pg_trigger WHERE NOT tgisinternal \
               UNION ALL SELECT 'function ' || p.oid::regprocedure::text || ' ' || md5(p.prosrc) \
                 || ' ' || p.prosecdef::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
                 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') \
               UNION ALL SELECT 'policy ' || schemaname || '.' || tablename || ' ' || policyname || ' ' \
                 || coalesce(qual, '') FROM pg_policies \
               UNION ALL SELECT 'extension ' || extname || ' ' || extnamespace::regnamespace::text FROM pg_extension \
               UNION ALL SELECT 'setting ' || setrole::regrole::text || ' ' || setconfig::text \
                 FROM pg_db_role_setting WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) \
               UNION ALL SELECT 'grant ' || table_schema || '.' || table_name || ' ' || grantee || ' ' || privilege_type \
                 FROM information_schema.role_table_grants WHERE table_schema NOT IN ('pg_catalog', 'information_schema') \
             ) s(x) ORDER BY x",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' \
               AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 1",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        for table in tables {
            let rows: String = sqlx::query_scalar(&format!(
                "SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM {table} t"
            ))
            .fetch_one(&pool)
            .await
            .unwrap();
            parts.push(format!("rows {table} {rows}"));
        }
        pool.close().await;
        parts.join("\n")
    }
}

impl Drop for PlatformDb {
    fn drop(&mut self) {
        let base = self.base.clone();
        let stmts = [
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            format!("DROP ROLE IF EXISTS {}", self.role),
        ];
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(pool) = PgPoolOptions::new().max_connections(1).connect(&base).await {
                    for stmt in stmts {
                        let _ = sqlx::query(&stmt).execute(&pool).await;
                    }
                    pool.close().await;
                }
            });
        })
        .join();
    }
}
