//! Settling verified payment notifications in groups (group commit).
//!
//! A notification's transaction costs the database far more than the one
//! row it changes: the begin and the commit, a statement per step, the
//! locks. When notifications arrive faster than the database settles them,
//! the ones that queued up while a transaction ran are settled together in
//! the next. A notification that finds the queue idle is settled at once,
//! alone; none ever waits for company.
//!
//! The path of a notification: [`App::settle`] queues it → a runner takes
//! the queue's head as a group ([`App::run_settler`]) → [`App::settle_group`]
//! retries the group's transaction → [`App::settle_attempt`] applies the
//! payment rule ([`crate::payments::payment_plan`]) and the allocation
//! ([`App::choose`]) to each notification in order.
//!
//! A group's transaction is five round trips on PostgreSQL, however many
//! notifications it holds: BEGIN, one statement locking the bookings,
//! claiming the notification ids and locking the sessions' hours
//! ([`Tx::lock_orders`]), one reading the candidate links of every payment
//! that looks for one ([`Tx::candidates`], the [`ReadAhead`]), one writing
//! every booking's change ([`Tx::write_bookings`], the [`Pending`] writes),
//! COMMIT.
//!
//! The invariants of a group:
//! - Each notification is applied exactly as if alone, in arrival order: a
//!   booking's second notification sees what the first did (its pending
//!   write is sent first), and a payment's candidate links include the
//!   group's own earlier assignments ([`ReadAhead::assigned`]).
//! - A duplicate (a notification id claimed before, here or earlier)
//!   changes nothing and answers with the booking as it is.
//! - Every statement that reads bookings runs after the pending writes are
//!   sent: a release sends them before it offers its freed time, and a
//!   candidate read that was not read ahead sends them before reading.
//! - The group commits or rolls back as a whole, and is answered only after
//!   its commit. A group that fails for a reason other than contention
//!   (which retries it whole) is settled again one notification at a time,
//!   so that each gets its own answer.
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use meetpool_domain::midtrans::Effect;
use meetpool_domain::payment::Transition;
use meetpool_domain::{
    Booking, BookingId, EventKind, LinkCandidate, LinkId, PaymentStatus, Window,
};
use meetpool_store::{BookingChange, LinkChange, LockedOrder, NewEvent, OrderClaim};
use serde_json::json;
use tokio::sync::oneshot;
use tracing::warn;

use crate::metrics::{Alert, Counter};
use crate::payments::{payment_plan, payment_report, Then, Verified};
use crate::work::{Report, Work};
use crate::{App, AppError, NotificationOutcome, Result};

/// Groups settled at the same time, each in its own transaction. Two, so
/// that one group's round trips overlap the other's work; more groups only
/// wait for each other's locks, at the database's expense (measured in
/// bench/RESULTS.md).
const RUNNERS: usize = 2;
/// The most notifications settled in one transaction.
const GROUP: usize = 16;

/// A notification's answer.
pub(crate) type Settled = Result<NotificationOutcome>;

#[derive(Default)]
pub(crate) struct Settler {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    /// Tasks taking groups off the queue; at most [`RUNNERS`].
    runners: usize,
}

struct Job {
    note: Verified,
    answer: oneshot::Sender<Settled>,
}

impl Settler {
    fn state(&self) -> MutexGuard<'_, State> {
        // The state is a queue and a counter, consistent after every
        // statement: a panic elsewhere cannot leave it half-changed.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next group, or `None` (and one runner fewer) when the queue is
    /// empty: decided under one lock, so no job is ever left without one.
    fn next_group(&self, slot: &mut RunnerSlot) -> Option<Vec<Job>> {
        let mut state = self.state();
        if state.queue.is_empty() {
            state.runners -= 1;
            slot.0 = None;
            return None;
        }
        let n = state.queue.len().min(GROUP);
        Some(state.queue.drain(..n).collect())
    }
}

/// A runner's place in [`State::runners`], given back if the runner dies.
struct RunnerSlot(Option<Arc<Settler>>);

impl Drop for RunnerSlot {
    fn drop(&mut self) {
        if let Some(settler) = self.0.take() {
            settler.state().runners -= 1;
        }
    }
}

impl App {
    /// Settles a verified notification: queued, then applied in the next
    /// group's transaction.
    pub(crate) async fn settle(&self, note: Verified) -> Settled {
        let (answer, answered) = oneshot::channel();
        let start_runner = {
            let mut state = self.settler.state();
            state.queue.push_back(Job { note, answer });
            self.counters.inc(Counter::NotificationsQueued);
            let start = state.runners < RUNNERS;
            state.runners += usize::from(start);
            start
        };
        if start_runner {
            let app = self.clone();
            tokio::spawn(async move { app.run_settler().await });
        }
        answered.await.unwrap_or_else(|_| {
            Err(AppError::Internal(
                "the notification's settlement stopped".into(),
            ))
        })
    }

