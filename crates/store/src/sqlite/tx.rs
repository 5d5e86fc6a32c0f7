//! SQLite's transactions: one writer at a time (`BEGIN IMMEDIATE` behind an
//! in-process lock), so the port's batched calls are loops of local statements.
use async_trait::async_trait;
use jiff::Timestamp;
use meetpool_domain::{Booking, BookingId, LinkCandidate, LinkId, NewBooking, Window};
use sqlx::{Row, Sqlite, Transaction};
use tokio::sync::OwnedMutexGuard;

use super::rows::{booking_row, link_row, ts_out, uuid_in};
use super::sql::{candidates_for, BOOKING_SELECT, LOOKBACK};
use crate::{
    BookingChange, Link, LinkChange, LinkPatch, LockedOrder, NewEvent, NewLink, OrderClaim,
    PaymentChange, Result, Schedule, SessionType, StoreError, Tx,
};

pub struct SqliteTx {
    pub(super) tx: Transaction<'static, Sqlite>,
    pub(super) _guard: OwnedMutexGuard<()>,
}

/// Statements cost no round trips here: the port's batched calls are
/// loops over these.
impl SqliteTx {
    async fn lock_booking_by_order(&mut self, order_id: &str) -> Result<Option<Booking>> {
        let row = sqlx::query(&format!("{BOOKING_SELECT} WHERE b.order_id = ?"))
            .bind(order_id)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(booking_row).transpose()
    }

