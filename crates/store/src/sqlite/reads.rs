//! The store's reads outside the use cases' transactions: session types,
//! links, bookings, events, the pool's status and what the sweeper and the
//! checks weigh.
use jiff::Timestamp;
use meetpool_domain::{Booking, BookingId, LinkCandidate, LinkId, SessionTypeId, Window};
use sqlx::Row;

use super::rows::{booking_row, link_row, links_from, session_type_row, ts_in, ts_out, uuid_in};
use super::sql::{BOOKING_SELECT, LINK_SELECT, LOOKBACK};
use super::SqliteStore;
use crate::{
    BookingFilter, Event, Link, PaidWindow, PoolStatus, Result, SessionType, StoreError, MOVED,
};

/// The store's reads (the `Store` impl delegates to these).
impl SqliteStore {
    pub(super) async fn session_types(&self) -> Result<Vec<SessionType>> {
        let rows = sqlx::query("SELECT * FROM session_types ORDER BY created_at, name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(session_type_row).collect()
    }

    pub(super) async fn session_type(&self, id: SessionTypeId) -> Result<SessionType> {
        let row = sqlx::query("SELECT * FROM session_types WHERE id = ?")
            .bind(id.to_string())
            .fetch_one(&self.pool)
            .await?;
        session_type_row(&row)
    }

    pub(super) async fn links(&self) -> Result<Vec<Link>> {
        let rows = sqlx::query(&format!("{LINK_SELECT} ORDER BY seq"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(link_row).collect()
    }

    pub(super) async fn link(&self, id: LinkId) -> Result<Link> {
        let row = sqlx::query(&format!("{LINK_SELECT} WHERE id = ?"))
            .bind(id.to_string())
            .fetch_one(&self.pool)
            .await?;
        link_row(&row)
    }

    pub(super) async fn booking(&self, id: BookingId) -> Result<Booking> {
        let row = sqlx::query(&format!("{BOOKING_SELECT} WHERE b.id = ?"))
            .bind(id.to_string())
            .fetch_one(&self.pool)
            .await?;
        booking_row(&row)
    }

    pub(super) async fn booking_by_order(&self, order_id: &str) -> Result<Booking> {
        let row = sqlx::query(&format!("{BOOKING_SELECT} WHERE b.order_id = ?"))
            .bind(order_id)
            .fetch_one(&self.pool)
            .await?;
        booking_row(&row)
    }

    pub(super) async fn booking_by_join_token(&self, token: &str) -> Result<Booking> {
        let row = sqlx::query(&format!("{BOOKING_SELECT} WHERE b.join_token = ?"))
            .bind(token)
            .fetch_one(&self.pool)
            .await?;
        booking_row(&row)
    }

    pub(super) async fn bookings(&self, f: &BookingFilter) -> Result<Vec<Booking>> {
        let rows = sqlx::query(&format!(
            "{BOOKING_SELECT} WHERE (?1 IS NULL OR b.payment_status = ?1) \
             AND (?2 = 0 OR (b.payment_status = 'paid' AND b.meeting_link_id IS NULL AND b.ends_at > ?3)) \
             AND (?4 IS NULL OR (b.starts_at >= ?4 AND b.starts_at < ?6)) \
             AND (?7 IS NULL OR b.starts_at > ?7 OR (b.starts_at = ?7 AND b.id > ?8)) \
             ORDER BY b.starts_at, b.id LIMIT ?5"
        ))
        .bind(f.payment_status.map(|s| s.as_str()))
        .bind(f.unassigned)
        .bind(ts_out(Timestamp::now()))
        .bind(f.starts_within.map(|w| ts_out(w.start)))
        .bind(i64::from(f.limit))
        .bind(f.starts_within.map(|w| ts_out(w.end)))
        .bind(f.after.map(|(start, _)| ts_out(start)))
        .bind(f.after.map(|(_, id)| id.to_string()))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(booking_row).collect()
    }

    pub(super) async fn events(&self, booking: BookingId) -> Result<Vec<Event>> {
        let rows = sqlx::query(
            "SELECT id, booking_id, kind, meeting_link_id, detail, created_at FROM booking_events \
             WHERE booking_id = ? ORDER BY id",
        )
        .bind(booking.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let link: Option<String> = r.try_get("meeting_link_id")?;
                let detail: String = r.try_get("detail")?;
                Ok(Event {
                    id: r.try_get("id")?,
                    booking_id: uuid_in(r.try_get::<&str, _>("booking_id")?)?,
                    kind: r.try_get("kind")?,
                    meeting_link_id: link.as_deref().map(uuid_in).transpose()?,
                    detail: serde_json::from_str(&detail).map_err(StoreError::corrupt)?,
                    created_at: ts_in(r.try_get::<&str, _>("created_at")?)?,
                })
            })
            .collect()
    }

    pub(super) async fn pool_status(&self, now: Timestamp) -> Result<PoolStatus> {
        let r = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM meeting_links_pool) AS total_links, \
             (SELECT COUNT(*) FROM meeting_links_pool WHERE is_available = 1) AS available_links, \
             (SELECT COUNT(*) FROM bookings WHERE meeting_link_id IS NOT NULL AND starts_at <= ?1 AND ends_at > ?1) AS in_use_now, \
             (SELECT COUNT(*) FROM bookings WHERE payment_status = 'paid' AND meeting_link_id IS NULL AND ends_at > ?1) AS unassigned",
        )
        .bind(ts_out(now))
        .fetch_one(&self.pool)
        .await?;
        Ok(PoolStatus {
            total_links: r.try_get("total_links")?,
            available_links: r.try_get("available_links")?,
            in_use_now: r.try_get("in_use_now")?,
            unassigned_paid_bookings: r.try_get("unassigned")?,
        })
    }

