//! Reconciliation's checks on SQLite: one writer, so a claim reads the due
//! bookings and leases them in one write transaction. Instants are written
//! with milliseconds, as the tables' defaults write them, so that text
//! order is time order.
use async_trait::async_trait;
use jiff::Timestamp;
use meetpool_domain::BookingId;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::rows::booking_row;
use super::sql::BOOKING_SELECT;
use super::SqliteStore;
use crate::{DueChecks, PaymentCheck, PaymentChecks, Result};

fn ms(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// The due bookings (`?1` now, `?2` the first wait in seconds, `?3` every
/// one whatever its schedule, `?4` how many), soonest due first, each with
/// its checks so far. A booking whose order id is its own id has none.
fn due_sql() -> String {
    let due_at =
        "coalesce(c.next_at, strftime('%Y-%m-%d %H:%M:%f', b.created_at, '+' || ?2 || ' seconds'))";
    format!(
        "SELECT coalesce(c.attempts, 0) AS attempts, b.* FROM ({BOOKING_SELECT}) b \
         LEFT JOIN payment_checks c ON c.booking_id = b.id \
         WHERE b.payment_status = 'pending' AND b.starts_at > ?1 AND b.order_id <> b.id \
           AND (c.leased_until IS NULL OR c.leased_until <= ?1) \
           AND (?3 OR {due_at} <= ?1) \
         ORDER BY {due_at} LIMIT ?4"
    )
}

fn check_row(r: &SqliteRow) -> Result<PaymentCheck> {
    Ok(PaymentCheck {
        booking: booking_row(r)?,
        attempts: u32::try_from(r.try_get::<i64, _>("attempts")?).unwrap_or_default(),
    })
}

async fn read_due<'c, E>(executor: E, due: &DueChecks) -> Result<Vec<PaymentCheck>>
where
    E: sqlx::Executor<'c, Database = sqlx::Sqlite>,
{
    let rows = sqlx::query(&due_sql())
        .bind(ms(due.now))
        .bind(due.first_wait.as_secs_f64().max(0.0))
        .bind(due.every)
        .bind(i64::from(due.limit))
        .fetch_all(executor)
        .await?;
    rows.iter().map(check_row).collect()
}

#[async_trait]
impl PaymentChecks for SqliteStore {
    async fn due(&self, due: &DueChecks) -> Result<Vec<PaymentCheck>> {
        read_due(&self.pool, due).await
    }

    async fn claim(&self, due: &DueChecks, lease_until: Timestamp) -> Result<Vec<PaymentCheck>> {
        let _guard = self.write_lock.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let claimed = read_due(&mut *tx, due).await?;
        for check in &claimed {
            sqlx::query(
                "INSERT INTO payment_checks (booking_id, next_at, leased_until) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (booking_id) DO UPDATE SET leased_until = excluded.leased_until",
            )
            .bind(check.booking.id.to_string())
            .bind(ms(due.now))
            .bind(ms(lease_until))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn record(
        &self,
        booking: BookingId,
        checked_at: Timestamp,
        next_at: Timestamp,
        outcome: &str,
    ) -> Result<()> {
        let _guard = self.write_lock.lock().await;
        sqlx::query(
            "UPDATE payment_checks SET attempts = attempts + 1, checked_at = ?2, next_at = ?3, \
               outcome = ?4, leased_until = NULL WHERE booking_id = ?1",
        )
        .bind(booking.to_string())
        .bind(ms(checked_at))
        .bind(ms(next_at))
        .bind(outcome)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn prune(&self, now: Timestamp) -> Result<u64> {
        let _guard = self.write_lock.lock().await;
        let done = sqlx::query(
            "DELETE FROM payment_checks WHERE booking_id IN (SELECT c.booking_id \
               FROM payment_checks c JOIN bookings b ON b.id = c.booking_id \
               WHERE b.payment_status <> 'pending' OR b.starts_at <= ?1 LIMIT 1000)",
        )
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
