//! Settling verified payment notifications in groups (group commit).
//!
//! A notification's transaction costs the database far more than the one
//! row it changes: the begin and the commit, a statement per step, the
//! locks. When notifications arrive faster than the database settles them,
//! the ones that queued up while a transaction ran are settled together in
//! the next: one transaction, one statement locking all their bookings, one
//! reading their candidate links, one writing all their changes. A
//! notification that finds the queue idle is settled at once, alone; none
//! ever waits for company.
//!
//! Nothing about a notification's outcome depends on its group. Each is
//! applied exactly as if alone, in arrival order; a group commits or rolls
//! back as a whole and is answered only after its commit. When a group fails
//! for a reason other than contention (which retries it whole), its
//! notifications are settled again one by one, so that each gets its own
//! answer.
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use meetpool_domain::midtrans::Effect;
use meetpool_domain::{Booking, BookingId, PaymentStatus, Window};
use meetpool_store::{NotificationKey, Tx};
use tokio::sync::oneshot;
use tracing::warn;

use crate::allocate::Step;
use crate::metrics::Counter;
use crate::payments::Verified;
use crate::{App, AppError, Result};

/// Groups settled at the same time, each in its own transaction. Two, so
/// that one group's round trips overlap the other's work; more groups only
/// wait for each other's locks, at the database's expense (measured in
/// bench/RESULTS.md).
const RUNNERS: usize = 2;
/// The most notifications settled in one transaction.
const GROUP: usize = 16;

/// A notification's answer: its booking afterwards, and whether it was a
/// duplicate.
pub(crate) type Settled = Result<(Booking, bool)>;

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
        match self.retrying(|| self.settle_in_one(notes)).await {
            Ok(each) => each,
            Err(e) if notes.len() == 1 => vec![Err(e)],
            Err(e) => {
                warn!(notifications = notes.len(), error = %e, "a group of notifications failed; settling them one by one");
                let mut each = Vec::with_capacity(notes.len());
                for note in notes {
                    let alone = self
                        .retrying(|| self.settle_in_one(std::slice::from_ref(note)))
                        .await;
                    each.push(
                        alone.and_then(|mut one| one.pop().expect("one answer per notification")),
                    );
                }
                each
            }
        }
    }

    /// Settles `notes` in one transaction: one answer per notification, in
    /// order, or the error that rolled them all back.
    async fn settle_in_one(&self, notes: &[Verified]) -> Result<Vec<Settled>> {
        let mut tx = self.store().begin().await?;
        let keys: Vec<String> = notes.iter().map(|n| n.note.dedup_key()).collect();
        let items: Vec<NotificationKey<'_>> = notes
            .iter()
            .zip(&keys)
            .map(|(n, key)| NotificationKey {
                order_id: &n.note.order_id,
                dedup_key: key,
                // A payment will look for a link: its time is locked in the
                // same statement rather than in one more round trip.
                lock_window: n.effect == Effect::Set(PaymentStatus::Paid),
            })
            .collect();
        let locked = tx
            .lock_for_notifications(&items, self.config().buffer_minutes)
            .await?;
        // The payments that will look for links read their candidates in
        // one round trip.
        let wants: Vec<(Window, BookingId)> = notes
            .iter()
            .zip(&locked)
            .filter(|(note, _)| note.effect == Effect::Set(PaymentStatus::Paid))
            .filter_map(|(_, found)| found.as_ref())
            .filter(|(booking, fresh)| *fresh && booking.meeting_link_id.is_none())
            .map(|(booking, _)| (self.busy(booking), booking.id))
            .collect();
        if !wants.is_empty() {
            tx.prefetch_candidates(&wants, self.config().buffer_minutes)
                .await?;
        }
        // What each notification answers: filled in as it is applied, or,
        // for a held write, when its row comes back.
        let mut each: Vec<Option<Settled>> = notes.iter().map(|_| None).collect();
        let mut rows = Rows::default();
        // Bookings may have been written (a release offers its freed time to
        // waiting bookings) that `rows` has not seen yet.
        let mut unseen = false;
        for (i, (note, found)) in notes.iter().zip(locked).enumerate() {
            let Some((booking, fresh)) = found else {
                each[i] = Some(Err(AppError::NotFound("booking with this order_id")));
                continue;
            };
            if unseen || rows.waiting.contains_key(&booking.id) {
                rows.take(tx.as_mut(), &mut each).await?;
                unseen = false;
            }
            // The booking as the group's earlier notifications left it.
            let booking = rows.current.get(&booking.id).cloned().unwrap_or(booking);
            if !fresh {
                each[i] = Some(Ok((booking, true)));
                continue;
            }
            match self
                .notification_step_in(tx.as_mut(), note, &booking)
                .await?
            {
                Step::Write(change) if change.changes_row() => {
                    // Sent with the group's other writes, in one statement.
                    rows.waiting.insert(booking.id, i);
                    tx.hold(&booking, change).await?;
                }
                Step::Write(change) => {
                    // Only a trace: the booking itself does not change.
                    for e in change.events {
                        tx.record_event(booking.id, e.kind, e.link, e.detail)
                            .await?;
                    }
                    each[i] = Some(Ok((booking, false)));
                }
                Step::Done(after) => {
                    each[i] = Some(Ok((*after, false)));
                    unseen = true;
                }
            }
        }
        rows.take(tx.as_mut(), &mut each).await?;
        tx.commit().await?;
        self.counters.inc(Counter::SettlementGroups);
        Ok(each
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
}

/// The bookings a group's transaction wrote, as they came back.
#[derive(Default)]
struct Rows {
    /// Each booking as last written.
    current: HashMap<BookingId, Booking>,
    /// The notification whose answer is its booking's next written row.
    waiting: HashMap<BookingId, usize>,
}

impl Rows {
    /// Sends the held writes and takes in every row written since the last
    /// time, in order.
    async fn take(&mut self, tx: &mut dyn Tx, each: &mut [Option<Settled>]) -> Result<()> {
        for row in tx.written().await? {
            if let Some(i) = self.waiting.remove(&row.id) {
                each[i] = Some(Ok((row.clone(), false)));
            }
            self.current.insert(row.id, row);
        }
        Ok(())
    }
}
