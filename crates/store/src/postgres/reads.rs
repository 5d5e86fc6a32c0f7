//! The store's reads outside the use cases' transactions: session types,
//! links, bookings, events, the pool's status and what the sweeper and the
//! checks weigh.
use jiff::Timestamp;
use jiff_sqlx::ToSqlx;
use meetpool_domain::{Booking, BookingId, LinkCandidate, LinkId, SessionTypeId, Window};
use sqlx::Row;
use uuid::Uuid;

use super::rows::{booking_row, link_row, links_with_sessions, session_type_row, ts};
use super::sql::{BOOKING_SELECT, LINK_COLUMNS, SESSION_TYPE_SELECT};
use super::{PgStore, Statements};
use crate::{
    BookingFilter, Event, Link, PaidWindow, PoolStatus, Result, SessionType, StoreError, MOVED,
};

/// The sessions holding a link whose busy time overlaps `$1` up to the
/// bound that follows (a `UNION ALL` arm after the links). No busy range is
/// longer than the settings' `longest_busy` (migration 0012), which bounds
/// the read to a range of bookings_starts. The overlap is spelt out on the
/// range's ends rather than with `&&`, which would offer the planner the
/// exclusion constraint's GiST index: on a long history it then intersects
/// that index's matches over every past session with the range, several
/// times slower than the range alone.
const SESSIONS_DURING: &str =
    "SELECT meeting_link_id, NULL, starts_at, upper(busy), NULL FROM bookings \
    WHERE meeting_link_id IS NOT NULL \
      AND starts_at > $1 - (SELECT longest_busy FROM meetpool_settings WHERE id = 1) \
      AND upper(busy) > $1 \
      AND NOT (payment_status <> 'paid' AND hold_expires_at <= now()) \
      AND starts_at <";

/// The store's reads (the `Store` impl delegates to these).
impl PgStore {
    pub(super) async fn session_types(&self) -> Result<Vec<SessionType>> {
        let rows = self
            .query(&format!("{SESSION_TYPE_SELECT} ORDER BY created_at, name"))
            .fetch_all(&mut *self.session().await?)
            .await?;
        rows.iter().map(session_type_row).collect()
    }

    pub(super) async fn session_type(&self, id: SessionTypeId) -> Result<SessionType> {
        let row = self
            .query(&format!("{SESSION_TYPE_SELECT} WHERE id = $1"))
            .bind(id.0)
            .fetch_one(&mut *self.session().await?)
            .await?;
        session_type_row(&row)
    }

    pub(super) async fn links(&self) -> Result<Vec<Link>> {
        let rows = self
            .query(&format!(
                "SELECT {LINK_COLUMNS} FROM meeting_links_pool ORDER BY seq"
            ))
            .fetch_all(&mut *self.session().await?)
            .await?;
        rows.iter().map(link_row).collect()
    }

    pub(super) async fn link(&self, id: LinkId) -> Result<Link> {
        let row = self
            .query(&format!(
                "SELECT {LINK_COLUMNS} FROM meeting_links_pool WHERE id = $1"
            ))
            .bind(id.0)
            .fetch_one(&mut *self.session().await?)
            .await?;
        link_row(&row)
    }

    pub(super) async fn booking(&self, id: BookingId) -> Result<Booking> {
        let row = self
            .query(&format!("{BOOKING_SELECT} WHERE b.id = $1"))
            .bind(id.0)
            .fetch_one(&mut *self.session().await?)
            .await?;
        booking_row(&row)
    }

    pub(super) async fn booking_by_order(&self, order_id: &str) -> Result<Booking> {
        let row = self
            .query(&format!("{BOOKING_SELECT} WHERE b.order_id = $1"))
            .bind(order_id)
            .fetch_one(&mut *self.session().await?)
            .await?;
        booking_row(&row)
    }

    pub(super) async fn booking_by_join_token(&self, token: &str) -> Result<Booking> {
        let row = self
            .query(&format!("{BOOKING_SELECT} WHERE b.join_token = $1"))
            .bind(token)
            .fetch_one(&mut *self.session().await?)
            .await?;
        booking_row(&row)
    }