    async fn run_settler(self) {
        let mut slot = RunnerSlot(Some(self.settler.clone()));
        while let Some(group) = self.settler.next_group(&mut slot) {
            let (notes, answers): (Vec<Verified>, Vec<_>) =
                group.into_iter().map(|j| (j.note, j.answer)).unzip();
            // Each group in a task of its own: should settling it panic, its
            // notifications are answered with an error (Midtrans sends them
            // again) and the queue behind it still moves on.
            let app = self.clone();
            let settled = tokio::spawn(async move { app.settle_group(&notes).await })
                .await
                .unwrap_or_else(|_| {
                    answers
                        .iter()
                        .map(|_| {
                            Err(AppError::Internal(
                                "the notification's settlement failed".into(),
                            ))
                        })
                        .collect()
                });
            for (answer, settled) in answers.into_iter().zip(settled) {
                // The caller may have gone (its client hung up): the
                // settlement stands all the same.
                let _ = answer.send(settled);
            }
        }
    }

    async fn settle_group(&self, notes: &[Verified]) -> Vec<Settled> {
        match self.retrying(|| self.settle_attempt(notes)).await {
            Ok(each) => each,
            Err(e) if notes.len() == 1 => vec![Err(e)],
            Err(e) => {
                warn!(notifications = notes.len(), error = %e, "a group of notifications failed; settling them one by one");
                let mut each = Vec::with_capacity(notes.len());
                for note in notes {
                    let alone = self
                        .retrying(|| self.settle_attempt(std::slice::from_ref(note)))
                        .await;
                    each.push(
                        alone.and_then(|mut one| one.pop().expect("one answer per notification")),
                    );
                }
                each
            }
        }
    }

    /// Settles `notes` in one unit of work: one answer per notification, in
    /// order, or the error that rolled them all back.
    async fn settle_attempt(&self, notes: &[Verified]) -> Result<Vec<Settled>> {
        let buffer = self.config().buffer_minutes;
        let mut work = self.begin().await?;
        let ids: Vec<String> = notes.iter().map(|n| n.note.dedup_key()).collect();
        let claims: Vec<OrderClaim<'_>> = notes
            .iter()
            .zip(&ids)
            .map(|(n, id)| OrderClaim {
                order_id: &n.note.order_id,
                notification_id: id,
                // A payment will look for a link: its time is locked in the
                // same statement rather than in one more round trip.
                lock_window: n.effect == Effect::Set(PaymentStatus::Paid),
            })
            .collect();
        let locked = work.tx.lock_orders(&claims, buffer).await?;
        let mut ahead = ReadAhead::read(self, &mut work, notes, &locked).await?;
        let mut pending = Pending::default();
        let mut answers: Vec<Option<Settled>> = notes.iter().map(|_| None).collect();
        let mut released = false;
        for (i, (note, found)) in notes.iter().zip(locked).enumerate() {
            let Some(LockedOrder {
                booking,
                first_claim,
            }) = found
            else {
                answers[i] = Some(Err(AppError::NotFound("booking with this order_id")));
                continue;
            };
            // The booking as the group's earlier notifications left it.
            let booking = if released {
                // A release offered its time to waiting bookings, which may
                // include this one: read it again, after the pending writes.
                pending.send(&mut work, &mut answers).await?;
                work.tx.lock_booking(booking.id).await?
            } else {
                if pending.holds(booking.id) {
                    pending.send(&mut work, &mut answers).await?;
                }
                pending.current(booking)
            };
            if !first_claim {
                answers[i] = Some(Ok(outcome(booking, true)));
                continue;
            }
            let (then, trace) = self.notification_plan(&mut work, note, &booking);
            match then {
                Then::Write(mut change) => {
                    change.events.extend(trace);
                    if change.changes_row() {
                        pending.hold(i, booking.id, change);
                    } else {
                        // Only a trace: the booking itself does not change.
                        for event in &change.events {
                            work.tx.record_event(booking.id, event).await?;
                        }
                        answers[i] = Some(Ok(outcome(booking, false)));
                    }
                }
                Then::Assign(mut change, on_exhausted) => {
                    let busy = self.busy(&booking);
                    work.tx.lock_window(busy).await?;
                    let mut candidates = match ahead.take(booking.id, busy) {
                        Some(candidates) => candidates,
                        None => {
                            pending.send(&mut work, &mut answers).await?;
                            let read = work.tx.candidates(&[(busy, booking.id)]).await?;
                            read.into_iter().next().unwrap_or_default()
                        }
                    };
                    if !candidates.iter().any(|c| c.is_free_for(&busy)) {
                        // Expired checkout holds give their links back; the
                        // pending writes go first (one may pay a hold).
                        pending.send(&mut work, &mut answers).await?;
                        let reclaimed = self.reclaim_expired_holds(&mut work, busy).await?;
                        let read = if reclaimed {
                            work.tx.candidates(&[(busy, booking.id)]).await?
                        } else {
                            vec![candidates.clone()]
                        };
                        candidates = read.into_iter().next().unwrap_or_default();
                        if !candidates.iter().any(|c| c.is_free_for(&busy))
                            && self
                                .repack_room(&mut work, &booking, busy, &candidates)
                                .await?
                        {
                            let read = work.tx.candidates(&[(busy, booking.id)]).await?;
                            candidates = read.into_iter().next().unwrap_or_default();
                            // Sessions moved: the group's later bookings are
                            // read again, as after a release.
                            released = true;
                        }
                        if reclaimed || candidates.iter().any(|c| c.is_free_for(&busy)) {
                            // Links changed hands: what was read ahead is stale.
                            ahead.clear();
                        }
                    }
                    change = self.choose(&mut work, &booking, &candidates, on_exhausted, change);
                    change.events.extend(trace);
                    if let LinkChange::Set(link) = change.link {
                        ahead.assigned(booking.id, link, busy);
                    }
                    pending.hold(i, booking.id, change);
                }
                Then::Release(change, reason) => {
                    pending.send(&mut work, &mut answers).await?;
                    let after = self
                        .release(&mut work, &booking, EventKind::Released, &reason, change)
                        .await?;
                    if let Some(event) = &trace {
                        work.tx.record_event(after.id, event).await?;
                    }
                    // Links changed hands: what was read ahead is stale.
                    ahead.clear();
                    released = true;
                    answers[i] = Some(Ok(outcome(after, false)));
                }
            }
        }
        pending.send(&mut work, &mut answers).await?;
        work.commit().await?;
        self.counters.inc(Counter::SettlementGroups);
        Ok(answers
            .into_iter()
            .map(|settled| {
                settled.unwrap_or_else(|| {
                    Err(AppError::Internal(
                        "a notification's booking was not written".into(),
                    ))
                })
            })
            .collect())
    }

