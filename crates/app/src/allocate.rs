//! Giving links to bookings and taking them back, inside the caller's unit
//! of work. The rule that picks a link is the domain's
//! ([`meetpool_domain::choose_link`]); the database refuses any double
//! booking. These functions read what the rule needs, keep the audit trail,
//! and write each booking once.
use jiff::{SignedDuration, Timestamp};
use meetpool_domain::repack::{repack, Placed};
use meetpool_domain::{choose_link, Booking, BookingId, EventKind, LinkCandidate, Window};
use meetpool_store::{BookingChange, LinkChange, NewEvent};
use serde_json::json;
use tracing::info;

use crate::work::{Report, Work};
use crate::{App, Result};

/// How many waiting bookings one release offers its freed time to.
const BACKFILL_BATCH: u32 = 50;
/// The most booked sessions one repack moves.
const REPACK_MOVES: usize = 3;
/// How far from the window a repack looks for sessions to move: chains of
/// sessions of up to a few hours.
const REPACK_REACH: SignedDuration = SignedDuration::from_hours(12);

/// Whether to leave a trace when no link is free: a booking that just became
/// paid raises the alert; a waiting booking retried by backfill does not
/// raise it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OnExhausted {
    Alert,
    Quiet,
}

impl App {
    pub(crate) fn busy(&self, booking: &Booking) -> Window {
        booking.window.busy(self.config().buffer_minutes)
    }

    /// Adds to `change` (what made the booking need a link: a payment, a
    /// move off a disabled link) the link the allocation policy picks among
    /// `candidates`, and its event; without a free link, the alert if asked.
    /// Writes nothing: the caller writes `change`.
    pub(crate) fn choose(
        &self,
        work: &mut Work,
        booking: &Booking,
        candidates: &[LinkCandidate],
        on_exhausted: OnExhausted,
        mut change: BookingChange,
    ) -> BookingChange {
        let busy = self.busy(booking);
        let policy = self.config().policy;
        match choose_link(policy, &busy, candidates) {
            Some(link) => {
                change.link = LinkChange::Set(link);
                change.events.push(NewEvent::new(
                    EventKind::Assigned,
                    Some(link),
                    json!({ "policy": policy.as_str() }),
                ));
                work.report(Report::Assigned {
                    booking: booking.id,
                    order: booking.order_id.clone(),
                    link,
                });
            }
            None if on_exhausted == OnExhausted::Alert => {
                change.events.push(NewEvent::new(
                    EventKind::PoolExhausted,
                    None,
                    json!({ "enabled_links": candidates.len(), "starts_at": booking.window.start, "ends_at": booking.window.end }),
                ));
                work.report(Report::PoolExhausted {
                    booking: booking.id,
                    order: booking.order_id.clone(),
                    enabled_links: candidates.len(),
                });
            }
            None => {}
        }
        change
    }

    /// Gives the locked `booking` a free link if there is one, written
    /// together with `change` in one write. Returns the booking as written;
    /// without a free link it has none.
    pub(crate) async fn give_link(
        &self,
        work: &mut Work,
        booking: &Booking,
        on_exhausted: OnExhausted,
        change: BookingChange,
    ) -> Result<Booking> {
        let busy = self.busy(booking);
        work.tx.lock_window(busy).await?;
        let candidates = self.free_candidates(work, booking, busy).await?;
        let change = self.choose(work, booking, &candidates, on_exhausted, change);
        write(work, booking, &change).await
    }

    /// The candidate links for `booking` at `busy`; when none is free, after
    /// taking back expired holds there, and then after repacking (when it
    /// is on), so that one is if any can be.
    pub(crate) async fn free_candidates(
        &self,
        work: &mut Work,
        booking: &Booking,
        busy: Window,
    ) -> Result<Vec<LinkCandidate>> {
        let mut candidates = read_candidates(work, booking, busy).await?;
        if candidates.iter().any(|c| c.is_free_for(&busy)) {
            return Ok(candidates);
        }
        if self.reclaim_expired_holds(work, busy).await? {
            candidates = read_candidates(work, booking, busy).await?;
            if candidates.iter().any(|c| c.is_free_for(&busy)) {
                return Ok(candidates);
            }
        }
        if self.repack_room(work, booking, busy, &candidates).await? {
            candidates = read_candidates(work, booking, busy).await?;
        }
        Ok(candidates)
    }