    /// Claims a notification id; `false` when it was claimed before.
    async fn claim_notification(&mut self, id: &str, booking: BookingId) -> Result<bool> {
        let done = sqlx::query(
            "INSERT OR IGNORE INTO payment_notifications (dedup_key, booking_id) VALUES (?, ?)",
        )
        .bind(id)
        .bind(booking.to_string())
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_payment(&mut self, id: BookingId, payment: &PaymentChange) -> Result<()> {
        sqlx::query(
            "UPDATE bookings SET payment_status = ?1, \
               payment_transaction_id = COALESCE(?2, payment_transaction_id), \
               status = COALESCE(?4, status) \
             WHERE id = ?3",
        )
        .bind(payment.status.as_str())
        .bind(payment.transaction_id.as_deref())
        .bind(id.to_string())
        .bind(payment.booking_status)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The link, and the payment with it when there is one.
    async fn set_link(
        &mut self,
        booking: BookingId,
        payment: Option<&PaymentChange>,
        link: Option<LinkId>,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE bookings SET meeting_link_id = ?1, \
               assigned_at = CASE WHEN ?1 IS NULL THEN NULL ELSE strftime('%Y-%m-%d %H:%M:%f', 'now') END, \
               payment_status = COALESCE(?3, payment_status), \
               payment_transaction_id = COALESCE(?4, payment_transaction_id), \
               status = COALESCE(?5, status) \
             WHERE id = ?2",
        )
        .bind(link.map(|l| l.to_string()))
        .bind(booking.to_string())
        .bind(payment.map(|p| p.status.as_str()))
        .bind(payment.and_then(|p| p.transaction_id.as_deref()))
        .bind(payment.and_then(|p| p.booking_status))
        .execute(&mut *self.tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

#[async_trait]
impl Tx for SqliteTx {
    async fn commit(self: Box<Self>) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }

    async fn lock_window(&mut self, _busy: Window) -> Result<()> {
        Ok(()) // BEGIN IMMEDIATE already holds the database's only write lock.
    }

    async fn insert_session_type(&mut self, st: &SessionType) -> Result<()> {
        sqlx::query("INSERT INTO session_types (id, name, duration, price, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(st.id.to_string())
            .bind(&st.name)
            .bind(st.duration)
            .bind(st.price)
            .bind(st.created_at.strftime("%Y-%m-%d %H:%M:%S%.3f").to_string())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn update_session_type(&mut self, st: &SessionType) -> Result<()> {
        let done = sqlx::query(
            "UPDATE session_types SET name = ?, duration = ?, price = ?, \
             updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now') WHERE id = ?",
        )
        .bind(&st.name)
        .bind(st.duration)
        .bind(st.price)
        .bind(st.id.to_string())
        .execute(&mut *self.tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn insert_link(&mut self, link: &NewLink) -> Result<Link> {
        let row = sqlx::query(
            "INSERT INTO meeting_links_pool (id, seq, meeting_link, notes, is_available) \
             VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM meeting_links_pool), ?, ?, ?) \
             RETURNING id, meeting_link, notes, is_available, created_at, updated_at",
        )
        .bind(link.id.to_string())
        .bind(link.meeting_link.as_str())
        .bind(&link.notes)
        .bind(link.is_available)
        .fetch_one(&mut *self.tx)
        .await?;
        link_row(&row)
    }

    async fn update_link(&mut self, id: LinkId, patch: &LinkPatch) -> Result<Link> {
        let row = sqlx::query(
            "UPDATE meeting_links_pool SET \
               meeting_link = COALESCE(?1, meeting_link), \
               notes = CASE WHEN ?2 THEN ?3 ELSE notes END, \
               is_available = COALESCE(?4, is_available) \
             WHERE id = ?5 \
             RETURNING id, meeting_link, notes, is_available, created_at, updated_at",
        )
        .bind(patch.meeting_link.as_ref().map(|u| u.as_str()))
        .bind(patch.notes.is_some())
        .bind(patch.notes.clone().flatten())
        .bind(patch.is_available)
        .bind(id.to_string())
        .fetch_one(&mut *self.tx)
        .await?;
        link_row(&row)
    }

    async fn delete_link(&mut self, id: LinkId) -> Result<()> {
        let done = sqlx::query("DELETE FROM meeting_links_pool WHERE id = ?")
            .bind(id.to_string())
            .execute(&mut *self.tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn insert_booking(&mut self, b: &NewBooking) -> Result<()> {
        sqlx::query(
            "INSERT INTO bookings (id, order_id, user_id, expert_id, session_type_id, booking_date, \
             booking_time, price, payment_status, status, starts_at, ends_at, join_token, hold_expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(b.id.to_string())
        .bind(b.order_id.as_str())
        .bind(&b.user_id)
        .bind(&b.expert_id)
        .bind(b.session_type_id.to_string())
        .bind(b.booking_date.to_string())
        .bind(b.booking_time.strftime("%H:%M").to_string())
        .bind(b.price)
        .bind(b.payment_status.as_str())
        .bind(&b.status)
        .bind(ts_out(b.window.start))
        .bind(ts_out(b.window.end))
        .bind(&b.join_token)
        .bind(b.hold_expires_at.map(ts_out))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn lock_booking(&mut self, id: BookingId) -> Result<Booking> {
        let row = sqlx::query(&format!("{BOOKING_SELECT} WHERE b.id = ?"))
            .bind(id.to_string())
            .fetch_one(&mut *self.tx)
            .await?;
        booking_row(&row)
    }

    async fn candidates(
        &mut self,
        wants: &[(Window, BookingId)],
    ) -> Result<Vec<Vec<LinkCandidate>>> {
        let mut out = Vec::with_capacity(wants.len());
        for (want, except) in wants {
            out.push(candidates_for(&mut self.tx, *want, *except).await?);
        }
        Ok(out)
    }

    async fn holder_overlapping(
        &mut self,
        link: LinkId,
        busy: Window,
        except: BookingId,
    ) -> Result<Option<BookingId>> {
        let row: Option<String> = sqlx::query_scalar(
            "SELECT b.id FROM bookings b CROSS JOIN meetpool_settings s \
             WHERE s.id = 1 AND b.meeting_link_id = ?1 AND b.id <> ?2 \
               AND b.starts_at >= ?3 AND b.starts_at < ?4 \
               AND datetime(b.ends_at, '+' || s.buffer_minutes || ' minutes') > ?5 \
             ORDER BY b.starts_at LIMIT 1",
        )
        .bind(link.to_string())
        .bind(except.to_string())
        .bind(ts_out(busy.start - LOOKBACK))
        .bind(ts_out(busy.end))
        .bind(ts_out(busy.start))
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_deref().map(uuid_in).transpose()
    }

    async fn linked_during(&mut self, during: Window) -> Result<Vec<Booking>> {
        let rows = sqlx::query(&format!(
            "{BOOKING_SELECT} WHERE b.meeting_link_id IS NOT NULL AND b.starts_at < ? \
             AND b.starts_at > ? ORDER BY b.starts_at"
        ))
        .bind(ts_out(during.end))
        .bind(ts_out(during.start - LOOKBACK))
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(booking_row).collect()
    }

    async fn bookings_on_link_from(
        &mut self,
        link: LinkId,
        from: Timestamp,
    ) -> Result<Vec<Booking>> {
        let rows = sqlx::query(&format!(
            "{BOOKING_SELECT} WHERE b.meeting_link_id = ? AND b.starts_at >= ? ORDER BY b.starts_at"
        ))
        .bind(link.to_string())
        .bind(ts_out(from))
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(booking_row).collect()
    }

    async fn waiting_during(
        &mut self,
        during: Window,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Booking>> {
        let rows = sqlx::query(&format!(
            "{BOOKING_SELECT} WHERE b.payment_status = 'paid' AND b.meeting_link_id IS NULL \
             AND b.starts_at < ?1 AND b.ends_at > ?2 AND b.ends_at > ?3 \
             ORDER BY b.created_at LIMIT ?4"
        ))
        .bind(ts_out(during.end))
        .bind(ts_out(during.start))
        .bind(ts_out(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *self.tx)
        .await?;
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
            LinkChange::Set(l) => (true, Some(l.to_string())),
            LinkChange::Clear => (true, None),
        };
        let done = sqlx::query(
            "UPDATE bookings SET booking_date = ?2, booking_time = ?3, session_type_id = ?4, \
               starts_at = ?5, ends_at = ?6, reschedules = reschedules + 1, \
               meeting_link_id = CASE WHEN ?7 THEN ?8 ELSE meeting_link_id END, \
               assigned_at = CASE WHEN NOT ?7 THEN assigned_at WHEN ?8 IS NULL THEN NULL \
                 ELSE strftime('%Y-%m-%d %H:%M:%f', 'now') END \
             WHERE id = ?1",
        )
        .bind(id.to_string())
        .bind(schedule.booking_date.to_string())
        .bind(schedule.booking_time.strftime("%H:%M").to_string())
        .bind(schedule.session_type_id.to_string())
        .bind(ts_out(schedule.window.start))
        .bind(ts_out(schedule.window.end))
        .bind(set_link)
        .bind(new_link)
        .execute(&mut *self.tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.lock_booking(id).await
    }

    async fn release_expired_holds(
        &mut self,
        during: Option<Window>,
        now: Timestamp,
    ) -> Result<Vec<(BookingId, LinkId)>> {
        let (from, to, lookback) = match during {
            Some(w) => (
                Some(ts_out(w.start)),
                Some(ts_out(w.end)),
                Some(ts_out(w.start - LOOKBACK)),
            ),
            None => (None, None, None),
        };
        // Read, then cleared: BEGIN IMMEDIATE holds the write lock between.
        let rows = sqlx::query(
            "SELECT b.id, b.meeting_link_id FROM bookings b, meetpool_settings s \
             WHERE s.id = 1 AND b.payment_status <> 'paid' AND b.meeting_link_id IS NOT NULL \
               AND b.hold_expires_at <= ?1 \
               AND (?2 IS NULL OR (b.starts_at < ?3 AND b.starts_at > ?4 \
                 AND datetime(b.ends_at, '+' || s.buffer_minutes || ' minutes') > ?2))",
        )
        .bind(ts_out(now))
        .bind(from)
        .bind(to)
        .bind(lookback)
        .fetch_all(&mut *self.tx)
        .await?;
        let mut released = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: BookingId = uuid_in(r.try_get::<&str, _>("id")?)?;
            let link: LinkId = uuid_in(r.try_get::<&str, _>("meeting_link_id")?)?;
            sqlx::query(
                "UPDATE bookings SET meeting_link_id = NULL, assigned_at = NULL, hold_expires_at = NULL \
                 WHERE id = ?",
            )
            .bind(id.to_string())
            .execute(&mut *self.tx)
            .await?;
            released.push((id, link));
        }
        Ok(released)
    }

    async fn record_event(&mut self, booking: BookingId, event: &NewEvent) -> Result<()> {
        sqlx::query("INSERT INTO booking_events (booking_id, kind, meeting_link_id, detail) VALUES (?, ?, ?, ?)")
            .bind(booking.to_string())
            .bind(event.kind.as_str())
            .bind(event.link.map(|l| l.to_string()))
            .bind(event.detail.to_string())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn lock_orders(
        &mut self,
        claims: &[OrderClaim<'_>],
        _buffer_minutes: u32,
    ) -> Result<Vec<Option<LockedOrder>>> {
        // BEGIN IMMEDIATE holds the database's only write lock: the
        // bookings and their windows are locked already.
        let mut out = Vec::with_capacity(claims.len());
        for claim in claims {
            out.push(match self.lock_booking_by_order(claim.order_id).await? {
                Some(booking) => {
                    let first_claim = self
                        .claim_notification(claim.notification_id, booking.id)
                        .await?;
                    Some(LockedOrder {
                        booking,
                        first_claim,
                    })
                }
                None => None,
            });
        }
        Ok(out)
    }

    async fn write_bookings(
        &mut self,
        changes: &[(BookingId, &BookingChange)],
    ) -> Result<Vec<Booking>> {
        let mut written = Vec::with_capacity(changes.len());
        for (id, change) in changes {
            // One UPDATE for the payment and the link, as on PostgreSQL, so
            // that the row's triggers (the outbound events) see the change
            // whole.
            match (&change.payment, change.link) {
                (None, LinkChange::Keep) => {}
                (Some(payment), LinkChange::Keep) => self.set_payment(*id, payment).await?,
                (payment, LinkChange::Set(link)) => {
                    self.set_link(*id, payment.as_ref(), Some(link)).await?
                }
                (payment, LinkChange::Clear) => self.set_link(*id, payment.as_ref(), None).await?,
            }
            for event in &change.events {
                self.record_event(*id, event).await?;
            }
            written.push(self.lock_booking(*id).await?);
        }
        Ok(written)
    }
}
