//! Bookings: creation, assignment, payment changes, manual actions.
use jiff::Timestamp;
use meetpool_domain::payment::{booking_status, Transition};
use meetpool_domain::time::LocalSlot;
use meetpool_domain::values::{identifier, optional_text};
use meetpool_domain::{
    Booking, BookingId, DurationMinutes, EventKind, LinkId, NewBooking, OrderId, PaymentStatus,
    SessionTypeId, Window,
};
use meetpool_store::{BookingChange, BookingFilter, Event, LinkChange, NewEvent};
use serde_json::json;
use tracing::{info, instrument};

use crate::allocate::OnExhausted;
use crate::{App, AppError, Result};

/// A booking as the platform submits it (strings, still to be validated).
#[derive(Clone, Debug, Default)]
pub struct BookingInput {
    pub order_id: String,
    pub user_id: String,
    pub expert_id: String,
    pub session_type_id: String,
    pub booking_date: String,
    pub booking_time: String,
    pub price: i64,
    pub payment_status: Option<String>,
    pub status: Option<String>,
    /// Reserve a link for the unpaid booking while the customer pays
    /// (`hold_minutes`), or refuse the booking (409 `slot_unavailable`).
    pub hold: bool,
}

#[derive(Clone, Debug)]
pub enum AssignOutcome {
    /// The booking holds this link (`already`: it held it before the call).
    Assigned { booking: Booking, already: bool },
    /// No link is free for the booking's time.
    Exhausted { booking: Booking },
}

/// The result of a payment change.
#[derive(Clone, Debug)]
pub struct PaymentOutcome {
    pub booking: Booking,
    pub transition: Transition,
}