    pub(super) async fn recent_assignments(&self, limit: u32) -> Result<Vec<Booking>> {
        let rows = sqlx::query(&format!(
            "{BOOKING_SELECT} WHERE b.meeting_link_id IS NOT NULL ORDER BY b.assigned_at DESC LIMIT ?"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(booking_row).collect()
    }

    pub(super) async fn waiting(&self, limit: u32) -> Result<Vec<Booking>> {
        let rows = sqlx::query(&format!(
            "{BOOKING_SELECT} WHERE b.payment_status = 'paid' AND b.meeting_link_id IS NULL AND b.ends_at > ? \
             ORDER BY b.created_at LIMIT ?"
        ))
        .bind(ts_out(Timestamp::now()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(booking_row).collect()
    }

    pub(super) async fn link_sessions(&self, during: Window) -> Result<Vec<LinkCandidate>> {
        let rows = sqlx::query(
            "SELECT l.id, b.starts_at, \
               datetime(b.ends_at, '+' || s.buffer_minutes || ' minutes') AS busy_end \
             FROM meeting_links_pool l CROSS JOIN meetpool_settings s \
             LEFT JOIN bookings b ON b.meeting_link_id = l.id AND b.starts_at < ?2 AND b.starts_at > ?3 \
               AND datetime(b.ends_at, '+' || s.buffer_minutes || ' minutes') > ?1 \
               AND NOT (b.payment_status <> 'paid' AND b.hold_expires_at <= ?4) \
             WHERE s.id = 1 AND l.is_available = 1 \
             ORDER BY l.seq, b.starts_at",
        )
        .bind(ts_out(during.start))
        .bind(ts_out(during.end))
        .bind(ts_out(during.start - LOOKBACK))
        .bind(ts_out(Timestamp::now()))
        .fetch_all(&self.pool)
        .await?;
        links_from(&rows)
    }

    pub(super) async fn paid_sessions(&self, during: Window) -> Result<Vec<PaidWindow>> {
        let rows = sqlx::query(
            "SELECT starts_at, ends_at, sessions, unlinked FROM paid_windows \
             WHERE starts_at < ?2 AND ends_at > ?1 AND starts_at > ?3 AND sessions > 0",
        )
        .bind(ts_out(during.start))
        .bind(ts_out(during.end))
        .bind(ts_out(during.start - LOOKBACK))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let start: String = r.try_get("starts_at")?;
                let end: String = r.try_get("ends_at")?;
                let count = |name: &str| -> Result<u32> {
                    u32::try_from(r.try_get::<i64, _>(name)?).map_err(StoreError::corrupt)
                };
                Ok(PaidWindow {
                    window: Window::new(ts_in(&start)?, ts_in(&end)?),
                    sessions: count("sessions")?,
                    unlinked: count("unlinked")?,
                })
            })
            .collect()
    }

    pub(super) async fn enabled_links(&self) -> Result<u32> {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM meeting_links_pool WHERE is_available = 1")
                .fetch_one(&self.pool)
                .await?;
        u32::try_from(n).map_err(StoreError::corrupt)
    }

    pub(super) async fn overlapping_pairs(&self) -> Result<Vec<(BookingId, BookingId)>> {
        let rows = sqlx::query(
            "SELECT a.id AS a, b.id AS b FROM bookings a \
             JOIN bookings b ON a.meeting_link_id = b.meeting_link_id AND a.id < b.id \
             CROSS JOIN meetpool_settings s \
             WHERE s.id = 1 AND a.meeting_link_id IS NOT NULL \
               AND a.starts_at < datetime(b.ends_at, '+' || s.buffer_minutes || ' minutes') \
               AND b.starts_at < datetime(a.ends_at, '+' || s.buffer_minutes || ' minutes')",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    uuid_in(r.try_get::<&str, _>("a")?)?,
                    uuid_in(r.try_get::<&str, _>("b")?)?,
                ))
            })
            .collect()
    }

    pub(super) async fn moved_since(
        &self,
        during: Window,
        since: Timestamp,
    ) -> Result<Vec<BookingId>> {
        let rows = sqlx::query(&format!(
            "SELECT b.id FROM bookings b WHERE b.starts_at >= ? AND b.starts_at < ? \
               AND b.meeting_link_id IS NOT NULL AND EXISTS ( \
                 SELECT 1 FROM booking_events e WHERE e.booking_id = b.id \
                   AND {MOVED} AND e.created_at >= ?)"
        ))
        .bind(ts_out(during.start))
        .bind(ts_out(during.end))
        .bind(ts_out(since))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| uuid_in(r.try_get::<&str, _>("id")?))
            .collect()
    }
}
