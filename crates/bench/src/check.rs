//! After a load run, the database itself is asked whether any link was
//! given twice for overlapping times: the answers the server sent cannot
//! show that.
use anyhow::Result;
use sqlx::Row;

use crate::db::{connect, Db};

pub struct Check {
    pub overlaps: i64,
    pub unguarded: i64,
    pub paid: i64,
    pub assigned: i64,
}

pub async fn check_db(url: &str, tag: &str) -> Result<Check> {
    let like = format!("{tag}-%");
    match connect(url).await? {
        Db::Pg(pool) => {
            // Every pair on one link whose busy ranges meet (the whole table,
            // not only this run), and any assigned booking whose range would
            // escape that check.
            let overlaps: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM bookings a JOIN bookings b \
                 ON a.meeting_link_id = b.meeting_link_id AND a.id < b.id AND a.busy && b.busy \
                 WHERE a.meeting_link_id IS NOT NULL",
            )
            .fetch_one(&pool)
            .await?;
            let unguarded: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM bookings WHERE meeting_link_id IS NOT NULL \
                 AND (busy IS NULL OR NOT busy @> tstzrange(starts_at, ends_at, '[)'))",
            )
            .fetch_one(&pool)
            .await?;
            let r = sqlx::query(
                "SELECT count(*) FILTER (WHERE payment_status = 'paid') AS paid, \
                 count(meeting_link_id) AS assigned FROM bookings WHERE order_id LIKE $1",
            )
            .bind(&like)
            .fetch_one(&pool)
            .await?;
            Ok(Check {
                overlaps,
                unguarded,
                paid: r.try_get("paid")?,
                assigned: r.try_get("assigned")?,
            })
        }
        Db::Lite(pool) => {
            let overlaps: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM bookings a JOIN bookings b \
                 ON a.meeting_link_id = b.meeting_link_id AND a.id < b.id \
                 AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at \
                 WHERE a.meeting_link_id IS NOT NULL",
            )
            .fetch_one(&pool)
            .await?;
            let r = sqlx::query(
                "SELECT coalesce(sum(payment_status = 'paid'), 0) AS paid, \
                 count(meeting_link_id) AS assigned FROM bookings WHERE order_id LIKE ?1",
            )
            .bind(&like)
            .fetch_one(&pool)
            .await?;
            Ok(Check {
                overlaps,
                unguarded: 0,
                paid: r.try_get("paid")?,
                assigned: r.try_get("assigned")?,
            })
        }
    }
}
