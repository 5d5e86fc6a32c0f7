//! Reconciliation: payments whose notification never arrived.
//!
//! Midtrans sends a notification a handful of times over a few hours and
//! then gives up; one lost on the way, or sent while the platform's
//! Midtrans settings still point elsewhere, would leave a customer paid at
//! Midtrans and pending here for good. So the bookings whose payment is
//! pending are asked about through Midtrans' GET status API on a schedule
//! (`MEETPOOL_MIDTRANS_RECONCILE`: the waits between checks, the first
//! from the booking's creation, the last repeated) until the payment is no
//! longer pending or the session has started. The answer is settled
//! exactly as the same notification would be ([`crate::settle`]: the
//! status mapping, the amount check, forward only, de-duplicated with the
//! notifications), with `reconciliation` as its source in the audit trail.
//!
//! Each replica reconciles; the store's claim leases the due bookings
//! ([`meetpool_store::PaymentChecks`]), so no booking is asked about twice
//! at once, and a notification being settled is passed over. A few
//! requests go to Midtrans at a time. A 404 (no payment method chosen yet)
//! is no error: the booking is asked about again at its next check.
use std::future::Future;
use std::time::Duration;

use futures_util::future::join_all;
use jiff::{SignedDuration, Timestamp};
use meetpool_domain::midtrans::{Effect, Notification};
use meetpool_domain::payment::Transition;
use meetpool_domain::{Booking, PaymentStatus};
use meetpool_store::{DueChecks, PaymentCheck};
use secrecy::ExposeSecret;
use serde::Serialize;
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::metrics::CheckOutcome;
use crate::payments::{reverses_payment, Asked, Verified};
use crate::{parse_schedule, App, AppError, Result};

/// A minute after the booking is made, then 5 minutes, 15 minutes and
/// hourly until the session starts.
pub const DEFAULT_RECONCILE_SCHEDULE: &str = "1m,5m,15m,1h";
/// Requests to Midtrans under way at once, per process.
const CONCURRENCY: usize = 4;
/// Bookings one scheduled claim takes, and how long it holds them: their
/// questions take at most `BATCH / CONCURRENCY` rounds of the HTTP
/// client's 4-second timeout.
const BATCH: u32 = 32;
const LEASE: SignedDuration = SignedDuration::from_mins(2);
/// Claims one scheduled pass makes at most (the rest wait for the next).
const BATCHES: usize = 10;
/// A pass by hand asks about every pending booking at once, up to this many.
const BY_HAND: u32 = 1000;
const BY_HAND_LEASE: SignedDuration = SignedDuration::from_mins(30);

/// One pending booking asked about, and what came of it.
#[derive(Clone, Debug, Serialize)]
pub struct CheckView {
    pub booking_id: String,
    pub order_id: String,
    /// The booking's payment_status when it was asked about.
    pub payment_status: String,
    /// What Midtrans reports: its transaction_status, or `not_found`;
    /// null when it did not answer.
    pub midtrans_status: Option<String>,
    /// `applied`, `unchanged`, `not_found` or `failed`; on a dry run,
    /// `would_apply` in place of `applied`.
    pub outcome: &'static str,
    /// The booking's payment_status after the check (on a dry run, what it
    /// would be).
    pub then: String,
    /// Why nothing changed, or what failed.
    pub detail: Option<String>,
}

/// `1m,5m,15m,1h`, or `off`: the reconciliation schedule.
pub fn parse_reconcile_schedule(s: &str) -> Result<Option<Vec<Duration>>, String> {
    if s.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let schedule = parse_schedule(s)?;
    if schedule.iter().any(Duration::is_zero) {
        return Err(format!(
            "{s:?}: a wait of 0 would ask Midtrans without pause"
        ));
    }
    Ok(Some(schedule))
}

impl App {
    /// One pass by hand (`meetpool payments reconcile`): every booking whose
    /// payment is pending and whose session has not started is asked about
    /// now, whatever its schedule, unless another replica is asking. A dry
    /// run asks Midtrans and says what would change, changing nothing.
    pub async fn reconcile_payments(&self, dry_run: bool) -> Result<Vec<CheckView>> {
        self.reconcile_pass(true, dry_run).await
    }

