//! The outbound event log on PostgreSQL, for any number of replicas: a
//! claim skips the rows another replica is claiming (`FOR UPDATE SKIP
//! LOCKED`) and leases what it takes, so that each event is in one
//! replica's hands at a time, and back in the pool when that replica died.
//! A booking's first pending event is found by one probe of
//! `outbound_events_booking` per due event: a scalar subquery, which the
//! planner cannot turn into a join over the whole backlog.
use jiff::Timestamp;
use jiff_sqlx::ToSqlx;
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

use super::{ts, PgStore};
use crate::{Attempt, DeliveryStatus, OutboundEvent, Outbox, OutboxStats, Result, StoreError};
use meetpool_domain::BookingId;

const COLUMNS: &str = "o.seq, o.id, o.type, o.booking_id, o.data::text AS data, o.created_at, \
    o.status, o.attempts, o.next_attempt_at, o.last_error, o.delivered_at";

fn event_row(r: &PgRow) -> Result<OutboundEvent> {
    let data: String = r.try_get("data")?;
    let status: String = r.try_get("status")?;
    Ok(OutboundEvent {
        seq: r.try_get("seq")?,
        id: r.try_get("id")?,
        kind: r.try_get("type")?,
        booking_id: r.try_get::<Option<Uuid>, _>("booking_id")?.map(BookingId),
        data: serde_json::from_str(&data).map_err(StoreError::corrupt)?,
        created_at: ts(r, "created_at")?,
        status: status.parse().map_err(StoreError::corrupt)?,
        attempts: u32::try_from(r.try_get::<i32, _>("attempts")?).map_err(StoreError::corrupt)?,
        next_attempt_at: ts(r, "next_attempt_at")?,
        last_error: r.try_get("last_error")?,
        delivered_at: r
            .try_get::<Option<jiff_sqlx::Timestamp>, _>("delivered_at")?
            .map(|t| t.to_jiff()),
    })
}

#[async_trait::async_trait]
impl Outbox for PgStore {
    async fn set_recording(&self, on: bool) -> Result<()> {
        sqlx::query("UPDATE meetpool_settings SET events_enabled = $1 WHERE id = 1 AND events_enabled <> $1")
            .bind(on)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn claim(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboundEvent>> {
        let rows = sqlx::query(&format!(
            "WITH due AS (SELECT e.seq FROM outbound_events e \
               WHERE e.status = 'pending' AND e.next_attempt_at <= $1 \
                 AND (e.leased_until IS NULL OR e.leased_until <= $1) \
                 AND (e.booking_id IS NULL OR e.seq = (SELECT min(p.seq) FROM outbound_events p \
                   WHERE p.status = 'pending' AND p.booking_id = e.booking_id)) \
               ORDER BY e.next_attempt_at, e.seq LIMIT $3 FOR UPDATE SKIP LOCKED) \
             UPDATE outbound_events o SET attempts = o.attempts + 1, leased_until = $2 \
             FROM due WHERE o.seq = due.seq RETURNING {COLUMNS}"
        ))
        .bind(now.to_sqlx())
        .bind(lease_until.to_sqlx())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut events = rows.iter().map(event_row).collect::<Result<Vec<_>>>()?;
        events.sort_by_key(|e| e.seq);
        Ok(events)
    }

    async fn record(&self, outcomes: &[(i64, u32, Attempt)]) -> Result<()> {
        let mut seqs = Vec::with_capacity(outcomes.len());
        let mut attempts = Vec::with_capacity(outcomes.len());
        let mut statuses = Vec::with_capacity(outcomes.len());
        let mut errors: Vec<Option<&str>> = Vec::with_capacity(outcomes.len());
        let mut nexts = Vec::with_capacity(outcomes.len());
        let mut delivered = Vec::with_capacity(outcomes.len());
        for (seq, attempt, outcome) in outcomes {
            seqs.push(*seq);
            attempts.push(i32::try_from(*attempt).unwrap_or(i32::MAX));
            let (status, error, next, at) = match outcome {
                Attempt::Delivered { at } => ("delivered", None, None, Some(at.to_sqlx())),
                Attempt::RetryAt { error, next } => {
                    ("pending", Some(error.as_str()), Some(next.to_sqlx()), None)
                }
                Attempt::GaveUp { error } => ("failed", Some(error.as_str()), None, None),
            };
            statuses.push(status);
            errors.push(error);
            nexts.push(next);
            delivered.push(at);
        }
        sqlx::query(
            "UPDATE outbound_events o SET status = r.status, last_error = r.error, \
               next_attempt_at = COALESCE(r.next, o.next_attempt_at), delivered_at = r.delivered, \
               leased_until = NULL \
             FROM unnest($1::int8[], $2::int4[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[]) \
               AS r(seq, attempt, status, error, next, delivered) \
             WHERE o.seq = r.seq AND o.attempts = r.attempt AND o.status = 'pending'",
        )
        .bind(seqs)
        .bind(attempts)
        .bind(statuses)
        .bind(errors)
        .bind(nexts)
        .bind(delivered)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list(&self, status: Option<DeliveryStatus>, limit: u32) -> Result<Vec<OutboundEvent>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM outbound_events o WHERE ($1::text IS NULL OR o.status = $1) \
             ORDER BY o.seq DESC LIMIT $2"
        ))
        .bind(status.map(DeliveryStatus::as_str))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_row).collect()
    }

    async fn retry(&self, id: &str, now: Timestamp) -> Result<OutboundEvent> {
        let row = sqlx::query(&format!(
            "UPDATE outbound_events o SET next_attempt_at = $2, \
               attempts = CASE WHEN o.status = 'failed' THEN 0 ELSE o.attempts END, \
               leased_until = CASE WHEN o.status = 'failed' THEN NULL ELSE o.leased_until END, \
               status = 'pending' \
             WHERE o.id = $1 AND o.status <> 'delivered' RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(now.to_sqlx())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => event_row(&r),
            None => {
                let known: Option<i64> =
                    sqlx::query_scalar("SELECT seq FROM outbound_events WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                Err(match known {
                    Some(_) => StoreError::Conflict("delivered".into()),
                    None => StoreError::NotFound,
                })
            }
        }
    }

    async fn stats(&self) -> Result<OutboxStats> {
        let row = sqlx::query(
            "SELECT (SELECT count(*) FROM outbound_events WHERE status = 'pending') AS pending, \
               (SELECT count(*) FROM outbound_events WHERE status = 'failed') AS failed, \
               (SELECT min(created_at) FROM outbound_events WHERE status = 'pending') AS oldest",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(OutboxStats {
            pending: row.try_get("pending")?,
            failed: row.try_get("failed")?,
            oldest_pending: row
                .try_get::<Option<jiff_sqlx::Timestamp>, _>("oldest")?
                .map(|t| t.to_jiff()),
        })
    }

    async fn raise(&self, kind: &str, dedup_key: &str, data: &serde_json::Value) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO outbound_events (type, dedup_key, data) \
             SELECT $1, $2, $3::jsonb WHERE (SELECT events_enabled FROM meetpool_settings WHERE id = 1) \
             ON CONFLICT (dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING",
        )
        .bind(kind)
        .bind(dedup_key)
        .bind(data.to_string())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