    /// What a fresh (not duplicate) notification does to its locked
    /// booking: the payment rule's plan, and the notification's own event
    /// when the plan's payment event does not tell its story (a status
    /// unchanged, refused, or only recorded).
    fn notification_plan(
        &self,
        work: &mut Work,
        Verified {
            note,
            effect,
            source,
        }: &Verified,
        booking: &Booking,
    ) -> (Then, Option<NewEvent>) {
        let mut detail = json!({
            "source": source,
            "transaction_status": note.transaction_status,
            "transaction_id": note.transaction_id,
            "status_code": note.status_code,
            "fraud_status": note.fraud_status,
            "gross_amount": note.gross_amount,
            "body": note.recorded,
        });
        let paid = *effect == Effect::Set(PaymentStatus::Paid);
        let alert = if paid && self.config().midtrans_amount_check && !note.pays(booking.price) {
            Some((
                Alert::AmountMismatch,
                EventKind::AmountMismatch,
                format!(
                    "not applied: gross_amount {} is not the booking's price {}",
                    note.gross_amount, booking.price
                ),
            ))
        } else if paid && booking.payment_status == PaymentStatus::Cancelled {
            Some((
                Alert::PaidAfterCancel,
                EventKind::PaidAfterCancel,
                "not applied: money taken for a cancelled booking".to_owned(),
            ))
        } else {
            None
        };
        if let Some((alert, kind, outcome)) = alert {
            work.report(Report::PaymentAlert {
                alert,
                booking: booking.id,
                order: booking.order_id.clone(),
                detail: outcome.clone(),
            });
            detail["outcome"] = json!(outcome);
            return (
                Then::Write(BookingChange::default()),
                Some(NewEvent::new(kind, None, detail)),
            );
        }
        let (then, kind, outcome) = match *effect {
            Effect::Set(status) => {
                let mut applied = detail.clone();
                applied["outcome"] = json!("applied");
                let plan = payment_plan(booking, status, note.transaction_id.as_deref(), applied);
                if let Some(report) = payment_report(booking, &plan) {
                    work.report(report);
                }
                let outcome = match plan.transition {
                    Transition::Apply(_) => None,
                    Transition::Unchanged => Some("unchanged: already in that state".to_owned()),
                    Transition::Refused(why) => Some(format!("ignored: {why}")),
                };
                (plan.then, EventKind::NotificationIgnored, outcome)
            }
            Effect::Record => (
                Then::Write(BookingChange::default()),
                EventKind::Payment,
                Some("recorded: the booking stays paid".to_owned()),
            ),
            Effect::Unknown | Effect::Inconsistent => (
                Then::Write(BookingChange::default()),
                EventKind::NotificationIgnored,
                Some("ignored: unknown status".to_owned()),
            ),
        };
        let trace = outcome.map(|outcome| {
            detail["outcome"] = json!(outcome);
            NewEvent::new(kind, None, detail)
        });
        (then, trace)
    }
}

