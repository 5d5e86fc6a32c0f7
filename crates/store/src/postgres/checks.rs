//! Reconciliation's checks on PostgreSQL, for any number of replicas: a
//! claim is one statement that leases the due bookings it can take.
use async_trait::async_trait;
use jiff::Timestamp;
use jiff_sqlx::ToSqlx;
use meetpool_domain::BookingId;
use sqlx::postgres::PgRow;
use sqlx::Row;

use super::rows::booking_row;
use super::sql::{CLAIM_CHECKS_SQL, DUE_CHECKS_SQL};
use super::{PgStore, Statements};
use crate::{DueChecks, PaymentCheck, PaymentChecks, Result};

fn check_row(r: &PgRow) -> Result<PaymentCheck> {
    Ok(PaymentCheck {
        booking: booking_row(r)?,
        attempts: u32::try_from(r.try_get::<i32, _>("attempts")?).unwrap_or_default(),
    })
}

fn first_wait_secs(due: &DueChecks) -> f64 {
    due.first_wait.as_secs_f64().max(0.0)
}

#[async_trait]
impl PaymentChecks for PgStore {
    async fn due(&self, due: &DueChecks) -> Result<Vec<PaymentCheck>> {
        let rows = self
            .query(DUE_CHECKS_SQL)
            .bind(due.now.to_sqlx())
            .bind(first_wait_secs(due))
            .bind(due.every)
            .bind(i64::from(due.limit))
            .fetch_all(&mut *self.session().await?)
            .await?;
        rows.iter().map(check_row).collect()
    }

    async fn claim(&self, due: &DueChecks, lease_until: Timestamp) -> Result<Vec<PaymentCheck>> {
        let mut tx = self.pool.begin().await?;
        let rows = self
            .query(CLAIM_CHECKS_SQL)
            .bind(due.now.to_sqlx())
            .bind(first_wait_secs(due))
            .bind(due.every)
            .bind(i64::from(due.limit))
            .bind(lease_until.to_sqlx())
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter().map(check_row).collect()
    }

    async fn record(
        &self,
        booking: BookingId,
        checked_at: Timestamp,
        next_at: Timestamp,
        outcome: &str,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        self.query(
            "UPDATE payment_checks SET attempts = attempts + 1, checked_at = $2, next_at = $3, \
               outcome = $4, leased_until = NULL WHERE booking_id = $1",
        )
        .bind(booking.0)
        .bind(checked_at.to_sqlx())
        .bind(next_at.to_sqlx())
        .bind(outcome)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn prune(&self, now: Timestamp) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let done = self
            .query(
                "DELETE FROM payment_checks WHERE booking_id IN (SELECT c.booking_id \
               FROM payment_checks c JOIN bookings b ON b.id = c.booking_id \
               WHERE b.payment_status <> 'pending' OR b.starts_at <= $1 LIMIT 1000)",
            )
            .bind(now.to_sqlx())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}
