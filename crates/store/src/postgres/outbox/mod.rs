//! The outbound event log on PostgreSQL, for any number of replicas.
//!
//! New events are `queued` and delivered as a stream (migration 0013): the
//! replica that holds the stream's row (`FOR UPDATE SKIP LOCKED`) reads the
//! events numbered after `through`, and records a batch by moving `through`
//! past them, without writing to the events themselves. An event whose
//! first attempt fails, or that waits behind an earlier event of its
//! booking, becomes `pending`: those are claimed by their rows (`FOR UPDATE
//! SKIP LOCKED`) and updated with each attempt's outcome. Either way, what a
//! claim takes stays locked by its transaction until it records the
//! outcomes, so that each event is in one replica's hands at a time, and
//! back in the pool the moment that replica's connection goes.
//! A booking's first pending event is found by one probe of
//! `outbound_events_booking` per due event: a scalar subquery, which the
//! planner cannot turn into a join over the whole backlog.
mod admin;
mod claim;

use jiff::Timestamp;
use jiff_sqlx::ToSqlx;
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

use super::rows::ts;
use super::{PgStore, Statements};
use crate::{Claim, DeliveryStatus, OutboundEvent, Outbox, OutboxStats, Result, StoreError};
use meetpool_domain::BookingId;

/// An event's columns, with its status, attempts and delivery time as a
/// reader sees them: a queued event the stream delivered
/// (`meetpool_streamed`) was attempted once, and delivered when the first
/// batch reaching its number was recorded.
const COLUMNS: &str = "o.seq, 'evt_' || (SELECT events_prefix FROM meetpool_settings \
    WHERE id = 1) || '_' || o.seq AS id, o.type, o.booking_id, o.data::text AS data, \
    o.created_at, CASE WHEN o.status <> 'queued' THEN o.status \
    WHEN meetpool_streamed(o.seq) THEN 'delivered' ELSE 'pending' END AS status, \
    CASE WHEN o.status = 'queued' AND meetpool_streamed(o.seq) THEN 1 ELSE o.attempts END \
    AS attempts, o.next_attempt_at, o.last_error, \
    CASE WHEN o.status = 'queued' AND meetpool_streamed(o.seq) THEN (SELECT b.done_at \
    FROM outbound_batches b WHERE b.upto >= o.seq ORDER BY b.upto LIMIT 1) \
    ELSE o.delivered_at END AS delivered_at";

/// An event's columns for the attempt about to be made (counted), while it
/// is pending.
const COLUMNS_NEXT_ATTEMPT: &str = "o.seq, 'evt_' || (SELECT events_prefix FROM meetpool_settings \
    WHERE id = 1) || '_' || o.seq AS id, o.type, o.booking_id, o.data::text AS data, \
    o.created_at, 'pending' AS status, o.attempts + 1 AS attempts, o.next_attempt_at, \
    o.last_error, o.delivered_at";
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
        self.query("UPDATE meetpool_settings SET events_enabled = $1 WHERE id = 1 AND events_enabled <> $1")
            .bind(on)
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
        PgStore::claim(self, now, _lease_until, limit).await
    }

    async fn list(
        &self,
        status: Option<DeliveryStatus>,
        booking: Option<BookingId>,
        limit: u32,
    ) -> Result<Vec<OutboundEvent>> {
        PgStore::list(self, status, booking, limit).await
    }

    async fn retry(&self, id: &str, now: Timestamp) -> Result<OutboundEvent> {
        PgStore::retry(self, id, now).await
    }

    async fn stats(&self) -> Result<OutboxStats> {
        PgStore::stats(self).await
    }

    async fn prune(&self, before: Timestamp, limit: u32) -> Result<u64> {
        // The first event written since `before` bounds the walk along the
        // numbers: what precedes it is old, and after pruning only the old
        // failed or pending events are left to step over. The batches that
        // no remaining queued event was delivered in go with them.
        let mut tx = self.pool.begin().await?;
        let done = self.query(
            "DELETE FROM outbound_events WHERE seq IN ( \
               SELECT o.seq FROM outbound_events o \
               WHERE (o.status = 'delivered' OR (o.status = 'queued' AND meetpool_streamed(o.seq))) \
                 AND o.seq < COALESCE( \
                 (SELECT n.seq FROM outbound_events n WHERE n.created_at >= $1 ORDER BY n.seq LIMIT 1), \
                 9223372036854775807) \
               ORDER BY o.seq LIMIT $2)",
        )
        .bind(before.to_sqlx())
        .bind(i64::from(limit))
        .execute(&mut *tx)
        .await?;
        self.query(
            "DELETE FROM outbound_batches WHERE upto < COALESCE( \
               (SELECT o.seq FROM outbound_events o WHERE o.status = 'queued' ORDER BY o.seq LIMIT 1), \
               (SELECT through FROM outbound_stream WHERE id = 1))",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn raise(&self, kind: &str, dedup_key: &str, data: &serde_json::Value) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        // The transaction takes its id before the event's number, as every
        // writer of events does (they have written a booking first): the
        // stream relies on it to tell a number still to come from one that
        // never will (see `StreamPosition`).
        self.query("SELECT pg_current_xact_id()")
            .execute(&mut *tx)
            .await?;
        let done = self.query(
            "INSERT INTO outbound_events (type, dedup_key, data) \
             SELECT $1, $2, $3::jsonb WHERE (SELECT events_enabled FROM meetpool_settings WHERE id = 1) \
             ON CONFLICT (dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING",
        )
        .bind(kind)
        .bind(dedup_key)
        .bind(data.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }
}
