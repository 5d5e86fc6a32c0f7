//! The database behind a server under test, reached directly: the commands
//! check and seed it with SQL of their own, on whichever backend the URL
//! names, without going through the store.
use std::time::Duration;

use anyhow::Result;
use sqlx::{PgPool, SqlitePool};

pub enum Db {
    Pg(PgPool),
    Lite(SqlitePool),
}

pub async fn connect(url: &str) -> Result<Db> {
    if url.starts_with("postgres") {
        Ok(Db::Pg(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(2)
                .connect(url)
                .await?,
        ))
    } else {
        Ok(Db::Lite(
            sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(
                    url.parse::<sqlx::sqlite::SqliteConnectOptions>()?
                        .busy_timeout(Duration::from_secs(30)),
                )
                .await?,
        ))
    }
}

pub async fn count_bookings(url: &str) -> Result<i64> {
    Ok(match connect(url).await? {
        Db::Pg(p) => {
            sqlx::query_scalar("SELECT count(*) FROM bookings")
                .fetch_one(&p)
                .await?
        }
        Db::Lite(p) => {
            sqlx::query_scalar("SELECT count(*) FROM bookings")
                .fetch_one(&p)
                .await?
        }
    })
}
