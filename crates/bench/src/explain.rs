//! The plans of the hot queries against the history just measured, so that
//! a latency that grows with the history can be traced to the plan that
//! makes it grow.
use anyhow::Result;
use sqlx::Row;

use crate::db::{connect, Db};

/// The plans of the hot queries, as the store sends them, for a booking of
/// this run (its window in the middle of the busy period).
pub async fn explain(url: &str, order_id: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    match connect(url).await? {
        Db::Pg(pool) => {
            let mut tx = pool.begin().await?;
            let (id, starts, buffer): (uuid::Uuid, jiff_sqlx::Timestamp, i32) = sqlx::query_as(
                "SELECT b.id, b.starts_at, s.buffer_minutes FROM bookings b, meetpool_settings s \
                 WHERE b.order_id = $1 AND s.id = 1",
            )
            .bind(order_id)
            .fetch_one(&mut *tx)
            .await?;
            // The server's own statements, with the parameters it binds.
            let lock_sql = format!(
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {}",
                meetpool_store::postgres::notification_lock_sql()
            );
            out.push(
                "EXPLAIN the notifications' first statement (lock, de-duplicate, hour locks), for one:"
                    .into(),
            );
            let rows = sqlx::query(&lock_sql)
                .bind([order_id])
                .bind([format!("explain-{}", uuid::Uuid::new_v4())])
                .bind(buffer)
                .bind([true])
                .fetch_all(&mut *tx)
                .await?;
            for r in rows {
                out.push(format!("    {}", r.try_get::<String, _>(0)?));
            }
            let cand_sql = format!(
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {}",
                meetpool_store::postgres::CANDIDATES_SQL
            );
            out.push(
                "EXPLAIN candidates (nearest session on either side, per link), for one booking:"
                    .into(),
            );
            let rows = sqlx::query(&cand_sql)
                .bind([id])
                .bind([starts])
                .fetch_all(&mut *tx)
                .await?;
            for r in rows {
                out.push(format!("    {}", r.try_get::<String, _>(0)?));
            }
            tx.rollback().await?;
        }
        Db::Lite(pool) => {
            let queries = [
                (
                    "booking lookup by order_id",
                    "EXPLAIN QUERY PLAN SELECT b.id FROM bookings b \
                     LEFT JOIN meeting_links_pool l ON l.id = b.meeting_link_id WHERE b.order_id = ?1"
                        .to_owned(),
                ),
                ("candidates", format!("EXPLAIN QUERY PLAN {}", meetpool_store::sqlite::CANDIDATES_SQL)),
            ];
            for (title, q) in queries {
                out.push(format!("EXPLAIN QUERY PLAN {title}:"));
                let rows = sqlx::query(&q)
                    .bind(order_id)
                    .bind("2030-01-01 00:00:00")
                    .bind("2030-01-02 00:00:00")
                    .fetch_all(&pool)
                    .await?;
                for r in rows {
                    out.push(format!("    {}", r.try_get::<String, _>("detail")?));
                }
            }
        }
    }
    Ok(out)
}
