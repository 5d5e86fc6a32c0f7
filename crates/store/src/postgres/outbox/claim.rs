//! The delivery path: claiming due events (the stream's queued ones and
//! the pending ones by their rows) and recording each attempt's outcome.
use jiff::Timestamp;
use jiff_sqlx::ToSqlx;
use sqlx::Row;

use super::{event_row, COLUMNS_NEXT_ATTEMPT};
use crate::postgres::stream::{Advance, Gap, Late, StreamPosition};
use crate::postgres::{PgStore, Prepared, Statements};
use crate::{Attempt, Claim, OutboundEvent, Result, StoreError};

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

impl Statements for PgClaim {
    fn prepared(&self) -> bool {
        self.prepared
    }
}

#[async_trait::async_trait]
impl Claim for PgClaim {
    fn events(&self) -> &[OutboundEvent] {
        &self.events
    }

    async fn record(self: Box<Self>, outcomes: &[(i64, Attempt)]) -> Result<()> {
        // The claim is taken apart below: its statements, built as its own.
        let sql = Prepared(self.prepared);
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
            sql.query(
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
                sql.query(
                    "UPDATE outbound_events SET status = 'pending', next_attempt_at = clock_timestamp() \
                     WHERE seq = ANY($1) AND status = 'queued'",
                )
                .bind(waiting)
                .execute(&mut *tx)
                .await?;
            }
            if stream.moved {
                let StreamPosition { through, gap } = stream.position;
                sql.query(
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
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
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
        let Some(row) = self
            .query(
                "SELECT through, gap_until, gap_xmax::text AS gap_xmax, gap_since, \
               EXISTS (SELECT 1 FROM outbound_late) AS late FROM outbound_stream \
             WHERE id = 1 FOR UPDATE SKIP LOCKED",
            )
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
            self.query_scalar(
                "WITH found AS (UPDATE outbound_events o SET status = 'pending', \
                   next_attempt_at = clock_timestamp() \
                   WHERE o.seq IN (SELECT x.seq FROM outbound_late l CROSS JOIN LATERAL ( \
                     SELECT e.seq FROM outbound_events e WHERE e.seq BETWEEN l.from_seq AND l.to_seq \
                       AND e.status = 'queued' OFFSET 0) x) RETURNING 1), \
                 gone AS (DELETE FROM outbound_late \
                   WHERE horizon <= pg_snapshot_xmin(pg_current_snapshot()) RETURNING 1) \
                 SELECT (SELECT count(*) FROM found) + (SELECT count(*) FROM gone)",
            )
            .fetch_one(&mut **tx)
            .await?
        } else {
            0
        };
        // Every event after the position, whatever its status (one retried
        // by hand before the stream reached it is pending already), with the
        // statement's snapshot: an event is visible here exactly when its
        // transaction had ended by then.
        let rows = self
            .query(&format!(
                "SELECT {COLUMNS_NEXT_ATTEMPT}, o.status = 'queued' AS queued, \
               o.booking_id IS NOT NULL AND EXISTS (SELECT 1 FROM outbound_events p \
                 WHERE p.booking_id = o.booking_id AND p.status = 'pending') AS waits, \
               pg_snapshot_xmin(pg_current_snapshot())::text AS xmin, \
               pg_snapshot_xmax(pg_current_snapshot())::text AS xmax \
             FROM outbound_events o WHERE o.seq > $1 ORDER BY o.seq LIMIT $2"
            ))
            .bind(read.through)
            .bind(i64::from(limit))
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

    pub(super) async fn claim(
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
        let rows = self
            .query(&format!(
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
}
