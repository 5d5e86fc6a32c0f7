//! Bookings as the rest of the program sees them.
use jiff::civil::{Date, Time};
use jiff::Timestamp;

use crate::ids::{BookingId, LinkId, SessionTypeId};
use crate::payment::PaymentStatus;
use crate::time::Window;
use crate::values::OrderId;

#[derive(Clone, Debug)]
pub struct Booking {
    pub id: BookingId,
    pub order_id: String,
    pub user_id: String,
    pub expert_id: String,
    pub session_type_id: SessionTypeId,
    pub booking_date: Date,
    pub booking_time: Time,
    pub price: i64,
    pub payment_status: PaymentStatus,
    pub status: String,
    pub meeting_link_id: Option<LinkId>,
    pub meeting_link: Option<String>,
    pub window: Window,
    pub join_token: String,
    pub payment_transaction_id: Option<String>,
    /// How many times the session was moved.
    pub reschedules: u32,
    /// Until when an unpaid booking keeps its link (a checkout hold).
    pub hold_expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Booking {
    /// A paid booking without a link: it waits in the unassigned queue.
    pub fn is_waiting(&self) -> bool {
        self.payment_status == PaymentStatus::Paid && self.meeting_link_id.is_none()
    }
}

/// A booking about to be stored, already validated.
#[derive(Clone, Debug)]
pub struct NewBooking {
    pub id: BookingId,
    pub order_id: OrderId,
    pub user_id: String,
    pub expert_id: String,
    pub session_type_id: SessionTypeId,
    pub booking_date: Date,
    pub booking_time: Time,
    pub price: i64,
    pub payment_status: PaymentStatus,
    pub status: String,
    pub window: Window,
    pub join_token: String,
    /// A checkout hold: the unpaid booking keeps a link until then.
    pub hold_expires_at: Option<Timestamp>,
}

/// What happened to a booking, for its audit trail.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EventKind {
    Created,
    /// A payment notification (or an operator's payment change) was applied.
    Payment,
    /// A notification that the state machine does not allow to apply.
    NotificationIgnored,
    Assigned,
    Released,
    ManualAssigned,
    ManualReleased,
    /// No link was free when the booking needed one.
    PoolExhausted,
    /// The session moved to another time or session type.
    Rescheduled,
    /// The booking moved from one link to another.
    LinkChanged,
    /// A settlement whose amount is not the booking's price: not applied.
    AmountMismatch,
    /// Money taken for a booking already cancelled: not applied.
    PaidAfterCancel,
    /// Something meetpool did to the session's room at its provider
    /// (ended its conference, say).
    ProviderAction,
    /// Who attended the session, read from its conference record.
    Attendance,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Payment => "payment",
            Self::NotificationIgnored => "notification_ignored",
            Self::Assigned => "assigned",
            Self::Released => "released",
            Self::ManualAssigned => "manual_assigned",
            Self::ManualReleased => "manual_released",
            Self::PoolExhausted => "pool_exhausted",
            Self::Rescheduled => "rescheduled",
            Self::LinkChanged => "link_changed",
            Self::AmountMismatch => "amount_mismatch",
            Self::PaidAfterCancel => "paid_after_cancel",
            Self::ProviderAction => "provider_action",
            Self::Attendance => "attendance",
        }
    }
}