    pub(super) async fn bookings(&self, f: &BookingFilter) -> Result<Vec<Booking>> {
        let rows = self.query(&format!(
            "{BOOKING_SELECT} WHERE ($1::text IS NULL OR b.payment_status = $1) \
             AND (NOT $2 OR (b.payment_status = 'paid' AND b.meeting_link_id IS NULL AND b.ends_at > now())) \
             AND ($3::timestamptz IS NULL OR (b.starts_at >= $3 AND b.starts_at < $5)) \
             AND ($6::timestamptz IS NULL OR (b.starts_at, b.id) > ($6, $7)) \
             ORDER BY b.starts_at, b.id LIMIT $4"
        ))
        .bind(f.payment_status.map(|s| s.as_str()))
        .bind(f.unassigned)
        .bind(f.starts_within.map(|w| w.start.to_sqlx()))
        .bind(i64::from(f.limit))
        .bind(f.starts_within.map(|w| w.end.to_sqlx()))
        .bind(f.after.map(|(start, _)| start.to_sqlx()))
        .bind(f.after.map(|(_, id)| id.0))
        .fetch_all(&mut *self.session().await?)
        .await?;
        rows.iter().map(booking_row).collect()
    }

    pub(super) async fn events(&self, booking: BookingId) -> Result<Vec<Event>> {
        let rows = self
            .query(
                "SELECT id, booking_id, kind, meeting_link_id, detail::text AS detail, created_at \
             FROM booking_events WHERE booking_id = $1 ORDER BY id",
            )
            .bind(booking.0)
            .fetch_all(&mut *self.session().await?)
            .await?;
        rows.iter()
            .map(|r| {
                let detail: String = r.try_get("detail")?;
                Ok(Event {
                    id: r.try_get("id")?,
                    booking_id: BookingId(r.try_get("booking_id")?),
                    kind: r.try_get("kind")?,
                    meeting_link_id: r.try_get::<Option<Uuid>, _>("meeting_link_id")?.map(LinkId),
                    detail: serde_json::from_str(&detail).map_err(StoreError::corrupt)?,
                    created_at: ts(r, "created_at")?,
                })
            })
            .collect()
    }

    pub(super) async fn pool_status(&self, now: Timestamp) -> Result<PoolStatus> {
        let r = self.query(
            "SELECT (SELECT COUNT(*) FROM meeting_links_pool) AS total_links, \
             (SELECT COUNT(*) FROM meeting_links_pool WHERE is_available) AS available_links, \
             (SELECT COUNT(*) FROM bookings WHERE meeting_link_id IS NOT NULL AND starts_at <= $1 AND ends_at > $1) AS in_use_now, \
             (SELECT COUNT(*) FROM bookings WHERE payment_status = 'paid' AND meeting_link_id IS NULL AND ends_at > $1) AS unassigned",
        )
        .bind(now.to_sqlx())
        .fetch_one(&mut *self.session().await?)
        .await?;
        Ok(PoolStatus {
            total_links: r.try_get("total_links")?,
            available_links: r.try_get("available_links")?,
            in_use_now: r.try_get("in_use_now")?,
            unassigned_paid_bookings: r.try_get("unassigned")?,
        })
    }

