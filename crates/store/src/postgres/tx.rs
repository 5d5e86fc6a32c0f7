//! PostgreSQL's transactions: each of the port's calls one round trip, the
//! batched ones included; a failed statement poisons the transaction.
use async_trait::async_trait;
use jiff::Timestamp;
use jiff_sqlx::ToSqlx;
use meetpool_domain::{Booking, BookingId, LinkCandidate, LinkId, NewBooking, Window};
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use super::rows::{booking_row, candidate_params, candidates_from, link_row, ordinal};
use super::sql::{
    BOOKING_SELECT, CANDIDATES_SQL, LINK_COLUMNS, LOCK_BOOKING_SQL, LOCK_ORDERS_SQL,
    WRITE_BOOKINGS_SQL,
};
use super::Statements;
use crate::{
    BookingChange, Coordination, Link, LinkChange, LinkPatch, LockedOrder, NewEvent, NewLink,
    OrderClaim, Result, Schedule, SessionType, StoreError, Tx,
};

pub struct PgTx {
    pub(super) tx: Transaction<'static, Postgres>,
    pub(super) coordination: Coordination,
    /// Whether statements are prepared once per connection (not behind a
    /// transaction-mode pooler).
    pub(super) prepared: bool,
    /// A statement failed. Unlike SQLite, PostgreSQL then refuses everything
    /// but a rollback, and answers COMMIT with a silent ROLLBACK: a caller
    /// that caught the error (a Conflict, an Overlap) and carried on must not
    /// believe its other writes were kept.
    pub(super) failed: bool,
    /// Windows whose hour locks this transaction holds already.
    pub(super) locked: Vec<Window>,
}

impl PgTx {
    /// Sorts a failed statement's error into the port's kinds, and
    /// remembers that the transaction can no longer commit.
    fn track<T>(&mut self, r: std::result::Result<T, sqlx::Error>) -> Result<T> {
        r.map_err(|e| {
            // fetch_one's "no row" is the driver's, not a failed statement.
            self.failed |= !matches!(e, sqlx::Error::RowNotFound);
            StoreError::classify(e)
        })
    }
}

impl Statements for PgTx {
    fn prepared(&self) -> bool {
        self.prepared
    }
}

#[async_trait]
impl Tx for PgTx {
    async fn commit(mut self: Box<Self>) -> Result<()> {
        if self.failed {
            self.tx.rollback().await?;
            tracing::warn!("commit after a failed statement: rolled back, to be retried");
            return Err(StoreError::Retry);
        }
        self.tx.commit().await?;
        Ok(())
    }

    async fn lock_window(&mut self, busy: Window) -> Result<()> {
        if self.coordination == Coordination::ConstraintOnly
            || self
                .locked
                .iter()
                .any(|w| w.start <= busy.start && busy.end <= w.end)
        {
            return Ok(());
        }
        // The hours and their order are meetpool_lock_window's (migration 0002).
        let done = self
            .query("SELECT meetpool_lock_window(tstzrange($1, $2, '[)'))")
            .bind(busy.start.to_sqlx())
            .bind(busy.end.to_sqlx())
            .execute(&mut *self.tx)
            .await;
        self.track(done)?;
        self.locked.push(busy);
        Ok(())
    }

