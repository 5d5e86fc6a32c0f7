//! Payments: the payment rule ([`payment_plan`]), shared by Midtrans
//! notifications and by operators; a notification's verification (its
//! signature, or the gateway's own word) before it is settled
//! ([`crate::settle`]); an operator's payment change.
use meetpool_domain::midtrans::{Effect, Notification};
use meetpool_domain::payment::{booking_status, Transition};
use meetpool_domain::{Booking, BookingId, EventKind, PaymentStatus};
use meetpool_store::{BookingChange, LinkChange, NewEvent, PaymentChange};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use tracing::{info, instrument, warn};

use crate::allocate::{write, OnExhausted};
use crate::bookings::{not_found, PaymentOutcome};
use crate::metrics::Counter;
use crate::work::{Report, Work};
use crate::{App, AppError, MidtransVerify, Result};

/// A notification whose signature (or status, asked of Midtrans) checked
/// out, with what it asks for.
pub(crate) struct Verified {
    pub note: Notification,
    pub effect: Effect,
    /// Where it came from, for the booking's audit trail: `midtrans` (a
    /// notification) or `reconciliation` (Midtrans' answer when asked).
    pub source: &'static str,
}

#[derive(Clone, Debug)]
pub struct NotificationOutcome {
    pub booking: Booking,
    /// Already received before: nothing changed.
    pub duplicate: bool,
}

impl App {
    #[instrument(skip_all, fields(order_id, transaction_status))]
    pub async fn handle_notification(&self, body: &[u8]) -> Result<NotificationOutcome> {
        let Some(server_key) = self.config().midtrans_server_key.as_ref() else {
            return Err(AppError::NotConfigured(
                "MIDTRANS_SERVER_KEY is not set: payment notifications cannot be verified".into(),
            ));
        };
        let posted = Notification::parse(body)
            .map_err(|e| AppError::malformed("malformed_notification", e.to_string()))?;
        tracing::Span::current()
            .record("order_id", posted.order_id.as_str())
            .record("transaction_status", posted.transaction_status.as_str());
        if !posted.signature_is_valid(server_key.expose_secret()) {
            self.counters.inc(Counter::NotificationsRejected);
            warn!(order_id = %posted.order_id, "payment notification with an invalid signature refused");
            return Err(AppError::Unauthorized {
                code: "invalid_signature",
                message: "signature_key does not match this notification".into(),
            });
        }
        let note = match self.config().midtrans_verify {
            MidtransVerify::Signature => posted,
            MidtransVerify::Status => {
                self.fetch_status(&posted, server_key.expose_secret())
                    .await?
            }
        };
        let effect = note.effect();
        if effect == Effect::Inconsistent {
            self.counters.inc(Counter::NotificationsRejected);
            warn!(order_id = %note.order_id, status_code = %note.status_code, transaction_status = %note.transaction_status, "notification whose status does not go with its status_code; refused");
            return Err(AppError::Unauthorized {
                code: "unverifiable_status",
                message: format!(
                    "transaction_status {} does not go with status_code {} (the status is not covered by the signature); refused",
                    note.transaction_status, note.status_code
                ),
            });
        }
        let outcome = self
            .settle(Verified {
                note,
                effect,
                source: "midtrans",
            })
            .await?;
        if outcome.duplicate {
            self.counters.inc(Counter::NotificationsDuplicate);
            info!(order_id = %outcome.booking.order_id, "duplicate payment notification: nothing changed");
        } else {
            self.counters.inc(Counter::NotificationsApplied);
        }
        Ok(outcome)
    }

