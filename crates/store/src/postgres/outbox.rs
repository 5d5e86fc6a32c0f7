//! The outbound event log on PostgreSQL, for any number of replicas: a
//! claim skips the rows another replica holds (`FOR UPDATE SKIP LOCKED`)
//! and holds what it takes until it records the outcomes, so that each
//! event is in one replica's hands at a time, and back in the pool the
//! moment that replica's connection goes.
//! A booking's first pending event is found by one probe of
//! `outbound_events_booking` per due event: a scalar subquery, which the
//! planner cannot turn into a join over the whole backlog.
use jiff::Timestamp;
use jiff_sqlx::ToSqlx;
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

use super::{ts, PgStore};
use crate::{
    Attempt, Claim, DeliveryStatus, OutboundEvent, Outbox, OutboxStats, Result, StoreError,
};
use meetpool_domain::BookingId;

const COLUMNS: &str =
    "o.seq, 'evt_' || (SELECT events_prefix FROM meetpool_settings WHERE id = 1) \
    || '_' || o.seq AS id, o.type, o.booking_id, o.data::text AS data, o.created_at, \
    o.status, o.attempts, o.next_attempt_at, o.last_error, o.delivered_at";

/// [`COLUMNS`] with the attempt about to be made counted.
const COLUMNS_NEXT_ATTEMPT: &str = "o.seq, 'evt_' || (SELECT events_prefix FROM meetpool_settings \
    WHERE id = 1) || '_' || o.seq AS id, o.type, o.booking_id, o.data::text AS data, \
    o.created_at, o.status, o.attempts + 1 AS attempts, o.next_attempt_at, o.last_error, \
    o.delivered_at";

/// Claimed events stay locked by the claim's transaction (`FOR UPDATE`)
/// while they are attempted: no other replica's claim returns them, and if
/// this process dies its connection goes, the transaction with it, and the
/// events are due again at once. Nothing is written until the outcomes are.
struct PgClaim {
    tx: Option<sqlx::Transaction<'static, sqlx::Postgres>>,
    /// Whether statements may be prepared and kept (not behind a pooler).
    prepared: bool,
    events: Vec<OutboundEvent>,
}

#[async_trait::async_trait]
impl Claim for PgClaim {
    fn events(&self) -> &[OutboundEvent] {
        &self.events
    }

