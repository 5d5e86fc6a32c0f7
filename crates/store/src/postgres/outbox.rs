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
use jiff::Timestamp;
use jiff_sqlx::ToSqlx;
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

use super::rows::ts;
use super::stream::{Advance, Gap, Late, StreamPosition};
use super::PgStore;
use crate::{
    Attempt, Claim, DeliveryStatus, OutboundEvent, Outbox, OutboxStats, Result, StoreError,
};
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

/// Claimed events stay locked by the claim's transaction while they are
/// attempted (the stream's row for queued ones, `FOR UPDATE` for pending
/// ones): no other replica's claim returns them, and if this process dies
/// its connection goes, the transaction with it, and the events are due
/// again at once. Nothing is written until the outcomes are.
struct PgClaim {
    tx: Option<sqlx::Transaction<'static, sqlx::Postgres>>,
    /// Whether statements may be prepared and kept (not behind a pooler).
    prepared: bool,
    events: Vec<OutboundEvent>,
    /// What the claim took from the stream, when it holds it.
    stream: Option<StreamBatch>,
}

/// A batch of queued events, and where the stream stands after it.
struct StreamBatch {
    /// The queued events handed out for an attempt.
    attempted: Vec<i64>,
    /// Queued events not to be attempted now: an earlier event of their
    /// booking is pending. They become pending behind it.
    deferred: Vec<i64>,
    position: StreamPosition,
    /// Missing numbers it went on without.
    late: Vec<Late>,
    /// Whether the claim changed the stream: its position, its late
    /// ranges, or late events it made pending.
    moved: bool,
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
        let streamed: std::collections::HashSet<i64> = self
            .stream
            .as_ref()
            .map(|s| s.attempted.iter().copied().collect())
            .unwrap_or_default();
        let mut seqs = Vec::with_capacity(outcomes.len());
        let mut statuses = Vec::with_capacity(outcomes.len());
        let mut errors: Vec<Option<&str>> = Vec::with_capacity(outcomes.len());
        let mut nexts = Vec::with_capacity(outcomes.len());
        let mut delivered = Vec::with_capacity(outcomes.len());
        for (seq, outcome) in outcomes {
            let (status, error, next, at) = match outcome {
                // A queued event delivered needs no write: its batch says it.
                Attempt::Delivered { .. } if streamed.contains(seq) => continue,
                Attempt::Delivered { at } => ("delivered", None, None, Some(at.to_sqlx())),
                Attempt::RetryAt { error, next } => {
                    ("pending", Some(error.as_str()), Some(next.to_sqlx()), None)
                }
                Attempt::GaveUp { error } => ("failed", Some(error.as_str()), None, None),
            };
            seqs.push(*seq);
            statuses.push(status);
            errors.push(error);
            nexts.push(next);
            delivered.push(at);
        }
        if !seqs.is_empty() {
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
        }
        if let Some(stream) = self.stream {
            // Queued events left unattempted (behind an earlier one of their
            // booking that failed or is pending) wait as pending events.
            let attempted: std::collections::HashSet<i64> =
                outcomes.iter().map(|(seq, _)| *seq).collect();
            let waiting: Vec<i64> = stream
                .attempted
                .iter()
                .filter(|seq| !attempted.contains(seq))
                .chain(&stream.deferred)
                .copied()
                .collect();
            if !waiting.is_empty() {
                sqlx::query(
                    "UPDATE outbound_events SET status = 'pending', next_attempt_at = clock_timestamp() \
                     WHERE seq = ANY($1) AND status = 'queued'",
                )
                .bind(waiting)
                .persistent(self.prepared)
                .execute(&mut *tx)
                .await?;
            }
            if stream.moved {
                let StreamPosition { through, gap } = stream.position;
                sqlx::query(
                    "WITH moved AS (UPDATE outbound_stream SET through = $1, gap_until = $2, \
                       gap_xmax = $3::text::xid8, gap_since = $4 WHERE id = 1), \
                     late AS (INSERT INTO outbound_late (from_seq, to_seq, horizon) \
                       SELECT * FROM unnest($6::int8[], $7::int8[], $8::text[]::xid8[])) \
                     INSERT INTO outbound_batches (upto, done_at) \
                     SELECT $1, clock_timestamp() WHERE $5 ON CONFLICT (upto) DO NOTHING",
                )
                .bind(through)
                .bind(gap.map(|g| g.until))
                .bind(gap.map(|g| g.xmax.to_string()))
                .bind(gap.map(|g| g.since.to_sqlx()))
                .bind(!stream.attempted.is_empty() || !stream.deferred.is_empty())
                .bind(stream.late.iter().map(|l| l.first).collect::<Vec<_>>())
                .bind(stream.late.iter().map(|l| l.last).collect::<Vec<_>>())
                .bind(
                    stream
                        .late
                        .iter()
                        .map(|l| l.xmax.to_string())
                        .collect::<Vec<_>>(),
                )
                .persistent(self.prepared)
                .execute(&mut *tx)
                .await?;
            }
        }
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

impl PgStore {
    /// Takes the stream for the claim's transaction, unless another
    /// replica holds it, and the queued events after its position (up to
    /// `limit`) that no missing number may still precede: those to attempt
    /// join `events`; those of a booking with a pending event wait behind
    /// it.
    async fn claim_stream(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        now: Timestamp,
        limit: u32,
        events: &mut Vec<OutboundEvent>,
    ) -> Result<Option<StreamBatch>> {
        let Some(row) = sqlx::query(
            "SELECT through, gap_until, gap_xmax::text AS gap_xmax, gap_since, \
               EXISTS (SELECT 1 FROM outbound_late) AS late FROM outbound_stream \
             WHERE id = 1 FOR UPDATE SKIP LOCKED",
        )
        .persistent(self.prepared)
        .fetch_optional(&mut **tx)
        .await?
        else {
            return Ok(None);
        };
        let xid = |text: Option<String>| -> Result<Option<u64>> {
            text.map(|t| t.parse::<u64>().map_err(StoreError::corrupt))
                .transpose()
        };
        let gap_until: Option<i64> = row.try_get("gap_until")?;
        let gap_xmax = xid(row.try_get("gap_xmax")?)?;
        let gap_since = row
            .try_get::<Option<jiff_sqlx::Timestamp>, _>("gap_since")?
            .map(|t| t.to_jiff());
        let read = StreamPosition {
            through: row.try_get("through")?,
            gap: match (gap_until, gap_xmax, gap_since) {
                (Some(until), Some(xmax), Some(since)) => Some(Gap { until, xmax, since }),
                _ => None,
            },
        };
        // Events that came late, after the stream went on without them,
        // become pending (and so wait for nothing but their booking's
        // earlier events); a late range goes once no transaction that may
        // write it runs. One statement, one snapshot: an event is either
        // found here or its range stays.
        // Each late range is read by its numbers: `OFFSET 0` keeps the
        // planner from turning the ranges into a join, which it would do by
        // walking the whole log.
        let settled: i64 = if row.try_get("late")? {
            sqlx::query_scalar(
                "WITH found AS (UPDATE outbound_events o SET status = 'pending', \
                   next_attempt_at = clock_timestamp() \
                   WHERE o.seq IN (SELECT x.seq FROM outbound_late l CROSS JOIN LATERAL ( \
                     SELECT e.seq FROM outbound_events e WHERE e.seq BETWEEN l.from_seq AND l.to_seq \
                       AND e.status = 'queued' OFFSET 0) x) RETURNING 1), \
                 gone AS (DELETE FROM outbound_late \
                   WHERE horizon <= pg_snapshot_xmin(pg_current_snapshot()) RETURNING 1) \
                 SELECT (SELECT count(*) FROM found) + (SELECT count(*) FROM gone)",
            )
            .persistent(self.prepared)
            .fetch_one(&mut **tx)
            .await?
        } else {
            0
        };
        // Every event after the position, whatever its status (one retried
        // by hand before the stream reached it is pending already), with the
        // statement's snapshot: an event is visible here exactly when its
        // transaction had ended by then.
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS_NEXT_ATTEMPT}, o.status = 'queued' AS queued, \
               o.booking_id IS NOT NULL AND EXISTS (SELECT 1 FROM outbound_events p \
                 WHERE p.booking_id = o.booking_id AND p.status = 'pending') AS waits, \
               pg_snapshot_xmin(pg_current_snapshot())::text AS xmin, \
               pg_snapshot_xmax(pg_current_snapshot())::text AS xmax \
             FROM outbound_events o WHERE o.seq > $1 ORDER BY o.seq LIMIT $2"
        ))
        .bind(read.through)
        .bind(i64::from(limit))
        .persistent(self.prepared)
        .fetch_all(&mut **tx)
        .await?;
        // The snapshot's horizon, which only a gap (between rows) needs.
        let horizon = |column: &str| -> Result<u64> {
            match rows.first() {
                Some(row) => Ok(xid(row.try_get(column)?)?.unwrap_or(0)),
                None => Ok(0),
            }
        };
        let (xmin, xmax) = (horizon("xmin")?, horizon("xmax")?);
        let seqs = rows
            .iter()
            .map(|r| r.try_get::<i64, _>("seq"))
            .collect::<Result<Vec<_>, _>>()?;
        let Advance {
            taken,
            position,
            late,
        } = read.advance(&seqs, xmin, xmax, now);
        let mut batch = StreamBatch {
            attempted: Vec::new(),
            deferred: Vec::new(),
            position,
            moved: position != read || !late.is_empty() || settled > 0,
            late,
        };
        for row in &rows[..taken] {
            if !row.try_get::<bool, _>("queued")? {
                continue;
            }
            let event = event_row(row)?;
            if row.try_get::<bool, _>("waits")? {
                batch.deferred.push(event.seq);
            } else {
                batch.attempted.push(event.seq);
                events.push(event);
            }
        }
        Ok(Some(batch))
    }
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
        // not wait for the disk. Its statements are short: compiling them
        // (JIT, which a large log without statistics can trigger) would cost
        // more than running them.
        let mut tx = self
            .pool
            .begin_with("BEGIN; SET LOCAL synchronous_commit = off; SET LOCAL jit = off")
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
        let stream = self.claim_stream(&mut tx, now, limit, &mut events).await?;
        events.sort_by_key(|e| e.seq);
        let busy = !events.is_empty() || stream.as_ref().is_some_and(|s| s.moved);
        Ok(Box::new(PgClaim {
            tx: busy.then_some(tx),
            prepared: self.prepared,
            events,
            stream,
        }))
    }

    async fn list(
        &self,
        status: Option<DeliveryStatus>,
        booking: Option<BookingId>,
        limit: u32,
    ) -> Result<Vec<OutboundEvent>> {
        const THROUGH: &str = "(SELECT through FROM outbound_stream WHERE id = 1)";
        let Some(booking) = booking else {
            // All events by their numbers, newest first; by status, each kind
            // of row where it is found, so that no listing walks the
            // delivered log for a few rows: pending rows by their index,
            // queued ones after the stream's position (up to the newest, a
            // range the planner reads by the index) or in a late range by
            // their numbers, failed ones by their index, delivered ones among
            // the newest.
            let sql = match status {
                None => {
                    format!("SELECT {COLUMNS} FROM outbound_events o ORDER BY o.seq DESC LIMIT $1")
                }
                Some(DeliveryStatus::Pending) => format!(
                    "SELECT * FROM ( \
                       (SELECT {COLUMNS} FROM outbound_events o WHERE o.status = 'pending' \
                        ORDER BY o.seq DESC LIMIT $1) \
                       UNION ALL \
                       (SELECT {COLUMNS} FROM outbound_events o WHERE o.status = 'queued' \
                         AND o.seq > {THROUGH} AND o.seq <= (SELECT max(seq) FROM outbound_events) \
                        ORDER BY o.seq DESC LIMIT $1) \
                       UNION ALL \
                       (SELECT x.* FROM outbound_late l CROSS JOIN LATERAL ( \
                         SELECT {COLUMNS} FROM outbound_events o \
                         WHERE o.seq BETWEEN l.from_seq AND l.to_seq AND o.status = 'queued' \
                         OFFSET 0) x \
                        ORDER BY x.seq DESC LIMIT $1)) e \
                     ORDER BY seq DESC LIMIT $1"
                ),
                Some(DeliveryStatus::Failed) => format!(
                    "SELECT {COLUMNS} FROM outbound_events o WHERE o.status = 'failed' \
                     ORDER BY o.seq DESC LIMIT $1"
                ),
                Some(DeliveryStatus::Delivered) => format!(
                    "SELECT {COLUMNS} FROM outbound_events o WHERE o.status = 'delivered' \
                       OR (o.status = 'queued' AND meetpool_streamed(o.seq)) \
                     ORDER BY o.seq DESC LIMIT $1"
                ),
            };
            let rows = sqlx::query(&sql)
                .bind(i64::from(limit))
                .persistent(self.prepared)
                .fetch_all(&mut *self.session().await?)
                .await?;
            return rows.iter().map(event_row).collect();
        };
        // One booking's events by its two partial indexes (pending, and the
        // rest).
        let rows = sqlx::query(&format!(
            "SELECT * FROM ( \
               SELECT {COLUMNS} FROM outbound_events o WHERE o.booking_id = $3 \
                 AND o.status = 'pending' \
               UNION ALL \
               SELECT {COLUMNS} FROM outbound_events o WHERE o.booking_id = $3 \
                 AND o.status <> 'pending') e \
             WHERE $1::text IS NULL OR e.status = $1 \
             ORDER BY seq DESC LIMIT $2"
        ))
        .bind(status.map(DeliveryStatus::as_str))
        .bind(i64::from(limit))
        .bind(booking.0)
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
             WHERE o.seq = $1 AND o.status IN ('pending', 'failed') \
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
            // Delivered, or queued: due already, in the stream's order.
            None => {
                let known = sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM outbound_events o WHERE o.seq = $1 \
                     AND $2 = (SELECT events_prefix FROM meetpool_settings WHERE id = 1)"
                ))
                .bind(seq)
                .bind(prefix)
                .persistent(self.prepared)
                .fetch_optional(&mut *self.session().await?)
                .await?;
                match known.map(|r| event_row(&r)).transpose()? {
                    Some(e) if e.status == DeliveryStatus::Pending => Ok(e),
                    Some(_) => Err(StoreError::Conflict("delivered".into())),
                    None => Err(StoreError::NotFound),
                }
            }
        }
    }

    async fn stats(&self) -> Result<OutboxStats> {
        // Short reads by their indexes, not worth compiling (see `claim`).
        let mut tx = self.pool.begin_with("BEGIN; SET LOCAL jit = off").await?;
        let row = sqlx::query(
            "WITH queued AS ( \
               SELECT o.created_at FROM outbound_events o WHERE o.status = 'queued' \
                 AND o.seq > (SELECT through FROM outbound_stream WHERE id = 1) \
                 AND o.seq <= (SELECT max(seq) FROM outbound_events) \
               UNION ALL \
               SELECT x.created_at FROM outbound_late l CROSS JOIN LATERAL ( \
                 SELECT o.created_at FROM outbound_events o \
                 WHERE o.seq BETWEEN l.from_seq AND l.to_seq AND o.status = 'queued' OFFSET 0) x) \
             SELECT (SELECT count(*) FROM outbound_events WHERE status = 'pending') \
                 + (SELECT count(*) FROM queued) AS pending, \
               (SELECT count(*) FROM outbound_events WHERE status = 'failed') AS failed, \
               LEAST((SELECT min(created_at) FROM outbound_events WHERE status = 'pending'), \
                 (SELECT min(created_at) FROM queued)) AS oldest",
        )
        .persistent(self.prepared)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
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
        // failed or pending events are left to step over. The batches that
        // no remaining queued event was delivered in go with them.
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
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
        .persistent(self.prepared)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM outbound_batches WHERE upto < COALESCE( \
               (SELECT o.seq FROM outbound_events o WHERE o.status = 'queued' ORDER BY o.seq LIMIT 1), \
               (SELECT through FROM outbound_stream WHERE id = 1))",
        )
        .persistent(self.prepared)
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
        sqlx::query("SELECT pg_current_xact_id()")
            .persistent(self.prepared)
            .execute(&mut *tx)
            .await?;
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