    pub(super) async fn recent_assignments(&self, limit: u32) -> Result<Vec<Booking>> {
        let rows = self.query(&format!(
            "{BOOKING_SELECT} WHERE b.meeting_link_id IS NOT NULL ORDER BY b.assigned_at DESC NULLS LAST LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(&mut *self.session().await?)
        .await?;
        rows.iter().map(booking_row).collect()
    }

    pub(super) async fn waiting(&self, limit: u32) -> Result<Vec<Booking>> {
        let rows = self.query(&format!(
            "{BOOKING_SELECT} WHERE b.payment_status = 'paid' AND b.meeting_link_id IS NULL AND b.ends_at > now() \
             ORDER BY b.created_at LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(&mut *self.session().await?)
        .await?;
        rows.iter().map(booking_row).collect()
    }

    pub(super) async fn link_sessions(&self, during: Window) -> Result<Vec<LinkCandidate>> {
        // The enabled links and the sessions on any link, in one statement
        // and one snapshot, matched up here: a join would cost PostgreSQL
        // more to plan (each time: the range's bounds change the plan) and
        // to run than it saves.
        let rows = self
            .query(&format!(
                "SELECT id AS link_id, seq, NULL::timestamptz AS starts_at, \
               NULL::timestamptz AS busy_end, NULL::int4 AS duration \
             FROM meeting_links_pool WHERE is_available \
             UNION ALL {SESSIONS_DURING} $2"
            ))
            .bind(during.start.to_sqlx())
            .bind(during.end.to_sqlx())
            .fetch_all(&mut *self.session().await?)
            .await?;
        Ok(links_with_sessions(&rows)?.1)
    }

    pub(super) async fn sessions_of_type(
        &self,
        session_type: SessionTypeId,
        starts: Window,
        buffer_minutes: u32,
    ) -> Result<Option<(i32, Vec<LinkCandidate>)>> {
        // The session type's duration in the same statement: one round
        // trip where a read of the type first would be two.
        let rows = self
            .query(&format!(
                "WITH st AS (SELECT duration FROM session_types WHERE id = $3) \
             SELECT NULL::uuid AS link_id, NULL::int8 AS seq, NULL::timestamptz AS starts_at, \
               NULL::timestamptz AS busy_end, duration FROM st \
             UNION ALL \
             SELECT id, seq, NULL, NULL, NULL FROM meeting_links_pool WHERE is_available \
             UNION ALL {SESSIONS_DURING} \
               $2 + make_interval(mins => (SELECT duration FROM st) + $4)"
            ))
            .bind(starts.start.to_sqlx())
            .bind(starts.end.to_sqlx())
            .bind(session_type.0)
            .bind(i32::try_from(buffer_minutes).unwrap_or(i32::MAX))
            .fetch_all(&mut *self.session().await?)
            .await?;
        let (duration, links) = links_with_sessions(&rows)?;
        Ok(duration.map(|d| (d, links)))
    }

    pub(super) async fn paid_sessions(&self, during: Window) -> Result<Vec<PaidWindow>> {
        // Sessions last at most a day: the lower bound on starts_at bounds
        // the read to a range of paid_window_deltas_window, in its order. A
        // window's count is the sum of its rows (migration 0010), added up
        // here: the rows are as many as the windows once folded, and
        // PostgreSQL's grouping would cost more than it saves.
        let rows = self
            .query(
                "SELECT starts_at, ends_at, sessions, unlinked FROM paid_window_deltas \
             WHERE starts_at < $2 AND ends_at > $1 AND starts_at > $1 - interval '1441 minutes' \
             ORDER BY starts_at, ends_at",
            )
            .bind(during.start.to_sqlx())
            .bind(during.end.to_sqlx())
            .fetch_all(&mut *self.session().await?)
            .await?;
        let mut sums: Vec<(Window, i64, i64)> = Vec::new();
        for r in &rows {
            let window = Window::new(ts(r, "starts_at")?, ts(r, "ends_at")?);
            let sessions: i64 = r.try_get("sessions")?;
            let unlinked: i64 = r.try_get("unlinked")?;
            match sums.last_mut() {
                Some(last) if last.0 == window => {
                    last.1 += sessions;
                    last.2 += unlinked;
                }
                _ => sums.push((window, sessions, unlinked)),
            }
        }
        sums.into_iter()
            .filter(|s| s.1 > 0)
            .map(|(window, sessions, unlinked)| {
                Ok(PaidWindow {
                    window,
                    sessions: u32::try_from(sessions).map_err(StoreError::corrupt)?,
                    unlinked: u32::try_from(unlinked).map_err(StoreError::corrupt)?,
                })
            })
            .collect()
    }

    pub(super) async fn enabled_links(&self) -> Result<u32> {
        let n: i64 = self
            .query_scalar("SELECT count(*) FROM meeting_links_pool WHERE is_available")
            .fetch_one(&mut *self.session().await?)
            .await?;
        u32::try_from(n).map_err(StoreError::corrupt)
    }

    pub(super) async fn fold_paid_windows(&self, windows: u32) -> Result<u64> {
        let n: i64 = self
            .query_scalar("SELECT meetpool_fold_paid_windows($1)")
            .bind(i32::try_from(windows).unwrap_or(i32::MAX))
            .fetch_one(&mut *self.session().await?)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    pub(super) async fn overlapping_pairs(&self) -> Result<Vec<(BookingId, BookingId)>> {
        let rows = self.query(
            "SELECT a.id AS a, b.id AS b FROM bookings a \
             JOIN bookings b ON a.meeting_link_id = b.meeting_link_id AND a.id < b.id AND a.busy && b.busy \
             WHERE a.meeting_link_id IS NOT NULL",
        )
        .fetch_all(&mut *self.session().await?)
        .await?;
        rows.iter()
            .map(|r| Ok((BookingId(r.try_get("a")?), BookingId(r.try_get("b")?))))
            .collect()
    }

    pub(super) async fn moved_since(
        &self,
        during: Window,
        since: Timestamp,
    ) -> Result<Vec<BookingId>> {
        let rows = self
            .query(&format!(
                "SELECT b.id FROM bookings b WHERE b.starts_at >= $1 AND b.starts_at < $2 \
               AND b.meeting_link_id IS NOT NULL AND EXISTS ( \
                 SELECT 1 FROM booking_events e WHERE e.booking_id = b.id \
                   AND {MOVED} AND e.created_at >= $3)"
            ))
            .bind(during.start.to_sqlx())
            .bind(during.end.to_sqlx())
            .bind(since.to_sqlx())
            .fetch_all(&mut *self.session().await?)
            .await?;
        rows.iter()
            .map(|r| Ok(BookingId(r.try_get("id")?)))
            .collect()
    }
}
