//! What operators see and do: the listing of events, a retry by hand,
//! and the figures the metrics report.
use jiff::Timestamp;
use jiff_sqlx::ToSqlx;
use meetpool_domain::BookingId;
use sqlx::Row;

use super::{event_row, COLUMNS};
use crate::postgres::{PgStore, Statements};
use crate::{DeliveryStatus, OutboundEvent, OutboxStats, Result, StoreError};

/// The outbox's operator side (the `Outbox` impl delegates to these).
impl PgStore {
    pub(super) async fn list(
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
            let rows = self
                .query(&sql)
                .bind(i64::from(limit))
                .fetch_all(&mut *self.session().await?)
                .await?;
            return rows.iter().map(event_row).collect();
        };
        // One booking's events by its two partial indexes (pending, and the
        // rest).
        let rows = self
            .query(&format!(
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
            .fetch_all(&mut *self.session().await?)
            .await?;
        rows.iter().map(event_row).collect()
    }

    pub(super) async fn retry(&self, id: &str, now: Timestamp) -> Result<OutboundEvent> {
        let (prefix, seq) = crate::outbox::parse_id(id).ok_or(StoreError::NotFound)?;
        let mut tx = self.pool.begin().await?;
        let row = self
            .query(&format!(
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
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        match row {
            Some(r) => event_row(&r),
            // Delivered, or queued: due already, in the stream's order.
            None => {
                let known = self
                    .query(&format!(
                        "SELECT {COLUMNS} FROM outbound_events o WHERE o.seq = $1 \
                     AND $2 = (SELECT events_prefix FROM meetpool_settings WHERE id = 1)"
                    ))
                    .bind(seq)
                    .bind(prefix)
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

    pub(super) async fn stats(&self) -> Result<OutboxStats> {
        // Short reads by their indexes, not worth compiling (see `claim`).
        let mut tx = self.pool.begin_with("BEGIN; SET LOCAL jit = off").await?;
        let row = self
            .query(
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
}
