//! The history for SQLite, which has no generate_series or arrays: rows
//! come from a recursive CTE, and the links to spread them over from a
//! numbered temporary table.
use anyhow::{Context, Result};
use jiff::civil::Date;
use sqlx::SqlitePool;

use super::slot_hours;
use crate::fixture::{DURATION_MIN, PRICE};

pub async fn seed(pool: &SqlitePool, n: i64, links: i64, from_date: Date) -> Result<(i64, i64)> {
    let mut tx = pool.begin().await?;
    let buffer: i64 =
        sqlx::query_scalar("SELECT buffer_minutes FROM meetpool_settings WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
    let st: String = match sqlx::query_scalar(
        "SELECT id FROM session_types WHERE name = 'history' AND duration = ?1 LIMIT 1",
    )
    .bind(DURATION_MIN)
    .fetch_optional(&mut *tx)
    .await?
    {
        Some(id) => id,
        None => {
            let id = uuid::Uuid::new_v4().to_string();
            sqlx::query(
                "INSERT INTO session_types (id, name, duration, price) VALUES (?1, 'history', ?2, ?3)",
            )
            .bind(&id)
            .bind(DURATION_MIN)
            .bind(PRICE)
            .execute(&mut *tx)
            .await?;
            id
        }
    };
    let have: i64 =
        sqlx::query_scalar("SELECT count(*) FROM meeting_links_pool WHERE is_available = 1")
            .fetch_one(&mut *tx)
            .await?;
    for _ in have..links {
        let id = uuid::Uuid::new_v4();
        sqlx::query(
            "INSERT INTO meeting_links_pool (id, seq, meeting_link) \
             VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM meeting_links_pool), ?2)",
        )
        .bind(id.to_string())
        .bind(format!("https://meet.example.com/history-{id}"))
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("DROP TABLE IF EXISTS temp.hist_links")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "CREATE TEMP TABLE hist_links AS SELECT row_number() OVER (ORDER BY seq) - 1 AS n, id \
         FROM meeting_links_pool WHERE is_available = 1 ORDER BY seq LIMIT ?1",
    )
    .bind(links)
    .execute(&mut *tx)
    .await?;
    let used: i64 = sqlx::query_scalar("SELECT count(*) FROM temp.hist_links")
        .fetch_one(&mut *tx)
        .await?;
    let from: i64 =
        sqlx::query_scalar("SELECT count(*) FROM bookings WHERE order_id LIKE 'HIST-%'")
            .fetch_one(&mut *tx)
            .await?;
    // Times are UTC text; booking_date/booking_time are written as UTC too.
    sqlx::query(
        "INSERT INTO bookings (id, order_id, user_id, expert_id, session_type_id, booking_date, booking_time, \
           price, payment_status, status, meeting_link_id, starts_at, ends_at, join_token, \
           payment_transaction_id, assigned_at, created_at, updated_at) \
         WITH RECURSIVE s(g) AS (SELECT ?1 UNION ALL SELECT g + 1 FROM s WHERE g < ?2), \
           w AS (SELECT g, datetime(?8, '+' || ((g / ?3) * ?4) || ' hours') AS st FROM s) \
         SELECT printf('00000000-0000-4000-8000-%012x', w.g), 'HIST-' || w.g, 'user-' || (w.g % 5000), \
           'expert-' || (w.g % 97), ?5, date(w.st), strftime('%H:%M:%S', w.st), ?6, 'paid', 'confirmed', \
           l.id, w.st, datetime(w.st, '+' || ?7 || ' minutes'), printf('hist%060x', w.g), 'txn-' || w.g, \
           datetime(w.st, '-1 day'), datetime(w.st, '-2 days'), datetime(w.st, '-1 day') \
         FROM w JOIN temp.hist_links l ON l.n = w.g % ?3",
    )
    .bind(from)
    .bind(from + n - 1)
    .bind(used)
    .bind(slot_hours(buffer))
    .bind(&st)
    .bind(PRICE)
    .bind(DURATION_MIN)
    .bind(format!("{from_date} 00:00:00"))
    .execute(&mut *tx)
    .await
    .context("bulk insert")?;
    tx.commit().await?;
    sqlx::query("ANALYZE").execute(pool).await?;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(pool)
        .await?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings")
        .fetch_one(pool)
        .await?;
    Ok((from, total))
}
