//! The payment state of a booking and the only moves it may make.
//!
//! Notifications arrive late, twice, or out of order; operators correct
//! things by hand. Every change of payment state, whatever its source, goes
//! through [`PaymentStatus::transition`], so a paid booking is only ever
//! taken out of paid by a refund, a cancellation or a reversal of the very
//! payment that made it paid.
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Pending,
    Paid,
    Failed,
    Cancelled,
    Expired,
    Refunded,
}

pub const ALL_STATUSES: [PaymentStatus; 6] = [
    PaymentStatus::Pending,
    PaymentStatus::Paid,
    PaymentStatus::Failed,
    PaymentStatus::Cancelled,
    PaymentStatus::Expired,
    PaymentStatus::Refunded,
];

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Paid => "paid",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
            Self::Refunded => "refunded",
        }
    }

    /// Where a booking in `self` goes when asked to become `wanted`.
    ///
    /// `reverses_payment` says the request concerns the same payment that made
    /// the booking paid (a Midtrans `deny` for the settled transaction, or an
    /// operator's correction); a failure of some other, earlier attempt never
    /// takes a paid booking out of paid.
    pub fn transition(self, wanted: PaymentStatus, reverses_payment: bool) -> Transition {
        use PaymentStatus::*;
        if self == wanted {
            return Transition::Unchanged;
        }
        match (self, wanted) {
            (Refunded, _) => Transition::Refused("a refunded booking is final"),
            (Cancelled, Refunded) => Transition::Apply(Refunded),
            (Cancelled, _) => Transition::Refused("a cancelled booking is final"),
            (Paid, Refunded | Cancelled) => Transition::Apply(wanted),
            (Paid, Failed) if reverses_payment => Transition::Apply(Failed),
            (Paid, _) => Transition::Refused("a paid booking never moves back to an unpaid state"),
            (Pending | Failed | Expired, _) => Transition::Apply(wanted),
        }
    }
}

/// The booking's `status`, the word the previous system's readers go by
/// (`pending`, `confirmed`, `cancelled`, `completed`), once its payment is
/// `payment`: the one rule for every write of a payment state, whatever its
/// source. `None` keeps `current`.
///
/// - paid: a `pending` booking is `confirmed` (any other word, such as a
///   platform's `completed`, stays);
/// - refunded or cancelled, which are final: `cancelled`, so that no reader
///   takes the session as still on;
/// - any unpaid state (a reversed payment): a `confirmed` booking is
///   `pending` again, since nothing pays for it any more.
///
/// A partial refund is no payment state: it keeps the booking paid, and its
/// `status` with it.
pub fn booking_status(payment: PaymentStatus, current: &str) -> Option<&'static str> {
    let wanted = match payment {
        PaymentStatus::Paid if current == "pending" => "confirmed",
        PaymentStatus::Paid => return None,
        PaymentStatus::Refunded | PaymentStatus::Cancelled => "cancelled",
        PaymentStatus::Pending | PaymentStatus::Failed | PaymentStatus::Expired
            if current == "confirmed" =>
        {
            "pending"
        }
        PaymentStatus::Pending | PaymentStatus::Failed | PaymentStatus::Expired => return None,
    };
    (wanted != current).then_some(wanted)
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PaymentStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL_STATUSES
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!("payment_status must be one of pending, paid, failed, cancelled, expired, refunded (got {s:?})")
            })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Transition {
    Apply(PaymentStatus),
    Unchanged,
    Refused(&'static str),
}

#[cfg(test)]
mod tests {
    use super::PaymentStatus::*;
    use super::*;

    #[test]
    fn paid_only_leaves_paid_by_refund_cancel_or_reversal() {
        assert_eq!(
            Paid.transition(Refunded, false),
            Transition::Apply(Refunded)
        );
        assert_eq!(
            Paid.transition(Cancelled, false),
            Transition::Apply(Cancelled)
        );
        assert_eq!(Paid.transition(Failed, true), Transition::Apply(Failed));
        assert!(matches!(
            Paid.transition(Failed, false),
            Transition::Refused(_)
        ));
        assert!(matches!(
            Paid.transition(Pending, true),
            Transition::Refused(_)
        ));
        assert!(matches!(
            Paid.transition(Expired, true),
            Transition::Refused(_)
        ));
        assert_eq!(Paid.transition(Paid, false), Transition::Unchanged);
    }

    #[test]
    fn unpaid_states_may_still_be_paid() {
        for from in [Pending, Failed, Expired] {
            assert_eq!(from.transition(Paid, false), Transition::Apply(Paid));
        }
        assert!(matches!(
            Cancelled.transition(Paid, false),
            Transition::Refused(_)
        ));
        assert!(matches!(
            Refunded.transition(Paid, true),
            Transition::Refused(_)
        ));
    }

    #[test]
    fn the_booking_status_follows_the_payment() {
        assert_eq!(booking_status(Paid, "pending"), Some("confirmed"));
        assert_eq!(booking_status(Paid, "completed"), None);
        for over in [Refunded, Cancelled] {
            for from in ["pending", "confirmed", "completed"] {
                assert_eq!(
                    booking_status(over, from),
                    Some("cancelled"),
                    "{over} {from}"
                );
            }
            assert_eq!(booking_status(over, "cancelled"), None);
        }
        assert_eq!(booking_status(Failed, "confirmed"), Some("pending"));
        for unpaid in [Pending, Failed, Expired] {
            assert_eq!(booking_status(unpaid, "pending"), None);
            assert_eq!(booking_status(unpaid, "cancelled"), None);
        }
    }

    #[test]
    fn statuses_round_trip_through_text() {
        for s in ALL_STATUSES {
            assert_eq!(s.as_str().parse::<PaymentStatus>(), Ok(s));
        }
        assert!("settled".parse::<PaymentStatus>().is_err());
    }
}