    async fn record(self: Box<Self>, outcomes: &[(i64, Attempt)]) -> Result<()> {
        let Some(mut tx) = self.tx else {
            return Ok(());
        };
        let mut seqs = Vec::with_capacity(outcomes.len());
        let mut statuses = Vec::with_capacity(outcomes.len());
        let mut errors: Vec<Option<&str>> = Vec::with_capacity(outcomes.len());
        let mut nexts = Vec::with_capacity(outcomes.len());
        let mut delivered = Vec::with_capacity(outcomes.len());
        for (seq, outcome) in outcomes {
            seqs.push(*seq);
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
               attempts = o.attempts + 1, next_attempt_at = COALESCE(r.next, o.next_attempt_at), \
               delivered_at = r.delivered \
             FROM unnest($1::int8[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[]) \
               AS r(seq, status, error, next, delivered) \
             WHERE o.seq = r.seq",
        )
        .bind(seqs)
        .bind(statuses)
        .bind(errors)
        .bind(nexts)
        .bind(delivered)
        .persistent(self.prepared)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

fn event_row(r: &PgRow) -> Result<OutboundEvent> {
    let data: String = r.try_get("data")?;
    let status: String = r.try_get("status")?;
    Ok(OutboundEvent {
        seq: r.try_get("seq")?,
        id: r.try_get("id")?,
        kind: r.try_get("type")?,
        booking_id: r.try_get::<Option<Uuid>, _>("booking_id")?.map(BookingId),
        data,
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
        // Writes are transactions of their own, which a pooler keeps on one
        // server connection.
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE meetpool_settings SET events_enabled = $1 WHERE id = 1 AND events_enabled <> $1")
            .bind(on)
            .persistent(self.prepared)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn claim(
        &self,
        now: Timestamp,
        _lease_until: Timestamp,
        limit: u32,
    ) -> Result<Box<dyn Claim>> {
        // Losing the record of an attempt to a crash of the database only
        // sends the event again (at least once), so the claim's commit does
        // not wait for the disk.
        let mut tx = self
            .pool
            .begin_with("BEGIN; SET LOCAL synchronous_commit = off")
            .await?;
        // Each booking's first pending event, then those after it: a later
        // event is never held by another claim (it would have to hold the
        // first), and it waits behind one that is not due yet.
        let rows = sqlx::query(&format!(
            "WITH head AS ( \
               SELECT o.seq, o.booking_id FROM outbound_events o \
               WHERE o.status = 'pending' AND o.next_attempt_at <= $1 \
                 AND (o.booking_id IS NULL OR o.seq = (SELECT min(p.seq) FROM outbound_events p \
                   WHERE p.status = 'pending' AND p.booking_id = o.booking_id)) \
               ORDER BY o.next_attempt_at, o.seq LIMIT $2 FOR UPDATE SKIP LOCKED), \
             next AS ( \
               SELECT f.seq FROM head h JOIN outbound_events f ON f.booking_id = h.booking_id \
                 AND f.status = 'pending' AND f.seq > h.seq AND f.next_attempt_at <= $1 \
               WHERE NOT EXISTS (SELECT 1 FROM outbound_events p WHERE p.booking_id = h.booking_id \
                 AND p.status = 'pending' AND p.seq > h.seq AND p.seq < f.seq \
                 AND p.next_attempt_at > $1) \
               FOR UPDATE OF f) \
             SELECT {COLUMNS_NEXT_ATTEMPT} FROM outbound_events o \
             WHERE o.seq IN (SELECT seq FROM head UNION ALL SELECT seq FROM next)"
        ))
        .bind(now.to_sqlx())
        .bind(i64::from(limit))
        .persistent(self.prepared)
        .fetch_all(&mut *tx)
        .await?;
        let mut events = rows.iter().map(event_row).collect::<Result<Vec<_>>>()?;
        events.sort_by_key(|e| e.seq);
        Ok(Box::new(PgClaim {
            tx: (!events.is_empty()).then_some(tx),
            prepared: self.prepared,
            events,
        }))
    }

    async fn list(
        &self,
        status: Option<DeliveryStatus>,
        booking: Option<BookingId>,
        limit: u32,
    ) -> Result<Vec<OutboundEvent>> {
        // One booking's events by its two partial indexes (pending, and
        // the rest), all of them by their numbers.
        let sql = if booking.is_some() {
            format!(
                "SELECT * FROM ( \
                   SELECT {COLUMNS} FROM outbound_events o WHERE o.booking_id = $3 \
                     AND o.status = 'pending' AND ($1::text IS NULL OR o.status = $1) \
                   UNION ALL \
                   SELECT {COLUMNS} FROM outbound_events o WHERE o.booking_id = $3 \
                     AND o.status <> 'pending' AND ($1::text IS NULL OR o.status = $1)) e \
                 ORDER BY seq DESC LIMIT $2"
            )
        } else {
            format!(
                "SELECT {COLUMNS} FROM outbound_events o WHERE $3::uuid IS NULL \
                   AND ($1::text IS NULL OR o.status = $1) \
                 ORDER BY o.seq DESC LIMIT $2"
            )
        };
        let rows = sqlx::query(&sql)
            .bind(status.map(DeliveryStatus::as_str))
            .bind(i64::from(limit))
            .bind(booking.map(|b| b.0))
            .persistent(self.prepared)
            .fetch_all(&mut *self.session().await?)
            .await?;
        rows.iter().map(event_row).collect()
    }

    async fn retry(&self, id: &str, now: Timestamp) -> Result<OutboundEvent> {
        let (prefix, seq) = crate::outbox::parse_id(id).ok_or(StoreError::NotFound)?;
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "UPDATE outbound_events o SET next_attempt_at = $2, \
               attempts = CASE WHEN o.status = 'failed' THEN 0 ELSE o.attempts END, \
               leased_until = CASE WHEN o.status = 'failed' THEN NULL ELSE o.leased_until END, \
               status = 'pending' \
             WHERE o.seq = $1 AND o.status <> 'delivered' \
               AND $3 = (SELECT events_prefix FROM meetpool_settings WHERE id = 1) \
             RETURNING {COLUMNS}"
        ))
        .bind(seq)
        .bind(now.to_sqlx())
        .bind(prefix)
        .persistent(self.prepared)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        match row {
            Some(r) => event_row(&r),
            None => {
                let known: Option<i64> = sqlx::query_scalar(
                    "SELECT seq FROM outbound_events WHERE seq = $1 \
                     AND $2 = (SELECT events_prefix FROM meetpool_settings WHERE id = 1)",
                )
                .bind(seq)
                .bind(prefix)
                .persistent(self.prepared)
                .fetch_optional(&mut *self.session().await?)
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
        .persistent(self.prepared)
        .fetch_one(&mut *self.session().await?)
        .await?;
        Ok(OutboxStats {
            pending: row.try_get("pending")?,
            failed: row.try_get("failed")?,
            oldest_pending: row
                .try_get::<Option<jiff_sqlx::Timestamp>, _>("oldest")?
                .map(|t| t.to_jiff()),
        })
    }

    async fn prune(&self, before: Timestamp, limit: u32) -> Result<u64> {
        // The first event written since `before` bounds the walk along the
        // numbers: what precedes it is old, and after pruning only the old
        // failed or pending events are left to step over.
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "DELETE FROM outbound_events WHERE seq IN ( \
               SELECT o.seq FROM outbound_events o \
               WHERE o.status = 'delivered' AND o.seq < COALESCE( \
                 (SELECT n.seq FROM outbound_events n WHERE n.created_at >= $1 ORDER BY n.seq LIMIT 1), \
                 9223372036854775807) \
               ORDER BY o.seq LIMIT $2)",
        )
        .bind(before.to_sqlx())
        .bind(i64::from(limit))
        .persistent(self.prepared)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn raise(&self, kind: &str, dedup_key: &str, data: &serde_json::Value) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "INSERT INTO outbound_events (type, dedup_key, data) \
             SELECT $1, $2, $3::jsonb WHERE (SELECT events_enabled FROM meetpool_settings WHERE id = 1) \
             ON CONFLICT (dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING",
        )
        .bind(kind)
        .bind(dedup_key)
        .bind(data.to_string())
        .persistent(self.prepared)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }
}