    /// An operator's or another gateway's payment change: the same state
    /// machine, and the same assignment and release, as a Midtrans
    /// notification.
    #[instrument(skip(self), fields(booking_id = %id))]
    pub async fn set_payment_status(
        &self,
        id: BookingId,
        wanted: PaymentStatus,
    ) -> Result<PaymentOutcome> {
        self.retrying(|| async {
            let mut work = self.begin().await?;
            let booking = work
                .tx
                .lock_booking(id)
                .await
                .map_err(not_found("booking"))?;
            let plan = payment_plan(&booking, wanted, None, json!({ "source": "operator" }));
            if let Transition::Refused(why) = plan.transition {
                return Err(AppError::conflict(
                    "invalid_transition",
                    format!(
                        "cannot change payment_status from {} to {wanted}: {why}",
                        booking.payment_status
                    ),
                ));
            }
            let transition = plan.transition;
            if let Some(report) = payment_report(&booking, &plan) {
                work.report(report);
            }
            let booking = self.carry_out(&mut work, &booking, plan.then).await?;
            work.commit().await?;
            Ok(PaymentOutcome {
                booking,
                transition,
            })
        })
        .await
    }

    /// Does what a payment plan asks of the locked `booking`, at once; the
    /// booking as it is now. (Notifications carry out theirs in groups:
    /// [`crate::settle`].)
    pub(crate) async fn carry_out(
        &self,
        work: &mut Work,
        booking: &Booking,
        then: Then,
    ) -> Result<Booking> {
        match then {
            Then::Write(change) => write(work, booking, &change).await,
            Then::Assign(change, on_exhausted) => {
                self.give_link(work, booking, on_exhausted, change).await
            }
            Then::Release(change, reason) => {
                self.release(work, booking, EventKind::Released, &reason, change)
                    .await
            }
        }
    }

    /// Asks Midtrans for the transaction's status, as its own libraries do,
    /// and trusts that answer instead of the posted body.
    async fn fetch_status(&self, posted: &Notification, server_key: &str) -> Result<Notification> {
        let gateway = |what: &str| {
            warn!(order_id = %posted.order_id, problem = what, "Midtrans status check failed");
            AppError::Gateway(format!(
                "cannot confirm the transaction with Midtrans: {what}"
            ))
        };
        match self.ask_midtrans(&posted.order_id, server_key).await {
            Ok(Asked::Found(fetched)) => Ok(*fetched),
            Ok(Asked::NotFound) => Err(gateway("HTTP 404: the transaction does not exist (yet)")),
            Err(what) => Err(gateway(&what)),
        }
    }

    /// Midtrans' GET status of an order (`{MIDTRANS_API_BASE}/v2/{order_id}/status`,
    /// Basic auth with the server key): the transaction as a notification
    /// would carry it, or `NotFound` (no payment method chosen yet, or no
    /// such order: Midtrans answers 404, in its HTTP status or in the
    /// body's `status_code`). The answer comes over an authenticated
    /// connection, so it needs no signature. `Err`: why there is no answer.
    pub(crate) async fn ask_midtrans(
        &self,
        order_id: &str,
        server_key: &str,
    ) -> std::result::Result<Asked, String> {
        let url = format!(
            "{}/v2/{}/status",
            self.config().midtrans_api_base.trim_end_matches('/'),
            utf8_percent(order_id)
        );
        let response = self
            .http
            .get(&url)
            .basic_auth(server_key, Some(""))
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|_| "no answer".to_owned())?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(Asked::NotFound);
        }
        if !status.is_success() {
            return Err(format!("HTTP {}", status.as_u16()));
        }
        let mut value: Value = response
            .json()
            .await
            .map_err(|_| "the answer is not JSON".to_owned())?;
        if value.get("status_code").and_then(Value::as_str) == Some("404")
            && value.get("transaction_status").is_none()
        {
            return Ok(Asked::NotFound);
        }
        if value.get("signature_key").is_none() {
            value["signature_key"] = json!("-");
        }
        let fetched = Notification::from_value(&value)
            .map_err(|_| "the answer is not a transaction".to_owned())?;
        if fetched.order_id != order_id {
            return Err("the answer is for another order".to_owned());
        }
        Ok(Asked::Found(Box::new(fetched)))
    }
}