pub(crate) fn new_join_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl App {
    #[instrument(skip_all, fields(order_id = %input.order_id))]
    pub async fn create_booking(&self, input: BookingInput) -> Result<Booking> {
        let order_id = OrderId::parse(&input.order_id)
            .map_err(|e| AppError::invalid("invalid_order_id", e))?;
        let user_id = identifier("user_id", &input.user_id)
            .map_err(|e| AppError::invalid("invalid_user_id", e))?;
        let expert_id = identifier("expert_id", &input.expert_id)
            .map_err(|e| AppError::invalid("invalid_expert_id", e))?;
        let status = optional_text("status", input.status.as_deref(), 50, false)
            .map_err(|e| AppError::invalid("invalid_status", e))?;
        let session_type_id: SessionTypeId = input.session_type_id.parse().map_err(|_| {
            AppError::invalid("invalid_session_type_id", "session_type_id must be a UUID")
        })?;
        if input.price < 0 {
            return Err(AppError::invalid(
                "invalid_price",
                "price must not be negative",
            ));
        }
        let payment_status = match &input.payment_status {
            None => PaymentStatus::Pending,
            Some(s) => s
                .parse()
                .map_err(|e: String| AppError::invalid("invalid_payment_status", e))?,
        };
        let slot = LocalSlot::parse(&input.booking_date, &input.booking_time)
            .map_err(|e| AppError::invalid("invalid_slot", e))?;
        let window = self.session_window(&slot, session_type_id).await?;
        // History may be imported (a booking paid, cancelled or refunded
        // long ago); a booking still to be paid, or held, is for a session
        // that has not begun.
        let history = matches!(
            payment_status,
            PaymentStatus::Paid | PaymentStatus::Cancelled | PaymentStatus::Refunded
        );
        if (input.hold || !history) && window.start < Timestamp::now() {
            return Err(in_the_past(
                &slot,
                "only a paid, cancelled or refunded booking (history) may start in the past",
            ));
        }
        if input.hold && payment_status != PaymentStatus::Pending {
            return Err(AppError::invalid(
                "invalid_hold",
                "only an unpaid (pending) booking is held; a paid one gets its link at once",
            ));
        }
        let hold_expires_at = input.hold.then(|| {
            Timestamp::now()
                + jiff::SignedDuration::from_mins(i64::from(self.config().hold_minutes))
        });
        let new = NewBooking {
            id: BookingId::new(),
            order_id,
            user_id,
            expert_id,
            session_type_id,
            booking_date: slot.date,
            booking_time: slot.time,
            price: input.price,
            payment_status,
            status: status.unwrap_or_else(|| {
                booking_status(payment_status, "pending")
                    .unwrap_or("pending")
                    .to_owned()
            }),
            window,
            join_token: new_join_token(),
            hold_expires_at,
        };
        let booking = self
            .retrying(|| async {
                let mut work = self.begin().await?;
                work.tx.insert_booking(&new).await.map_err(|e| match e {
                    meetpool_store::StoreError::Conflict(_) => AppError::conflict(
                        "duplicate_order_id",
                        format!("a booking with order_id {} exists", new.order_id),
                    ),
                    other => other.into(),
                })?;
                let created = NewEvent::new(
                    EventKind::Created,
                    None,
                    json!({ "payment_status": payment_status.as_str() }),
                );
                work.tx.record_event(new.id, &created).await?;
                let mut booking = work.tx.lock_booking(new.id).await?;
                if hold_expires_at.is_some() {
                    booking = self
                        .give_link(&mut work, &booking, OnExhausted::Quiet, BookingChange::default())
                        .await?;
                    if booking.meeting_link_id.is_none() {
                        // Dropping the unit of work takes the booking back.
                        return Err(AppError::conflict(
                            "slot_unavailable",
                            "no meeting link can be reserved for this time: offer the customer another",
                        ));
                    }
                } else if booking.is_waiting() {
                    booking = self
                        .give_link(
                            &mut work,
                            &booking,
                            OnExhausted::Alert,
                            BookingChange::default(),
                        )
                        .await?;
                }
                work.commit().await?;
                Ok(booking)
            })
            .await?;
        info!(booking_id = %new.id, "booking created");
        Ok(booking)
    }

    /// The UTC window of a session of `session_type_id` at the local
    /// `slot` (422 when the type does not exist or the time does not).
    pub(crate) async fn session_window(
        &self,
        slot: &LocalSlot,
        session_type_id: SessionTypeId,
    ) -> Result<Window> {
        let duration = self.session_duration(session_type_id).await?;
        slot.window(&self.config().timezone, duration)
            .map_err(|e| AppError::invalid("invalid_slot", e))
    }

    /// The length of a session of `session_type_id` (422 when there is no
    /// such type).
    pub(crate) async fn session_duration(
        &self,
        session_type_id: SessionTypeId,
    ) -> Result<DurationMinutes> {
        let session_type = match self.store().session_type(session_type_id).await {
            Ok(st) => st,
            Err(meetpool_store::StoreError::NotFound) => {
                return Err(AppError::invalid(
                    "unknown_session_type",
                    "session_type_id names no session type",
                ))
            }
            Err(e) => return Err(e.into()),
        };
        DurationMinutes::new(i64::from(session_type.duration))
            .map_err(|e| AppError::Internal(format!("stored session type: {e}")))
    }

    pub async fn booking(&self, id: BookingId) -> Result<Booking> {
        self.store().booking(id).await.map_err(not_found("booking"))
    }

    /// The UTC window of a local day in the platform's zone (a day may be
    /// 23 or 25 hours long).
    pub fn local_day(&self, date: jiff::civil::Date) -> Result<Window> {
        let tz = &self.config().timezone;
        let start = date
            .to_zoned(tz.clone())
            .map_err(|e| AppError::invalid("invalid_date", e))?;
        let next = date
            .tomorrow()
            .and_then(|d| d.to_zoned(tz.clone()))
            .map_err(|e| AppError::invalid("invalid_date", e))?;
        Ok(Window::new(start.timestamp(), next.timestamp()))
    }

    pub async fn bookings(&self, filter: &BookingFilter) -> Result<Vec<Booking>> {
        Ok(self.store().bookings(filter).await?)
    }

    pub async fn events(&self, id: BookingId) -> Result<Vec<Event>> {
        self.booking(id).await?;
        Ok(self.store().events(id).await?)
    }

    /// Gives a paid booking a link (the previous system's assign call).
    /// Idempotent: a booking that has a link keeps it.
    #[instrument(skip(self), fields(booking_id = %id))]
    pub async fn assign(&self, id: BookingId) -> Result<AssignOutcome> {
        let booking = self
            .retrying(|| async {
                let mut work = self.begin().await?;
                let booking = work
                    .tx
                    .lock_booking(id)
                    .await
                    .map_err(not_found("booking"))?;
                if booking.meeting_link_id.is_some() {
                    return Ok((booking, true));
                }
                only_paid(&booking)?;
                let booking = self
                    .give_link(
                        &mut work,
                        &booking,
                        OnExhausted::Alert,
                        BookingChange::default(),
                    )
                    .await?;
                work.commit().await?;
                Ok((booking, false))
            })
            .await?;
        let (booking, already) = booking;
        Ok(if booking.meeting_link_id.is_some() {
            AssignOutcome::Assigned { booking, already }
        } else {
            AssignOutcome::Exhausted { booking }
        })
    }

    /// An operator gives a booking a specific link. Never forced: if another
    /// booking holds the link at an overlapping time, nothing changes and the
    /// conflict names it.
    #[instrument(skip(self), fields(booking_id = %id, link_id = %link))]
    pub async fn assign_manually(&self, id: BookingId, link: LinkId) -> Result<Booking> {
        self.retrying(|| async {
            let mut work = self.begin().await?;
            let booking = work.tx.lock_booking(id).await.map_err(not_found("booking"))?;
            only_paid(&booking)?;
            if booking.meeting_link_id == Some(link) {
                return Ok(());
            }
            let target = self.store().link(link).await.map_err(not_found("meeting link"))?;
            let busy = self.busy(&booking);
            work.tx.lock_window(busy).await?;
            if let Some(other) = work.tx.holder_overlapping(link, busy, booking.id).await? {
                return Err(AppError::Conflict {
                    code: "link_busy",
                    message: format!("meeting link {} is held by booking {other} at an overlapping time", target.meeting_link),
                    details: Some(json!({ "conflicting_booking_id": other })),
                });
            }
            // The old link given back and the new one taken in one write.
            let mut change = BookingChange {
                link: LinkChange::Set(link),
                ..BookingChange::default()
            };
            if let Some(old) = booking.meeting_link_id {
                change.events.push(NewEvent::new(EventKind::ManualReleased, Some(old), json!({ "reason": "replaced" })));
            }
            change.events.push(NewEvent::new(EventKind::ManualAssigned, Some(link), json!({})));
            work.tx.write(booking.id, &change).await?;
            work.commit().await?;
            info!(booking_id = %id, order_id = %booking.order_id, link_id = %link, "meeting link assigned by an operator");
            Ok(())
        })
        .await?;
        self.booking(id).await
    }

    /// An operator takes a booking's link away (it joins the unassigned
    /// queue if it is paid).
    #[instrument(skip(self), fields(booking_id = %id))]
    pub async fn release_manually(&self, id: BookingId) -> Result<Booking> {
        self.retrying(|| async {
            let mut work = self.begin().await?;
            let booking = work
                .tx
                .lock_booking(id)
                .await
                .map_err(not_found("booking"))?;
            if booking.meeting_link_id.is_some() {
                self.release(
                    &mut work,
                    &booking,
                    EventKind::ManualReleased,
                    "operator",
                    BookingChange::default(),
                )
                .await?;
                work.commit().await?;
            }
            Ok(())
        })
        .await?;
        self.booking(id).await
    }

    /// Offers free links to every waiting paid booking, oldest first; run
    /// when capacity appears and periodically as a safety net.
    pub async fn backfill_all(&self) -> Result<usize> {
        let waiting = self.store().waiting(500).await?;
        let mut assigned = 0;
        let now = Timestamp::now();
        for w in waiting.iter().filter(|b| b.window.end > now) {
            let got = self
                .retrying(|| async {
                    let mut work = self.begin().await?;
                    let booking = work.tx.lock_booking(w.id).await?;
                    if !booking.is_waiting() {
                        return Ok(false);
                    }
                    let got = self
                        .give_link(
                            &mut work,
                            &booking,
                            OnExhausted::Quiet,
                            BookingChange::default(),
                        )
                        .await?
                        .meeting_link_id
                        .is_some();
                    if got {
                        work.commit().await?;
                    }
                    Ok(got)
                })
                .await?;
            assigned += usize::from(got);
        }
        Ok(assigned)
    }
}

/// 422 `starts_in_the_past`: a slot whose session has already begun.
pub(crate) fn in_the_past(slot: &LocalSlot, what_then: &str) -> AppError {
    AppError::invalid(
        "starts_in_the_past",
        format!(
            "{} {} has already begun: {what_then}",
            slot.date,
            slot.time_hhmm()
        ),
    )
}

/// Only paid bookings hold links (422 otherwise).
fn only_paid(booking: &Booking) -> Result<()> {
    if booking.payment_status == PaymentStatus::Paid {
        return Ok(());
    }
    Err(AppError::invalid(
        "not_paid",
        format!(
            "booking is {}: only paid bookings get a meeting link",
            booking.payment_status
        ),
    ))
}

/// Maps "not found" to a message naming what was looked for.
pub(crate) fn not_found(what: &'static str) -> impl Fn(meetpool_store::StoreError) -> AppError {
    move |e| match e {
        meetpool_store::StoreError::NotFound => AppError::NotFound(what),
        other => other.into(),
    }
}