    /// Moves booked sessions that start more than the freeze from now to
    /// other links so that one link is free for `busy`, with the fewest
    /// moves (at most [`REPACK_MOVES`]), each recorded as `link_changed`;
    /// whether it could. Off unless `repack_freeze_minutes` is set.
    pub(crate) async fn repack_room(
        &self,
        work: &mut Work,
        booking: &Booking,
        busy: Window,
        candidates: &[LinkCandidate],
    ) -> Result<bool> {
        let Some(freeze) = self.config().repack_freeze_minutes else {
            return Ok(false);
        };
        if candidates.is_empty() {
            return Ok(false);
        }
        // The moves' own neighbours are read too: a session may move only
        // if it lies within `near`, and every session overlapping one that
        // does is read.
        let near = Window::new(busy.start - REPACK_REACH, busy.end + REPACK_REACH);
        work.tx.lock_window(near).await?;
        let movable_from = Timestamp::now() + SignedDuration::from_mins(i64::from(freeze));
        let sessions = work.tx.linked_during(near).await?;
        let links: Vec<Vec<Placed<BookingId>>> = candidates
            .iter()
            .map(|c| {
                sessions
                    .iter()
                    .filter(|s| s.meeting_link_id == Some(c.id) && s.id != booking.id)
                    .map(|s| {
                        let held = self.busy(s);
                        Placed {
                            key: s.id,
                            busy: held,
                            movable: s.window.start > movable_from
                                && near.start <= held.start
                                && held.end <= near.end,
                        }
                    })
                    .collect()
            })
            .collect();
        let Some(plan) = repack(&links, busy, REPACK_MOVES) else {
            return Ok(false);
        };
        for m in &plan.moves {
            let (from, to) = (candidates[m.from].id, candidates[m.to].id);
            let moving = work.tx.lock_booking(m.key).await?;
            if moving.meeting_link_id != Some(from) {
                // Changed since it was read: try again from the start.
                return Err(crate::AppError::Busy);
            }
            let change = BookingChange {
                link: LinkChange::Set(to),
                events: vec![NewEvent::new(
                    EventKind::LinkChanged,
                    Some(to),
                    json!({ "from": from, "to": to, "reason": "repacked", "for_booking": booking.id }),
                )],
                ..BookingChange::default()
            };
            work.tx.write(moving.id, &change).await?;
        }
        info!(booking_id = %booking.id, moves = plan.moves.len(), "booked sessions moved to make room");
        Ok(true)
    }

    /// Takes back the links of expired checkout holds whose sessions
    /// overlap `busy` (all of them without a window); whether any was.
    pub(crate) async fn reclaim_expired_holds(
        &self,
        work: &mut Work,
        busy: Window,
    ) -> Result<bool> {
        self.release_holds(work, Some(busy)).await.map(|n| n > 0)
    }

    pub(crate) async fn release_holds(
        &self,
        work: &mut Work,
        during: Option<Window>,
    ) -> Result<usize> {
        let released = work
            .tx
            .release_expired_holds(during, Timestamp::now())
            .await?;
        for (booking, link) in &released {
            let event = NewEvent::new(
                EventKind::Released,
                Some(*link),
                json!({ "reason": "hold expired" }),
            );
            work.tx.record_event(*booking, &event).await?;
        }
        Ok(released.len())
    }

    /// Takes the locked `booking`'s link back (with `change`, what caused
    /// it, in the same write) and offers the freed time to the bookings
    /// waiting for it, oldest first. Returns the booking as written.
    pub(crate) async fn release(
        &self,
        work: &mut Work,
        booking: &Booking,
        kind: EventKind,
        reason: &str,
        mut change: BookingChange,
    ) -> Result<Booking> {
        let Some(link) = booking.meeting_link_id else {
            return write(work, booking, &change).await;
        };
        change.link = LinkChange::Clear;
        change
            .events
            .push(NewEvent::new(kind, Some(link), json!({ "reason": reason })));
        let released = work.tx.write(booking.id, &change).await?;
        work.report(Report::Released {
            booking: booking.id,
            order: booking.order_id.clone(),
            link,
            reason: reason.to_owned(),
        });
        self.backfill(work, self.busy(booking), Some(booking.id))
            .await?;
        Ok(released)
    }

    /// Offers links to the paid bookings without one whose sessions overlap
    /// `during`, oldest booking first, except `skip` (a booking an operator
    /// just took a link from). Returns how many got one.
    pub(crate) async fn backfill(
        &self,
        work: &mut Work,
        during: Window,
        skip: Option<BookingId>,
    ) -> Result<usize> {
        let waiting = work
            .tx
            .waiting_during(during, Timestamp::now(), BACKFILL_BATCH)
            .await?;
        let mut assigned = 0;
        for booking in waiting.iter().filter(|b| Some(b.id) != skip) {
            let after = self
                .give_link(work, booking, OnExhausted::Quiet, BookingChange::default())
                .await?;
            assigned += usize::from(after.meeting_link_id.is_some());
        }
        Ok(assigned)
    }
}

async fn read_candidates(
    work: &mut Work,
    booking: &Booking,
    busy: Window,
) -> Result<Vec<LinkCandidate>> {
    Ok(work
        .tx
        .candidates(&[(busy, booking.id)])
        .await?
        .pop()
        .unwrap_or_default())
}

/// Writes `change` to the locked `booking` unless it is empty; the booking
/// as it is now.
pub(crate) async fn write(
    work: &mut Work,
    booking: &Booking,
    change: &BookingChange,
) -> Result<Booking> {
    if change.is_empty() {
        return Ok(booking.clone());
    }
    Ok(work.tx.write(booking.id, change).await?)
}