    async fn insert_session_type(&mut self, st: &SessionType) -> Result<()> {
        let done = self.query(
            "INSERT INTO session_types (id, name, duration, price, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(st.id.0)
        .bind(&st.name)
        .bind(st.duration)
        .bind(st.price)
        .bind(st.created_at.to_sqlx())
        .execute(&mut *self.tx)
        .await;
        self.track(done)?;
        Ok(())
    }

    async fn update_session_type(&mut self, st: &SessionType) -> Result<()> {
        let done = self.query(
            "UPDATE session_types SET name = $1, duration = $2, price = $3, updated_at = now() WHERE id = $4",
        )
        .bind(&st.name)
        .bind(st.duration)
        .bind(st.price)
        .bind(st.id.0)
        .execute(&mut *self.tx)
        .await;
        let done = self.track(done)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn insert_link(&mut self, link: &NewLink) -> Result<Link> {
        let row = self.query(&format!(
            "INSERT INTO meeting_links_pool (id, meeting_link, notes, is_available) VALUES ($1, $2, $3, $4) \
             RETURNING {LINK_COLUMNS}"
        ))
        .bind(link.id.0)
        .bind(link.meeting_link.as_str())
        .bind(&link.notes)
        .bind(link.is_available)
        .fetch_one(&mut *self.tx)
        .await;
        let row = self.track(row)?;
        link_row(&row)
    }

    async fn update_link(&mut self, id: LinkId, patch: &LinkPatch) -> Result<Link> {
        let row = self
            .query(&format!(
                "UPDATE meeting_links_pool SET \
               meeting_link = COALESCE($1, meeting_link), \
               notes = CASE WHEN $2 THEN $3 ELSE notes END, \
               is_available = COALESCE($4, is_available) \
             WHERE id = $5 RETURNING {LINK_COLUMNS}"
            ))
            .bind(patch.meeting_link.as_ref().map(|u| u.as_str()))
            .bind(patch.notes.is_some())
            .bind(patch.notes.clone().flatten())
            .bind(patch.is_available)
            .bind(id.0)
            .fetch_one(&mut *self.tx)
            .await;
        let row = self.track(row)?;
        link_row(&row)
    }

    async fn delete_link(&mut self, id: LinkId) -> Result<()> {
        let done = self
            .query("DELETE FROM meeting_links_pool WHERE id = $1")
            .bind(id.0)
            .execute(&mut *self.tx)
            .await;
        let done = self.track(done)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn insert_booking(&mut self, b: &NewBooking) -> Result<()> {
        let done = self.query(
            "INSERT INTO bookings (id, order_id, user_id, expert_id, session_type_id, booking_date, \
             booking_time, price, payment_status, status, starts_at, ends_at, join_token, hold_expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(b.id.0)
        .bind(b.order_id.as_str())
        .bind(&b.user_id)
        .bind(&b.expert_id)
        .bind(b.session_type_id.0)
        .bind(b.booking_date.to_sqlx())
        .bind(b.booking_time.to_sqlx())
        .bind(b.price)
        .bind(b.payment_status.as_str())
        .bind(&b.status)
        .bind(b.window.start.to_sqlx())
        .bind(b.window.end.to_sqlx())
        .bind(&b.join_token)
        .bind(b.hold_expires_at.map(|t| t.to_sqlx()))
        .execute(&mut *self.tx)
        .await;
        self.track(done)?;
        Ok(())
    }

    async fn lock_booking(&mut self, id: BookingId) -> Result<Booking> {
        let row = self
            .query(LOCK_BOOKING_SQL)
            .bind(id.0)
            .fetch_one(&mut *self.tx)
            .await;
        let row = self.track(row)?;
        booking_row(&row)
    }

    async fn candidates(
        &mut self,
        wants: &[(Window, BookingId)],
    ) -> Result<Vec<Vec<LinkCandidate>>> {
        let (except, starts) = candidate_params(wants);
        let rows = self
            .query(CANDIDATES_SQL)
            .bind(&except)
            .bind(&starts)
            .fetch_all(&mut *self.tx)
            .await;
        candidates_from(&self.track(rows)?, wants.len())
    }

    async fn holder_overlapping(
        &mut self,
        link: LinkId,
        busy: Window,
        except: BookingId,
    ) -> Result<Option<BookingId>> {
        let row = self
            .query_scalar::<Uuid>(
                "SELECT b.id FROM bookings b \
             WHERE b.meeting_link_id = $1 AND b.id <> $2 AND b.busy && tstzrange($3, $4, '[)') \
             ORDER BY b.starts_at LIMIT 1",
            )
            .bind(link.0)
            .bind(except.0)
            .bind(busy.start.to_sqlx())
            .bind(busy.end.to_sqlx())
            .fetch_optional(&mut *self.tx)
            .await;
        let row = self.track(row)?;
        Ok(row.map(BookingId))
    }

    async fn linked_during(&mut self, during: Window) -> Result<Vec<Booking>> {
        let rows = self
            .query(&format!(
                "{BOOKING_SELECT} WHERE b.meeting_link_id IS NOT NULL AND b.starts_at < $2 \
             AND b.ends_at > $1 - interval '1441 minutes' ORDER BY b.starts_at"
            ))
            .bind(during.start.to_sqlx())
            .bind(during.end.to_sqlx())
            .fetch_all(&mut *self.tx)
            .await;
        let rows = self.track(rows)?;
        rows.iter().map(booking_row).collect()
    }

    async fn bookings_on_link_from(
        &mut self,
        link: LinkId,
        from: Timestamp,
    ) -> Result<Vec<Booking>> {
        let rows = self.query(&format!(
            "{BOOKING_SELECT} WHERE b.meeting_link_id = $1 AND b.starts_at >= $2 ORDER BY b.starts_at"
        ))
        .bind(link.0)
        .bind(from.to_sqlx())
        .fetch_all(&mut *self.tx)
        .await;
        let rows = self.track(rows)?;
        rows.iter().map(booking_row).collect()
    }

    // Locked, and skipping bookings another transaction holds: that one may
    // be refunding the booking this one is about to give a link.
    async fn waiting_during(
        &mut self,
        during: Window,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Booking>> {
        let rows = self
            .query(&format!(
                "{BOOKING_SELECT} WHERE b.payment_status = 'paid' AND b.meeting_link_id IS NULL \
             AND b.starts_at < $1 AND b.ends_at > $2 AND b.ends_at > $3 \
             ORDER BY b.created_at LIMIT $4 \
             FOR UPDATE OF b SKIP LOCKED"
            ))
            .bind(during.end.to_sqlx())
            .bind(during.start.to_sqlx())
            .bind(now.to_sqlx())
            .bind(i64::from(limit))
            .fetch_all(&mut *self.tx)
            .await;
        let rows = self.track(rows)?;
        rows.iter().map(booking_row).collect()
    }

    async fn reschedule(
        &mut self,
        id: BookingId,
        schedule: &Schedule,
        link: LinkChange,
    ) -> Result<Booking> {
        let (set_link, new_link) = match link {
            LinkChange::Keep => (false, None),
            LinkChange::Set(l) => (true, Some(l.0)),
            LinkChange::Clear => (true, None),
        };
        let done = self.query(
            "UPDATE bookings SET booking_date = $2, booking_time = $3, session_type_id = $4, \
               starts_at = $5, ends_at = $6, reschedules = reschedules + 1, \
               meeting_link_id = CASE WHEN $7 THEN $8 ELSE meeting_link_id END, \
               assigned_at = CASE WHEN NOT $7 THEN assigned_at WHEN $8::uuid IS NULL THEN NULL ELSE now() END \
             WHERE id = $1",
        )
        .bind(id.0)
        .bind(schedule.booking_date.to_sqlx())
        .bind(schedule.booking_time.to_sqlx())
        .bind(schedule.session_type_id.0)
        .bind(schedule.window.start.to_sqlx())
        .bind(schedule.window.end.to_sqlx())
        .bind(set_link)
        .bind(new_link)
        .execute(&mut *self.tx)
        .await;
        if self.track(done)?.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.lock_booking(id).await
    }

    async fn release_expired_holds(
        &mut self,
        during: Option<Window>,
        now: Timestamp,
    ) -> Result<Vec<(BookingId, LinkId)>> {
        let rows = self.query(
            "WITH expired AS (SELECT id, meeting_link_id FROM bookings \
               WHERE payment_status <> 'paid' AND meeting_link_id IS NOT NULL AND hold_expires_at <= $1 \
                 AND ($2::timestamptz IS NULL OR (busy && tstzrange($2, $3, '[)'))) \
               ORDER BY id FOR UPDATE SKIP LOCKED) \
             UPDATE bookings b SET meeting_link_id = NULL, assigned_at = NULL, hold_expires_at = NULL \
             FROM expired WHERE b.id = expired.id RETURNING b.id, expired.meeting_link_id",
        )
        .bind(now.to_sqlx())
        .bind(during.map(|w| w.start.to_sqlx()))
        .bind(during.map(|w| w.end.to_sqlx()))
        .fetch_all(&mut *self.tx)
        .await;
        self.track(rows)?
            .iter()
            .map(|r| {
                Ok((
                    BookingId(r.try_get("id")?),
                    LinkId(r.try_get("meeting_link_id")?),
                ))
            })
            .collect()
    }

    async fn record_event(&mut self, booking: BookingId, event: &NewEvent) -> Result<()> {
        // sqlx's json feature is off: jsonb travels as text.
        let done = self.query(
            "INSERT INTO booking_events (booking_id, kind, meeting_link_id, detail) VALUES ($1, $2, $3, $4::jsonb)",
        )
        .bind(booking.0)
        .bind(event.kind.as_str())
        .bind(event.link.map(|l| l.0))
        .bind(event.detail.to_string())
        .execute(&mut *self.tx)
        .await;
        self.track(done)?;
        Ok(())
    }

    // One round trip for the whole group: the row locks, the
    // de-duplication and the hour locks (after the row locks, as everywhere
    // else).
    async fn lock_orders(
        &mut self,
        items: &[OrderClaim<'_>],
        buffer_minutes: u32,
    ) -> Result<Vec<Option<LockedOrder>>> {
        let hour_locks = self.coordination == Coordination::HourLocks;
        let orders: Vec<&str> = items.iter().map(|i| i.order_id).collect();
        let keys: Vec<&str> = items.iter().map(|i| i.notification_id).collect();
        let lock: Vec<bool> = items.iter().map(|i| i.lock_window && hour_locks).collect();
        let rows = self
            .query(LOCK_ORDERS_SQL)
            .bind(&orders)
            .bind(&keys)
            .bind(i32::try_from(buffer_minutes).unwrap_or(i32::MAX))
            .bind(&lock)
            .fetch_all(&mut *self.tx)
            .await;
        let rows = self.track(rows)?;
        let mut out = vec![None; items.len()];
        for r in &rows {
            let i = ordinal(r, "item", items.len())?;
            let booking = booking_row(r)?;
            if lock[i] {
                self.locked.push(booking.window.busy(buffer_minutes));
            }
            out[i] = Some(LockedOrder {
                booking,
                first_claim: r.try_get("fresh")?,
            });
        }
        Ok(out)
    }

    async fn write_bookings(
        &mut self,
        writes: &[(BookingId, &BookingChange)],
    ) -> Result<Vec<Booking>> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = writes.iter().map(|(id, _)| id.0).collect();
        let statuses: Vec<Option<&str>> = writes
            .iter()
            .map(|(_, c)| c.payment.as_ref().map(|p| p.status.as_str()))
            .collect();
        let txns: Vec<Option<&str>> = writes
            .iter()
            .map(|(_, c)| c.payment.as_ref().and_then(|p| p.transaction_id.as_deref()))
            .collect();
        let booking_statuses: Vec<Option<&str>> = writes
            .iter()
            .map(|(_, c)| c.payment.as_ref().and_then(|p| p.booking_status))
            .collect();
        let set_links: Vec<bool> = writes
            .iter()
            .map(|(_, c)| c.link != LinkChange::Keep)
            .collect();
        let links: Vec<Option<Uuid>> = writes
            .iter()
            .map(|(_, c)| match c.link {
                LinkChange::Set(l) => Some(l.0),
                LinkChange::Keep | LinkChange::Clear => None,
            })
            .collect();
        let events = writes
            .iter()
            .zip(1_i64..)
            .flat_map(|((_, c), item)| c.events.iter().map(move |e| (item, e)));
        let mut of_items = Vec::new();
        let mut kinds = Vec::new();
        let mut event_links = Vec::new();
        let mut details = Vec::new();
        for (item, e) in events {
            of_items.push(item);
            kinds.push(e.kind.as_str());
            event_links.push(e.link.map(|l| l.0));
            details.push(e.detail.to_string());
        }
        let rows = self
            .query(WRITE_BOOKINGS_SQL)
            .bind(&ids)
            .bind(&statuses)
            .bind(&txns)
            .bind(&set_links)
            .bind(&links)
            .bind(&of_items)
            .bind(&kinds)
            .bind(&event_links)
            .bind(&details)
            .bind(&booking_statuses)
            .fetch_all(&mut *self.tx)
            .await;
        let rows = self.track(rows)?;
        if rows.len() != writes.len() {
            return Err(StoreError::NotFound);
        }
        // bookings_derive() has recomputed `busy`; a double booking was
        // refused by the exclusion constraint (23P01, StoreError::Overlap).
        rows.iter().map(booking_row).collect()
    }
}