/// What Midtrans' status API says of an order.
pub(crate) enum Asked {
    Found(Box<Notification>),
    NotFound,
}

/// What a payment change does to a booking: its transition in the payment
/// state machine, and what follows.
#[derive(Debug)]
pub(crate) struct PaymentPlan {
    pub transition: Transition,
    pub then: Then,
}

/// What follows a payment change, still to be carried out.
#[derive(Debug)]
pub(crate) enum Then {
    /// Write the change (nothing, if it is empty).
    Write(BookingChange),
    /// Write the change with a link, if one is free.
    Assign(BookingChange, OnExhausted),
    /// Write the change taking the booking's link back (for this reason),
    /// then offer the freed time to the bookings waiting for it.
    Release(BookingChange, String),
}

/// The payment rule, in one place: moves `booking` towards `wanted` as the
/// state machine allows and says what follows — a link on becoming paid, a
/// release on leaving paid. `transaction_id` is the gateway's (None: an
/// operator's decision, which may reverse the payment that made the booking
/// paid); `detail` goes into the payment's event.
pub(crate) fn payment_plan(
    booking: &Booking,
    wanted: PaymentStatus,
    transaction_id: Option<&str>,
    mut detail: Value,
) -> PaymentPlan {
    let transition = booking
        .payment_status
        .transition(wanted, reverses_payment(booking, transaction_id));
    let then = match transition {
        Transition::Apply(new) => {
            detail["from"] = json!(booking.payment_status.as_str());
            detail["to"] = json!(new.as_str());
            let change = BookingChange {
                payment: Some(PaymentChange {
                    status: new,
                    transaction_id: transaction_id
                        .filter(|_| new == PaymentStatus::Paid)
                        .map(str::to_owned),
                    booking_status: booking_status(new, &booking.status),
                }),
                link: LinkChange::Keep,
                events: vec![NewEvent::new(EventKind::Payment, None, detail)],
            };
            if new == PaymentStatus::Paid && booking.meeting_link_id.is_none() {
                Then::Assign(change, OnExhausted::Alert)
            } else if booking.payment_status == PaymentStatus::Paid
                || (booking.meeting_link_id.is_some()
                    && !matches!(new, PaymentStatus::Pending | PaymentStatus::Paid))
            {
                // Leaving paid, or a checkout hold whose payment failed or
                // was cancelled: the link goes back.
                Then::Release(change, format!("payment {new}"))
            } else {
                Then::Write(change)
            }
        }
        // Paid again (a card's capture, then its settlement): one more
        // chance at a link for a booking still waiting for one.
        Transition::Unchanged if booking.is_waiting() => {
            Then::Assign(BookingChange::default(), OnExhausted::Quiet)
        }
        Transition::Unchanged | Transition::Refused(_) => Then::Write(BookingChange::default()),
    };
    PaymentPlan { transition, then }
}

/// Whether a change from the gateway's `transaction_id` concerns the very
/// payment that made `booking` paid (`None`: an operator's decision, which
/// may reverse any payment).
pub(crate) fn reverses_payment(booking: &Booking, transaction_id: Option<&str>) -> bool {
    match (transaction_id, booking.payment_transaction_id.as_deref()) {
        (None, _) => true,
        (Some(incoming), Some(paid_by)) => incoming == paid_by,
        (Some(_), None) => false,
    }
}

/// What a payment plan will report once committed: its payment change.
pub(crate) fn payment_report(booking: &Booking, plan: &PaymentPlan) -> Option<Report> {
    match plan.transition {
        Transition::Apply(to) => Some(Report::PaymentChanged {
            booking: booking.id,
            order: booking.order_id.clone(),
            from: booking.payment_status,
            to,
        }),
        _ => None,
    }
}

/// Order ids are visible ASCII; escape what a path segment cannot hold.
fn utf8_percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}
