//! Midtrans payment notifications, end to end: verified, de-duplicated,
//! applied through the payment state machine, the link assigned or released
//! in the same transaction as the payment change.
use meetpool_domain::midtrans::{Effect, Notification};
use meetpool_domain::payment::Transition;
use meetpool_domain::{Booking, EventKind};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use tracing::{info, instrument, warn};

use meetpool_store::{BookingWrite, NewEvent, Tx};

use crate::allocate::Step;
use crate::metrics::Counter;
use crate::{App, AppError, MidtransVerify, Result};

/// A notification whose signature (or status, asked of Midtrans) checked
/// out, with what it asks for and its body as received.
pub(crate) struct Verified {
    pub note: Notification,
    pub effect: Effect,
    pub raw: String,
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
        let raw = String::from_utf8_lossy(body).into_owned();
        let (booking, duplicate) = self.settle(Verified { note, effect, raw }).await?;
        if duplicate {
            self.counters.inc(Counter::NotificationsDuplicate);
            info!(order_id = %booking.order_id, "duplicate payment notification: nothing changed");
        } else {
            self.counters.inc(Counter::NotificationsApplied);
        }
        Ok(NotificationOutcome { booking, duplicate })
    }

    /// Applies a fresh (not duplicate) notification to its locked booking,
    /// up to its write: the payment change, the link it brings or takes,
    /// and its event. The write is left to the caller unless it is a
    /// release's.
    pub(crate) async fn notification_step_in(
        &self,
        tx: &mut dyn Tx,
        Verified { note, effect, raw }: &Verified,
        booking: &Booking,
    ) -> Result<Step> {
        let detail = json!({
            "source": "midtrans",
            "transaction_status": note.transaction_status,
            "transaction_id": note.transaction_id,
            "status_code": note.status_code,
            "fraud_status": note.fraud_status,
            "body": raw,
        });
        let (step, kind, outcome) = match *effect {
            Effect::Set(status) => {
                let mut applied = detail.clone();
                applied["outcome"] = json!("applied");
                let txn = note.transaction_id.as_deref();
                let (t, step) = self
                    .payment_step_in(tx, booking, status, txn, applied)
                    .await?;
                let outcome = match t {
                    Transition::Apply(_) => None,
                    Transition::Unchanged => Some("unchanged: already in that state".to_owned()),
                    Transition::Refused(why) => Some(format!("ignored: {why}")),
                };
                (step, EventKind::NotificationIgnored, outcome)
            }
            Effect::Record => (
                Step::Write(BookingWrite::default()),
                EventKind::Payment,
                Some("recorded: the booking stays paid".to_owned()),
            ),
            Effect::Unknown | Effect::Inconsistent => (
                Step::Write(BookingWrite::default()),
                EventKind::NotificationIgnored,
                Some("ignored: unknown status".to_owned()),
            ),
        };
        let Some(outcome) = outcome else {
            return Ok(step);
        };
        let mut detail = detail;
        detail["outcome"] = json!(outcome);
        let event = NewEvent::new(kind, None, detail);
        Ok(match step {
            Step::Write(mut change) => {
                change.events.push(event);
                Step::Write(change)
            }
            Step::Done(after) => {
                tx.record_event(after.id, event.kind, event.link, event.detail)
                    .await?;
                Step::Done(after)
            }
        })
    }

    /// Asks Midtrans for the transaction's status, as its own libraries do,
    /// and trusts that answer instead of the posted body.
    async fn fetch_status(&self, posted: &Notification, server_key: &str) -> Result<Notification> {
        let url = format!(
            "{}/v2/{}/status",
            self.config().midtrans_api_base.trim_end_matches('/'),
            utf8_percent(&posted.order_id)
        );
        let gateway = |what: &str| {
            warn!(order_id = %posted.order_id, problem = what, "Midtrans status check failed");
            AppError::Gateway(format!(
                "cannot confirm the transaction with Midtrans: {what}"
            ))
        };
        let response = self
            .http
            .get(&url)
            .basic_auth(server_key, Some(""))
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|_| gateway("no answer"))?;
        if !response.status().is_success() {
            return Err(gateway(&format!("HTTP {}", response.status().as_u16())));
        }
        let mut value: Value = response
            .json()
            .await
            .map_err(|_| gateway("the answer is not JSON"))?;
        if value.get("signature_key").is_none() {
            value["signature_key"] = json!("-");
        }
        let fetched = Notification::from_value(&value)
            .map_err(|_| gateway("the answer is not a transaction"))?;
        if fetched.order_id != posted.order_id {
            return Err(gateway("the answer is for another order"));
        }
        Ok(fetched)
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
