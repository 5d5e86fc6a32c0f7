//! The port of a platform's database adopted in place (`meetpool adopt`),
//! reached through [`crate::Store::platform`]. The platform's own code keeps
//! writing its tables; triggers turn each write into a [`PlatformChange`]
//! for the use cases to carry out, and keep the rows meetpool could not
//! take in as [`PlatformProblem`]s until the platform fixes them.
use async_trait::async_trait;
use jiff::Timestamp;
use meetpool_domain::{BookingId, LinkId, PaymentStatus, SessionTypeId};

use crate::Result;

/// The platform's side of an adopted database. Only a store that can be
/// adopted has one (PostgreSQL); whether this database was is
/// [`PlatformChanges::adopted`], and everything else reads as nothing to do
/// where it was not.
#[async_trait]
pub trait PlatformChanges: Send + Sync {
    /// Whether this is a platform's database adopted in place: the
    /// platform's own writes then arrive as [`PlatformChange`]s.
    async fn adopted(&self) -> Result<bool>;

    /// Claims the oldest changes the platform made, for a minute: a
    /// replica that dies while carrying them out leaves them to the next.
    /// A booking's change is not claimed while another replica holds an
    /// earlier one of the same booking, so each booking's changes are
    /// carried out in order.
    async fn claim(&self, limit: u32) -> Result<Vec<ClaimedChange>>;

    /// Forgets a change once carried out.
    async fn done(&self, id: i64) -> Result<()>;

    /// Wakes up when the platform changes something; `None` when changes
    /// can only be polled for (behind a transaction-mode pooler without a
    /// direct connection).
    async fn listener(&self) -> Result<Option<Box<dyn Wakeups>>>;

    /// The platform's rows meetpool could not take in, still open, oldest
    /// first.
    async fn problems(&self) -> Result<Vec<PlatformProblem>>;

    /// The open problems no replica has raised an alert for yet, each
    /// marked raised as it is returned: one replica alerts each once (again
    /// if its reason changes).
    async fn claim_problems_to_alert(&self) -> Result<Vec<PlatformProblem>>;

    /// Notes a problem with a platform row that meetpool holds but could
    /// not follow (a reschedule to a time that is no time): listed and
    /// alerted like a row it could not take in, until the platform writes
    /// the row again.
    async fn note_problem(
        &self,
        booking: BookingId,
        reason: ProblemReason,
        detail: &str,
    ) -> Result<()>;

    /// Why the platform's tables cannot be written as adoption left them (a
    /// table dropped or renamed, meetpool's triggers gone), or `None` when
    /// they can or the database was not adopted.
    async fn broken(&self) -> Result<Option<String>>;
}

/// Notifications of the platform's changes (PostgreSQL's LISTEN).
#[async_trait]
pub trait Wakeups: Send {
    /// Waits for the next notification.
    async fn next(&mut self) -> Result<()>;
}

/// A write of the platform's own code to an adopted database, to be carried
/// out as the same request through meetpool's API would be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlatformChange {
    /// Its payment_status or status now read as this state.
    Payment {
        booking: BookingId,
        state: PaymentStatus,
    },
    /// It moved the session (the time as the platform wrote it).
    Schedule {
        booking: BookingId,
        date: jiff::civil::Date,
        time: String,
        session_type: Option<SessionTypeId>,
    },
    /// Capacity appeared (a link added, a booking deleted).
    Backfill,
    /// It enabled or disabled a link.
    Link { link: LinkId, enabled: bool },
}

#[derive(Clone, Debug)]
pub struct ClaimedChange {
    pub id: i64,
    pub change: PlatformChange,
}

/// A row of an adopted platform's `bookings` that meetpool could not take
/// in (see [`ProblemReason`]): the platform's statement succeeded, the row
/// has no mirror, and so no link. Open until the platform fixes the row,
/// which then is adopted and the problem cleared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformProblem {
    /// The platform's row id (`bookings.id`).
    pub booking_id: BookingId,
    pub order_id: Option<String>,
    pub reason: ProblemReason,
    /// The database's own words, where they add something.
    pub detail: String,
    /// The platform's row reads as paid.
    pub paid: bool,
    /// Paid, and meetpool holds no booking for it: a customer who paid and
    /// has no link (counted in the unassigned queue).
    pub without_link: bool,
    /// When the problem was first seen (as it is now).
    pub since: Timestamp,
}

/// Why a platform row could not be taken in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProblemReason {
    /// Its `order_id` is another booking's: Midtrans reports payments by
    /// order id, so one would get the other's payment.
    OrderIdTaken,
    /// Its `booking_time` does not read as `HH:MM`.
    UnreadableTime,
    /// Its local time does not exist on that day (a daylight-saving gap).
    NonexistentTime,
    /// Its session type is unknown or has no duration.
    UnknownDuration,
    /// The database refused it for another reason (in `detail`).
    Refused,
}

impl ProblemReason {
    pub const ALL: [ProblemReason; 5] = [
        ProblemReason::OrderIdTaken,
        ProblemReason::UnreadableTime,
        ProblemReason::NonexistentTime,
        ProblemReason::UnknownDuration,
        ProblemReason::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProblemReason::OrderIdTaken => "order_id_taken",
            ProblemReason::UnreadableTime => "unreadable_time",
            ProblemReason::NonexistentTime => "nonexistent_time",
            ProblemReason::UnknownDuration => "unknown_duration",
            ProblemReason::Refused => "refused",
        }
    }

    pub fn parse(s: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .unwrap_or(ProblemReason::Refused)
    }
}