fn outcome(booking: Booking, duplicate: bool) -> NotificationOutcome {
    NotificationOutcome { booking, duplicate }
}

/// Changes decided for a group's bookings and not yet written: sent
/// together, in one call, when the group ends or before any statement that
/// must see them.
#[derive(Default)]
struct Pending {
    /// Each change, and the notification it answers.
    changes: Vec<(usize, BookingId, BookingChange)>,
    /// Each booking as last written in this group.
    current: HashMap<BookingId, Booking>,
}

impl Pending {
    fn holds(&self, booking: BookingId) -> bool {
        self.changes.iter().any(|(_, id, _)| *id == booking)
    }

    fn hold(&mut self, answer: usize, booking: BookingId, change: BookingChange) {
        debug_assert!(!self.holds(booking), "one change per booking per write");
        self.changes.push((answer, booking, change));
    }

    /// `locked` as this group last wrote it.
    fn current(&self, locked: Booking) -> Booking {
        self.current.get(&locked.id).cloned().unwrap_or(locked)
    }

    /// Writes the pending changes in one call and answers their
    /// notifications with the bookings as written.
    async fn send(&mut self, work: &mut Work, answers: &mut [Option<Settled>]) -> Result<()> {
        if self.changes.is_empty() {
            return Ok(());
        }
        let changes = std::mem::take(&mut self.changes);
        let batch: Vec<(BookingId, &BookingChange)> = changes
            .iter()
            .map(|(_, id, change)| (*id, change))
            .collect();
        let rows = work.tx.write_bookings(&batch).await?;
        for ((answer, _, _), row) in changes.iter().zip(rows) {
            answers[*answer] = Some(Ok(outcome(row.clone(), false)));
            self.current.insert(row.id, row);
        }
        Ok(())
    }
}

/// The candidate links of a group's payments, read in one round trip before
/// the group is applied, and kept current with the group's own assignments
/// until each is taken.
struct ReadAhead {
    ahead: Vec<(BookingId, Window, Vec<LinkCandidate>)>,
}

impl ReadAhead {
    /// Reads the candidates of the fresh payments whose bookings have no
    /// link yet (the ones [`payment_plan`] will send looking for one).
    async fn read(
        app: &App,
        work: &mut Work,
        notes: &[Verified],
        locked: &[Option<LockedOrder>],
    ) -> Result<Self> {
        let wants: Vec<(Window, BookingId)> = notes
            .iter()
            .zip(locked)
            .filter(|(note, _)| note.effect == Effect::Set(PaymentStatus::Paid))
            .filter_map(|(_, found)| found.as_ref())
            .filter(|found| found.first_claim && found.booking.meeting_link_id.is_none())
            .map(|found| (app.busy(&found.booking), found.booking.id))
            .collect();
        let read = if wants.is_empty() {
            Vec::new()
        } else {
            work.tx.candidates(&wants).await?
        };
        Ok(Self {
            ahead: wants
                .into_iter()
                .zip(read)
                .map(|((want, id), candidates)| (id, want, candidates))
                .collect(),
        })
    }

    /// The candidates read for `booking` looking at `want`, if they were.
    fn take(&mut self, booking: BookingId, want: Window) -> Option<Vec<LinkCandidate>> {
        let i = self
            .ahead
            .iter()
            .position(|(id, w, _)| *id == booking && *w == want)?;
        Some(self.ahead.swap_remove(i).2)
    }

    /// `booking` took `link` for `busy`: the other payments see it busy.
    fn assigned(&mut self, booking: BookingId, link: LinkId, busy: Window) {
        for (_, _, candidates) in self.ahead.iter_mut().filter(|(id, ..)| *id != booking) {
            if let Some(c) = candidates.iter_mut().find(|c| c.id == link) {
                c.busy.push(busy);
            }
        }
    }

    fn clear(&mut self) {
        self.ahead.clear();
    }
}
