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
