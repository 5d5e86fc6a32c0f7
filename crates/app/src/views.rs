//! What bookings, links and the pool look like from outside (JSON for the
//! API and for `--json` in the CLI).
use meetpool_domain::Booking;
use meetpool_store::{Event, Link, PlatformProblem, PoolStatus, SessionType};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::App;

#[derive(Serialize, ToSchema)]
pub struct BookingView {
    #[schema(format = Uuid)]
    pub id: String,
    pub order_id: String,
    pub user_id: String,
    pub expert_id: String,
    #[schema(format = Uuid)]
    pub session_type_id: String,
    /// The local day in the platform's time zone.
    #[schema(format = Date)]
    pub booking_date: String,
    /// The local time (`HH:MM`) in the platform's time zone.
    #[schema(example = "14:00")]
    pub booking_time: String,
    pub price: i64,
    /// pending, paid, failed, cancelled, expired or refunded.
    #[schema(example = "paid")]
    pub payment_status: &'static str,
    pub status: String,
    /// The link the booking holds; null while it has none.
    #[schema(format = Uuid, required = true)]
    pub meeting_link_id: Option<String>,
    #[schema(required = true)]
    pub meeting_link: Option<String>,
    /// A checkout hold: until when the unpaid booking keeps its link (RFC
    /// 3339 UTC); null for a booking without one.
    #[schema(format = DateTime, required = true)]
    pub hold_expires_at: Option<String>,
    /// `{MEETPOOL_PUBLIC_URL}/j/{token}`: the booking's join address.
    pub join_url: String,
    /// The session's start, RFC 3339 UTC.
    #[schema(format = DateTime)]
    pub starts_at: String,
    #[schema(format = DateTime)]
    pub ends_at: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl App {
    pub fn booking_view(&self, b: &Booking) -> BookingView {
        BookingView {
            id: b.id.to_string(),
            order_id: b.order_id.clone(),
            user_id: b.user_id.clone(),
            expert_id: b.expert_id.clone(),
            session_type_id: b.session_type_id.to_string(),
            booking_date: b.booking_date.to_string(),
            booking_time: format!(
                "{:02}:{:02}",
                b.booking_time.hour(),
                b.booking_time.minute()
            ),
            price: b.price,
            payment_status: b.payment_status.as_str(),
            status: b.status.clone(),
            meeting_link_id: b.meeting_link_id.map(|l| l.to_string()),
            meeting_link: b.meeting_link.clone(),
            hold_expires_at: b
                .hold_expires_at
                .filter(|_| b.payment_status != meetpool_domain::PaymentStatus::Paid)
                .map(|t| t.to_string()),
            join_url: self.join_url(b),
            starts_at: b.window.start.to_string(),
            ends_at: b.window.end.to_string(),
            created_at: b.created_at.to_string(),
            updated_at: b.updated_at.to_string(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct LinkView {
    #[schema(format = Uuid)]
    pub id: String,
    /// The link in its canonical spelling.
    pub meeting_link: String,
    #[schema(required = true)]
    pub notes: Option<String>,
    /// Whether the pool gives it out.
    pub is_available: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&Link> for LinkView {
    fn from(l: &Link) -> Self {
        Self {
            id: l.id.to_string(),
            meeting_link: l.meeting_link.clone(),
            notes: l.notes.clone(),
            is_available: l.is_available,
            created_at: l.created_at.to_string(),
            updated_at: l.updated_at.to_string(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SessionTypeView {
    #[schema(format = Uuid)]
    pub id: String,
    pub name: String,
    /// Minutes.
    pub duration: i32,
    pub price: i64,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&SessionType> for SessionTypeView {
    fn from(s: &SessionType) -> Self {
        Self {
            id: s.id.to_string(),
            name: s.name.clone(),
            duration: s.duration,
            price: s.price,
            created_at: s.created_at.to_string(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct EventView {
    pub id: i64,
    #[schema(format = Uuid)]
    pub booking_id: String,
    /// created, payment, notification_ignored, assigned, released,
    /// manual_assigned, manual_released or pool_exhausted.
    pub kind: String,
    #[schema(format = Uuid, required = true)]
    pub meeting_link_id: Option<String>,
    /// What happened, in the words of its source (a payment notification's
    /// raw body, a release's reason).
    pub detail: Value,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&Event> for EventView {
    fn from(e: &Event) -> Self {
        Self {
            id: e.id,
            booking_id: e.booking_id.to_string(),
            kind: e.kind.clone(),
            meeting_link_id: e.meeting_link_id.map(|l| l.to_string()),
            detail: e.detail.clone(),
            created_at: e.created_at.to_string(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PoolStatusView {
    pub total_links: i64,
    pub available_links: i64,
    pub in_use_now: i64,
    pub unassigned_paid_bookings: i64,
}

impl From<&PoolStatus> for PoolStatusView {
    fn from(p: &PoolStatus) -> Self {
        Self {
            total_links: p.total_links,
            available_links: p.available_links,
            in_use_now: p.in_use_now,
            unassigned_paid_bookings: p.unassigned_paid_bookings,
        }
    }
}

/// One thing meetpool asked a meeting provider to do to a room, and what
/// became of it.
#[derive(Serialize, ToSchema)]
pub struct ProviderActionView {
    pub id: i64,
    /// `end` (a session's conference), `check` (the room still exists),
    /// `create` (a room for the pool), `attendance` (who attended).
    #[schema(example = "check")]
    pub action: &'static str,
    /// `google_meet` or `zoom`.
    #[schema(example = "google_meet")]
    pub provider: String,
    #[schema(format = Uuid)]
    pub link_id: Option<String>,
    #[schema(format = Uuid)]
    pub booking_id: Option<String>,
    /// `pending` (to be tried, or retried), `done` or `failed` (for good).
    #[schema(example = "done")]
    pub status: &'static str,
    /// What it found once done: `ended`, `no_conference`,
    /// `next_session_began`, `exists`, `gone`, `created`, `attended`,
    /// `no_show`, ...
    #[schema(required = true, example = "exists")]
    pub outcome: Option<String>,
    pub attempts: u32,
    #[schema(required = true)]
    pub last_error: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When it is next tried; null once done.
    #[schema(format = DateTime, required = true)]
    pub next_attempt_at: Option<String>,
    #[schema(format = DateTime, required = true)]
    pub done_at: Option<String>,
}

impl From<&meetpool_store::ProviderAction> for ProviderActionView {
    fn from(a: &meetpool_store::ProviderAction) -> Self {
        let status = match (a.done_at, a.outcome.as_deref()) {
            (None, _) => "pending",
            (Some(_), Some("failed")) => "failed",
            (Some(_), _) => "done",
        };
        Self {
            id: a.id,
            action: a.kind.as_str(),
            provider: a.provider.clone(),
            link_id: a.link_id.map(|l| l.to_string()),
            booking_id: a.booking_id.map(|b| b.to_string()),
            status,
            outcome: a.outcome.clone(),
            attempts: a.attempts,
            last_error: a.last_error.clone(),
            created_at: a.created_at.to_string(),
            next_attempt_at: a.done_at.is_none().then(|| a.due_at.to_string()),
            done_at: a.done_at.map(|t| t.to_string()),
        }
    }
}

/// A row of the adopted platform's `bookings` that meetpool could not take
/// in (`GET /api/platform/problems`, the event `platform.row_rejected`).
#[derive(Serialize, ToSchema)]
pub struct ProblemView {
    /// The platform's row id (`bookings.id`).
    pub row_id: String,
    pub order_id: Option<String>,
    /// `order_id_taken`, `unreadable_time`, `nonexistent_time`,
    /// `unknown_duration` or `refused`.
    pub reason: &'static str,
    /// What the reason means and how to fix the row.
    pub message: String,
    /// The database's own words, where they add something.
    pub detail: String,
    /// The platform's row reads as paid.
    pub paid: bool,
    /// Paid and without a link: counted in the unassigned queue.
    pub without_link: bool,
    /// Since when (RFC 3339 UTC).
    pub since: String,
}

impl From<&PlatformProblem> for ProblemView {
    fn from(p: &PlatformProblem) -> Self {
        use meetpool_store::ProblemReason as R;
        let message = match p.reason {
            R::OrderIdTaken => {
                "its order_id is another booking's; Midtrans reports payments by order id: give it its own"
            }
            R::UnreadableTime => "its booking_time does not read as HH:MM: write it as 24-hour HH:MM",
            R::NonexistentTime => {
                "its local time does not exist on that day (the clocks skip it): move it to a time that exists"
            }
            R::UnknownDuration => {
                "its session type is unknown or has no duration: set session_type_id to a known type"
            }
            R::Refused => "the database refused it (see detail): correct the value it names",
        };
        Self {
            row_id: p.booking_id.to_string(),
            order_id: p.order_id.clone(),
            reason: p.reason.as_str(),
            message: message.to_owned(),
            detail: p.detail.clone(),
            paid: p.paid,
            without_link: p.without_link,
            since: p.since.to_string(),
        }
    }
}