    /// Asks Midtrans about the pending payments as they come due, until
    /// `shutdown` completes. Returns at once when reconciliation is off or
    /// no server key is set.
    pub async fn run_reconciler(&self, shutdown: impl Future<Output = ()>) {
        let (Some(schedule), Some(_)) = (
            self.config().midtrans_reconcile.as_ref(),
            self.config().midtrans_server_key.as_ref(),
        ) else {
            return;
        };
        // Often enough to ask within the shortest wait.
        let poll = (schedule.iter().min().copied().unwrap_or_default() / 2)
            .clamp(Duration::from_millis(100), Duration::from_secs(15));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                pass = self.reconcile_pass(false, false) => if let Err(e) = pass {
                    warn!(error = %e, "reconciliation of pending payments failed; trying again shortly");
                },
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(poll) => {}
            }
        }
    }

    async fn reconcile_pass(&self, every: bool, dry_run: bool) -> Result<Vec<CheckView>> {
        let Some(key) = self.config().midtrans_server_key.clone() else {
            return Err(AppError::NotConfigured(
                "MIDTRANS_SERVER_KEY is not set: Midtrans cannot be asked about payments".into(),
            ));
        };
        let schedule = match &self.config().midtrans_reconcile {
            Some(s) if !s.is_empty() => s.clone(),
            _ => parse_schedule(DEFAULT_RECONCILE_SCHEDULE).map_err(AppError::Internal)?,
        };
        let first_wait = SignedDuration::try_from(schedule[0]).unwrap_or(SignedDuration::MAX);
        let permits = Semaphore::new(CONCURRENCY);
        let mut checked = Vec::new();
        for _ in 0..if every { 1 } else { BATCHES } {
            let now = Timestamp::now();
            let due = DueChecks {
                now,
                first_wait,
                every,
                limit: if every { BY_HAND } else { BATCH },
            };
            let checks = if dry_run {
                self.store().payment_checks().due(&due).await?
            } else {
                let lease = if every { BY_HAND_LEASE } else { LEASE };
                self.store()
                    .payment_checks()
                    .claim(&due, now.saturating_add(lease).unwrap_or(now))
                    .await?
            };
            let full = checks.len() >= due.limit as usize;
            checked.extend(
                join_all(checks.into_iter().map(|check| {
                    self.check_payment(check, key.expose_secret(), &schedule, dry_run, &permits)
                }))
                .await,
            );
            if !full || dry_run {
                break;
            }
        }
        if !dry_run {
            if let Err(e) = self.store().payment_checks().prune(Timestamp::now()).await {
                warn!(error = %e, "cannot forget the checks of payments no longer pending");
            }
        }
        Ok(checked)
    }

    /// Asks Midtrans about one claimed booking and settles the answer (or,
    /// on a dry run, says what it would do); records the check.
    async fn check_payment(
        &self,
        check: PaymentCheck,
        server_key: &str,
        schedule: &[Duration],
        dry_run: bool,
        permits: &Semaphore,
    ) -> CheckView {
        let booking = check.booking;
        let before = booking.payment_status;
        let asked = {
            let _turn = permits.acquire().await.expect("never closed");
            self.ask_midtrans(&booking.order_id, server_key).await
        };
        let mut view = CheckView {
            booking_id: booking.id.to_string(),
            order_id: booking.order_id.clone(),
            payment_status: before.to_string(),
            midtrans_status: None,
            outcome: CheckOutcome::Failed.as_str(),
            then: before.to_string(),
            detail: None,
        };
        let outcome = match asked {
            Err(why) => {
                warn!(booking_id = %booking.id, order_id = %booking.order_id, problem = %why, "cannot ask Midtrans about a pending payment; asking again at its next check");
                view.detail = Some(why);
                CheckOutcome::Failed
            }
            Ok(Asked::NotFound) => {
                view.midtrans_status = Some("not_found".into());
                CheckOutcome::NotFound
            }
            Ok(Asked::Found(note)) => {
                view.midtrans_status = Some(note.transaction_status.clone());
                let effect = note.effect();
                if effect == Effect::Inconsistent {
                    view.detail = Some(format!(
                        "transaction_status {} does not go with status_code {}; not applied",
                        note.transaction_status, note.status_code
                    ));
                    CheckOutcome::Failed
                } else if dry_run {
                    let (would, then, why) = self.preview(&booking, &note, effect);
                    view.then = then.to_string();
                    view.detail = why;
                    if would {
                        view.outcome = "would_apply";
                        return view;
                    }
                    CheckOutcome::Unchanged
                } else {
                    self.settle_answer(&booking, *note, effect, &mut view).await
                }
            }
        };
        view.outcome = outcome.as_str();
        if dry_run {
            return view;
        }
        self.counters.check(outcome);
        let wait = schedule[(check.attempts as usize + 1).min(schedule.len() - 1)];
        let now = Timestamp::now();
        let next = SignedDuration::try_from(wait)
            .ok()
            .and_then(|w| now.checked_add(w).ok())
            .unwrap_or(Timestamp::MAX);
        if let Err(e) = self
            .store()
            .payment_checks()
            .record(booking.id, now, next, outcome.as_str())
            .await
        {
            warn!(booking_id = %booking.id, error = %e, "cannot record a payment check; it is asked again when its lease ends");
        }
        view
    }

    /// Settles Midtrans' answer as the same notification would be.
    async fn settle_answer(
        &self,
        booking: &Booking,
        note: Notification,
        effect: Effect,
        view: &mut CheckView,
    ) -> CheckOutcome {
        let status = note.transaction_status.clone();
        let settled = self
            .settle(Verified {
                note,
                effect,
                source: "reconciliation",
            })
            .await;
        match settled {
            Ok(outcome) => {
                let after = outcome.booking.payment_status;
                view.then = after.to_string();
                if after == booking.payment_status {
                    return CheckOutcome::Unchanged;
                }
                info!(booking_id = %booking.id, order_id = %booking.order_id, transaction_status = %status, from = %booking.payment_status, to = %after, "reconciliation applied a payment whose notification never arrived");
                CheckOutcome::Applied
            }
            Err(e) => {
                warn!(booking_id = %booking.id, order_id = %booking.order_id, error = %e, "Midtrans' answer could not be settled; asking again at the next check");
                view.detail = Some(e.to_string());
                CheckOutcome::Failed
            }
        }
    }

    /// What settling `note` would do to `booking`, as far as the booking
    /// alone tells: whether it would change, the payment_status it would
    /// have, and why not.
    fn preview(
        &self,
        booking: &Booking,
        note: &Notification,
        effect: Effect,
    ) -> (bool, PaymentStatus, Option<String>) {
        let before = booking.payment_status;
        match effect {
            Effect::Set(PaymentStatus::Paid)
                if self.config().midtrans_amount_check && !note.pays(booking.price) =>
            {
                let why = format!(
                    "gross_amount {} is not the booking's price {}",
                    note.gross_amount, booking.price
                );
                (false, before, Some(why))
            }
            Effect::Set(wanted) => {
                let reverses = reverses_payment(booking, note.transaction_id.as_deref());
                match before.transition(wanted, reverses) {
                    Transition::Apply(new) => (true, new, None),
                    Transition::Unchanged => (false, before, None),
                    Transition::Refused(why) => (false, before, Some(why.to_owned())),
                }
            }
            Effect::Record => (
                false,
                before,
                Some("recorded: the booking stays as it is".into()),
            ),
            Effect::Unknown | Effect::Inconsistent => (
                false,
                before,
                Some("unknown status: nothing changes".into()),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_schedule_is_waits_or_off() {
        assert_eq!(
            parse_reconcile_schedule(DEFAULT_RECONCILE_SCHEDULE).unwrap(),
            Some([60, 300, 900, 3600].map(Duration::from_secs).to_vec())
        );
        assert_eq!(parse_reconcile_schedule(" OFF ").unwrap(), None);
        for bad in ["", "0s", "1m,0s", "soon", "1m,,5m"] {
            assert!(parse_reconcile_schedule(bad).is_err(), "{bad}");
        }
    }
}
