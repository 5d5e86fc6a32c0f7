//! The outbound event log on SQLite. Instants are bound with milliseconds,
//! as the table's defaults write them, so that text order is time order
//! within a second too.
use jiff::Timestamp;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::rows::{ts_in, uuid_in};
use super::SqliteStore;
use crate::{
    Attempt, Claim, DeliveryStatus, OutboundEvent, Outbox, OutboxStats, Result, StoreError,
};
use meetpool_domain::BookingId;

const COLUMNS: &str = "seq, 'evt_' || (SELECT events_prefix FROM meetpool_settings WHERE id = 1) \
    || '_' || seq AS id, type, booking_id, data, created_at, status, attempts, \
    next_attempt_at, last_error, delivered_at";

fn ms(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

fn event_row(r: &SqliteRow) -> Result<OutboundEvent> {
    let data: String = r.try_get("data")?;
    let status: String = r.try_get("status")?;
    let booking: Option<String> = r.try_get("booking_id")?;
    let delivered: Option<String> = r.try_get("delivered_at")?;
    Ok(OutboundEvent {
        seq: r.try_get("seq")?,
        id: r.try_get("id")?,
        kind: r.try_get("type")?,
        booking_id: booking.as_deref().map(uuid_in).transpose()?,
        data,
        created_at: ts_in(r.try_get("created_at")?)?,
        status: status.parse().map_err(StoreError::corrupt)?,
        attempts: u32::try_from(r.try_get::<i64, _>("attempts")?).map_err(StoreError::corrupt)?,
        next_attempt_at: ts_in(r.try_get("next_attempt_at")?)?,
        last_error: r.try_get("last_error")?,
        delivered_at: delivered.as_deref().map(ts_in).transpose()?,
    })
}

async fn record_one(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    seq: i64,
    attempt: u32,
    outcome: &Attempt,
) -> Result<()> {
    let (status, error, next, delivered) = match outcome {
        Attempt::Delivered { at } => ("delivered", None, None, Some(ms(*at))),
        Attempt::RetryAt { error, next } => ("pending", Some(error), Some(ms(*next)), None),
        Attempt::GaveUp { error } => ("failed", Some(error), None, None),
    };
    sqlx::query(
        "UPDATE outbound_events SET status = ?3, last_error = ?4, \
           next_attempt_at = COALESCE(?5, next_attempt_at), delivered_at = ?6, leased_until = NULL \
         WHERE seq = ?1 AND attempts = ?2 AND status = 'pending'",
    )
    .bind(seq)
    .bind(i64::from(attempt))
    .bind(status)
    .bind(error)
    .bind(next)
    .bind(delivered)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Lets an event of a claim go unattempted: as it was before the claim.
async fn release(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    seq: i64,
    attempt: u32,
) -> Result<()> {
    sqlx::query(
        "UPDATE outbound_events SET attempts = attempts - 1, leased_until = NULL \
         WHERE seq = ?1 AND attempts = ?2 AND status = 'pending'",
    )
    .bind(seq)
    .bind(i64::from(attempt))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// SQLite has one writer: a transaction cannot stay open while events are
/// attempted, so a claim leases its events (the lease is written) and the
/// outcomes are recorded only where the attempt count is still the claim's.
struct SqliteClaim {
    pool: sqlx::SqlitePool,
    write_lock: std::sync::Arc<tokio::sync::Mutex<()>>,
    events: Vec<OutboundEvent>,
}

#[async_trait::async_trait]
impl Claim for SqliteClaim {
    fn events(&self) -> &[OutboundEvent] {
        &self.events
    }

    async fn record(self: Box<Self>, outcomes: &[(i64, Attempt)]) -> Result<()> {
        if self.events.is_empty() {
            return Ok(());
        }
        let _guard = self.write_lock.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for event in &self.events {
            match outcomes.iter().find(|(seq, _)| *seq == event.seq) {
                Some((_, outcome)) => {
                    record_one(&mut tx, event.seq, event.attempts, outcome).await?
                }
                None => release(&mut tx, event.seq, event.attempts).await?,
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Outbox for SqliteStore {
    async fn set_recording(&self, on: bool) -> Result<()> {
        let _guard = self.write_lock.lock().await;
        sqlx::query("UPDATE meetpool_settings SET events_enabled = ?1 WHERE id = 1 AND events_enabled <> ?1")
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
    ) -> Result<Box<dyn Claim>> {
        let _guard = self.write_lock.lock().await;
        let rows = sqlx::query(&format!(
            "UPDATE outbound_events SET attempts = attempts + 1, leased_until = ?2 \
             WHERE seq IN (WITH head AS (SELECT e.seq, e.booking_id FROM outbound_events e \
                 WHERE e.status = 'pending' AND e.next_attempt_at <= ?1 \
                   AND (e.leased_until IS NULL OR e.leased_until <= ?1) \
                   AND (e.booking_id IS NULL OR e.seq = (SELECT min(p.seq) FROM outbound_events p \
                     WHERE p.status = 'pending' AND p.booking_id = e.booking_id)) \
                 ORDER BY e.next_attempt_at, e.seq LIMIT ?3) \
               SELECT seq FROM head UNION ALL \
               SELECT f.seq FROM head h JOIN outbound_events f ON f.booking_id = h.booking_id \
                 AND f.status = 'pending' AND f.seq > h.seq AND f.next_attempt_at <= ?1 \
                 AND (f.leased_until IS NULL OR f.leased_until <= ?1) \
               WHERE NOT EXISTS (SELECT 1 FROM outbound_events p WHERE p.booking_id = h.booking_id \
                 AND p.status = 'pending' AND p.seq > h.seq AND p.seq < f.seq \
                 AND (p.next_attempt_at > ?1 OR p.leased_until > ?1))) \
             RETURNING {COLUMNS}"
        ))
        .bind(ms(now))
        .bind(ms(lease_until))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut events = rows.iter().map(event_row).collect::<Result<Vec<_>>>()?;
        events.sort_by_key(|e| e.seq);
        Ok(Box::new(SqliteClaim {
            pool: self.pool.clone(),
            write_lock: self.write_lock.clone(),
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
                   SELECT {COLUMNS} FROM outbound_events WHERE booking_id = ?3 \
                     AND status = 'pending' AND (?1 IS NULL OR status = ?1) \
                   UNION ALL \
                   SELECT {COLUMNS} FROM outbound_events WHERE booking_id = ?3 \
                     AND status <> 'pending' AND (?1 IS NULL OR status = ?1)) \
                 ORDER BY seq DESC LIMIT ?2"
            )
        } else {
            format!(
                "SELECT {COLUMNS} FROM outbound_events WHERE ?3 IS NULL \
                   AND (?1 IS NULL OR status = ?1) ORDER BY seq DESC LIMIT ?2"
            )
        };
        let rows = sqlx::query(&sql)
            .bind(status.map(DeliveryStatus::as_str))
            .bind(i64::from(limit))
            .bind(booking.map(|b| b.to_string()))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(event_row).collect()
    }

    async fn retry(&self, id: &str, now: Timestamp) -> Result<OutboundEvent> {
        let (prefix, seq) = crate::outbox::parse_id(id).ok_or(StoreError::NotFound)?;
        let _guard = self.write_lock.lock().await;
        let row = sqlx::query(&format!(
            "UPDATE outbound_events SET next_attempt_at = ?2, \
               attempts = CASE WHEN status = 'failed' THEN 0 ELSE attempts END, \
               leased_until = CASE WHEN status = 'failed' THEN NULL ELSE leased_until END, \
               status = 'pending' \
             WHERE seq = ?1 AND status <> 'delivered' \
               AND ?3 = (SELECT events_prefix FROM meetpool_settings WHERE id = 1) \
             RETURNING {COLUMNS}"
        ))
        .bind(seq)
        .bind(ms(now))
        .bind(prefix)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => event_row(&r),
            None => {
                let known: Option<i64> = sqlx::query_scalar(
                    "SELECT seq FROM outbound_events WHERE seq = ?1 \
                     AND ?2 = (SELECT events_prefix FROM meetpool_settings WHERE id = 1)",
                )
                .bind(seq)
                .bind(prefix)
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
        let (pending, failed, oldest): (i64, i64, Option<String>) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM outbound_events WHERE status = 'pending'), \
               (SELECT count(*) FROM outbound_events WHERE status = 'failed'), \
               (SELECT min(created_at) FROM outbound_events WHERE status = 'pending')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(OutboxStats {
            pending,
            failed,
            oldest_pending: oldest.as_deref().map(ts_in).transpose()?,
        })
    }

    async fn prune(&self, before: Timestamp, limit: u32) -> Result<u64> {
        let _guard = self.write_lock.lock().await;
        let done = sqlx::query(
            "DELETE FROM outbound_events WHERE seq IN ( \
               SELECT o.seq FROM outbound_events o \
               WHERE o.status = 'delivered' AND o.seq < COALESCE( \
                 (SELECT n.seq FROM outbound_events n WHERE n.created_at >= ?1 ORDER BY n.seq LIMIT 1), \
                 9223372036854775807) \
               ORDER BY o.seq LIMIT ?2)",
        )
        .bind(ms(before))
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn raise(&self, kind: &str, dedup_key: &str, data: &serde_json::Value) -> Result<bool> {
        let _guard = self.write_lock.lock().await;
        let done = sqlx::query(
            "INSERT OR IGNORE INTO outbound_events (type, dedup_key, data) \
             SELECT ?, ?, ? WHERE (SELECT events_enabled FROM meetpool_settings WHERE id = 1)",
        )
        .bind(kind)
        .bind(dedup_key)
        .bind(data.to_string())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
