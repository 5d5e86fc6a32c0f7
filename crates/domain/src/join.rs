//! What a participant's join URL does at a given moment. The raw pool link
//! is reusable by anyone who once saw it, so it is handed out only inside
//! the join window, and only for a booking that is paid and holds one.
use jiff::{SignedDuration, Timestamp};

use crate::booking::Booking;
use crate::payment::PaymentStatus;
use crate::room::is_safe_link;

/// The answer to a participant opening a booking's join URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Join {
    /// Inside the window: go to this link.
    Open(String),
    /// Too early: the window opens at this instant.
    NotYet { opens_at: Timestamp },
    /// Paid, inside the window, but no link yet (the unassigned queue).
    Preparing,
    /// Not paid yet.
    AwaitingPayment,
    /// Cancelled, refunded, expired or failed.
    Cancelled,
    /// The session is over.
    Ended,
}

/// The join window opens `opens_minutes` before the start and closes at the
/// end.
pub fn join(booking: &Booking, now: Timestamp, opens_minutes: u32) -> Join {
    let opens_at = booking.window.start - SignedDuration::from_mins(i64::from(opens_minutes));
    match booking.payment_status {
        PaymentStatus::Paid => {}
        PaymentStatus::Pending => return Join::AwaitingPayment,
        _ => return Join::Cancelled,
    }
    if now >= booking.window.end {
        Join::Ended
    } else if now < opens_at {
        Join::NotYet { opens_at }
    } else {
        match &booking.meeting_link {
            // Never anything but an https:// link naming a host, whatever a
            // database written by hand holds (`javascript:...`, say): such
            // a link is as good as none.
            Some(link) if booking.meeting_link_id.is_some() && is_safe_link(link) => {
                Join::Open(link.clone())
            }
            _ => Join::Preparing,
        }
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;
    use jiff::tz::TimeZone;

    use super::*;
    use crate::ids::{BookingId, LinkId, SessionTypeId};
    use crate::time::Window;

    fn booking(status: PaymentStatus, link: bool) -> Booking {
        let start = date(2030, 1, 2)
            .at(14, 0, 0, 0)
            .to_zoned(TimeZone::UTC)
            .unwrap()
            .timestamp();
        Booking {
            id: BookingId::new(),
            order_id: "O".into(),
            user_id: "u".into(),
            expert_id: "e".into(),
            session_type_id: SessionTypeId::new(),
            booking_date: date(2030, 1, 2),
            booking_time: jiff::civil::time(14, 0, 0, 0),
            price: 1,
            payment_status: status,
            status: "confirmed".into(),
            meeting_link_id: link.then(LinkId::new),
            meeting_link: link.then(|| "https://meet.google.com/abc-defg-hij".to_owned()),
            window: Window::new(start, start + SignedDuration::from_hours(1)),
            join_token: "t".into(),
            payment_transaction_id: None,
            reschedules: 0,
            hold_expires_at: None,
            created_at: start,
            updated_at: start,
        }
    }

    #[test]
    fn the_link_is_handed_out_only_inside_the_window() {
        let b = booking(PaymentStatus::Paid, true);
        let at = |m: i64| b.window.start + SignedDuration::from_mins(m);
        let opens_at = at(-15);
        assert_eq!(join(&b, at(-16), 15), Join::NotYet { opens_at });
        assert_eq!(
            join(&b, at(-15), 15),
            Join::Open(b.meeting_link.clone().unwrap())
        );
        assert_eq!(
            join(&b, at(59), 15),
            Join::Open(b.meeting_link.clone().unwrap())
        );
        assert_eq!(join(&b, at(60), 15), Join::Ended);
        assert_eq!(
            join(&booking(PaymentStatus::Paid, false), at(0), 15),
            Join::Preparing
        );
        assert_eq!(
            join(&booking(PaymentStatus::Pending, false), at(0), 15),
            Join::AwaitingPayment
        );
        for gone in [
            PaymentStatus::Cancelled,
            PaymentStatus::Refunded,
            PaymentStatus::Expired,
            PaymentStatus::Failed,
        ] {
            assert_eq!(join(&booking(gone, true), at(0), 15), Join::Cancelled);
        }
    }
}
