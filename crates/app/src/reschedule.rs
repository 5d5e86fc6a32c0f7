//! Moving a session to another time or session type. A paid booking keeps
//! its link when the link is free for the new window, takes another when
//! not, and waits in the unassigned queue when none is free; the time it
//! leaves goes to the bookings waiting for it. The participants' join URL
//! and calendar file follow the move.
use meetpool_domain::time::LocalSlot;
use meetpool_domain::{Booking, BookingId, EventKind, PaymentStatus, SessionTypeId};
use meetpool_store::{BookingChange, LinkChange, NewEvent, Schedule};
use serde_json::json;
use tracing::{info, instrument};

use crate::allocate::OnExhausted;
use crate::bookings::{in_the_past, not_found};
use crate::work::{Report, Work};
use crate::{App, AppError, Result};

/// What a reschedule changes; what is left out stays as it is.
#[derive(Clone, Debug, Default)]
pub struct RescheduleInput {
    pub booking_date: Option<String>,
    pub booking_time: Option<String>,
    pub session_type_id: Option<String>,
    /// An operator's explicit word that the session may move to a time that
    /// has already begun (correcting history); refused otherwise.
    pub allow_past: bool,
}

impl App {
    #[instrument(skip(self, input), fields(booking_id = %id))]
    pub async fn reschedule(&self, id: BookingId, input: RescheduleInput) -> Result<Booking> {
        let session_type_id = input
            .session_type_id
            .as_deref()
            .map(|raw| {
                raw.parse::<SessionTypeId>().map_err(|_| {
                    AppError::invalid("invalid_session_type_id", "session_type_id must be a UUID")
                })
            })
            .transpose()?;
        self.retrying(|| async {
            let mut work = self.begin().await?;
            let booking = work
                .tx
                .lock_booking(id)
                .await
                .map_err(not_found("booking"))?;
            let date = input
                .booking_date
                .clone()
                .unwrap_or_else(|| booking.booking_date.to_string());
            let time = input
                .booking_time
                .clone()
                .unwrap_or_else(|| booking.booking_time.strftime("%H:%M").to_string());
            let slot =
                LocalSlot::parse(&date, &time).map_err(|e| AppError::invalid("invalid_slot", e))?;
            let session_type_id = session_type_id.unwrap_or(booking.session_type_id);
            let schedule = Schedule {
                booking_date: slot.date,
                booking_time: slot.time,
                session_type_id,
                window: self.session_window(&slot, session_type_id).await?,
            };
            if schedule.window == booking.window && session_type_id == booking.session_type_id {
                return Ok(booking);
            }
            if !input.allow_past && schedule.window.start < jiff::Timestamp::now() {
                return Err(in_the_past(
                    &slot,
                    "an operator sends \"allow_past\": true to move it there all the same",
                ));
            }
            let moved = self.move_in(&mut work, &booking, &schedule).await?;
            work.commit().await?;
            info!(booking_id = %id, order_id = %moved.order_id, starts_at = %moved.window.start, "session rescheduled");
            Ok(moved)
        })
        .await
    }

    /// Moves the locked `booking` to `schedule`, with the link it can keep
    /// or take there, and offers the time it leaves to waiting bookings.
    async fn move_in(
        &self,
        work: &mut Work,
        booking: &Booking,
        schedule: &Schedule,
    ) -> Result<Booking> {
        let mut there = booking.clone();
        there.window = schedule.window;
        let busy = self.busy(&there);
        let mut events = vec![NewEvent::new(
            EventKind::Rescheduled,
            None,
            json!({
                "from": { "starts_at": booking.window.start, "ends_at": booking.window.end, "session_type_id": booking.session_type_id },
                "to": { "starts_at": schedule.window.start, "ends_at": schedule.window.end, "session_type_id": schedule.session_type_id },
            }),
        )];
        let mut link = LinkChange::Keep;
        if booking.meeting_link_id.is_some() || booking.is_waiting() {
            work.tx.lock_window(busy).await?;
            let candidates = self.free_candidates(work, &there, busy).await?;
            let keeps = booking.meeting_link_id.is_some_and(|current| {
                candidates
                    .iter()
                    .any(|c| c.id == current && c.is_free_for(&busy))
            });
            if !keeps {
                let on_exhausted = if booking.meeting_link_id.is_some() {
                    OnExhausted::Alert
                } else {
                    OnExhausted::Quiet
                };
                let chosen = self.choose(
                    work,
                    &there,
                    &candidates,
                    on_exhausted,
                    BookingChange::default(),
                );
                events.extend(chosen.events);
                link = match (chosen.link, booking.meeting_link_id) {
                    (LinkChange::Set(new), Some(old)) => {
                        events.push(NewEvent::new(
                            EventKind::LinkChanged,
                            Some(new),
                            json!({ "from": old, "to": new, "reason": "rescheduled" }),
                        ));
                        LinkChange::Set(new)
                    }
                    (LinkChange::Set(new), None) => LinkChange::Set(new),
                    (_, Some(_)) if booking.payment_status != PaymentStatus::Paid => {
                        // A checkout hold moves with its link or not at all.
                        return Err(AppError::conflict(
                            "slot_unavailable",
                            "no meeting link can be reserved at the new time: the hold stays where it was",
                        ));
                    }
                    (_, Some(old)) => {
                        events.push(NewEvent::new(
                            EventKind::Released,
                            Some(old),
                            json!({ "reason": "rescheduled: no link is free at the new time" }),
                        ));
                        work.report(Report::Released {
                            booking: booking.id,
                            order: booking.order_id.clone(),
                            link: old,
                            reason: "rescheduled".to_owned(),
                        });
                        LinkChange::Clear
                    }
                    (_, None) => LinkChange::Keep,
                };
            }
        }
        let moved = work.tx.reschedule(booking.id, schedule, link).await?;
        for event in &events {
            work.tx.record_event(booking.id, event).await?;
        }
        if booking.meeting_link_id.is_some() {
            self.backfill(work, self.busy(booking), Some(booking.id))
                .await?;
        }
        Ok(moved)
    }
}
