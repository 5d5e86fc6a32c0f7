//! The port of the provider actions' queue (migration 0018): what meetpool
//! asks a meeting provider to do to a pooled room, queued durably and
//! carried out after commit by whichever replica claims it.
use async_trait::async_trait;
use jiff::Timestamp;
use meetpool_domain::{BookingId, LinkId};

use crate::Result;

/// What an action asks of the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActionKind {
    /// End the conference a session left in its room.
    End,
    /// Check that the room still exists.
    Check,
    /// Create a room for the pool.
    Create,
    /// Read who attended a session that ended.
    Attendance,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::End => "end",
            Self::Check => "check",
            Self::Create => "create",
            Self::Attendance => "attendance",
        }
    }
}

impl std::str::FromStr for ActionKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "end" => Ok(Self::End),
            "check" => Ok(Self::Check),
            "create" => Ok(Self::Create),
            "attendance" => Ok(Self::Attendance),
            other => Err(format!("unknown provider action {other:?}")),
        }
    }
}

/// An action to queue.
#[derive(Clone, Debug)]
pub struct NewAction {
    pub kind: ActionKind,
    /// `google_meet` or `zoom`.
    pub provider: String,
    pub link: Option<LinkId>,
    pub booking: Option<BookingId>,
    /// At most one action with this key is in flight (not done).
    pub dedup_key: String,
    pub due_at: Timestamp,
}

/// One queued or done action.
#[derive(Clone, Debug)]
pub struct ProviderAction {
    pub id: i64,
    pub kind: ActionKind,
    pub provider: String,
    pub link_id: Option<LinkId>,
    pub booking_id: Option<BookingId>,
    pub due_at: Timestamp,
    /// Attempts made; in a claim, counting the one about to be made.
    pub attempts: u32,
    pub last_error: Option<String>,
    pub outcome: Option<String>,
    /// What an earlier attempt kept for the next (JSON).
    pub detail: serde_json::Value,
    pub done_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// What became of one attempt.
#[derive(Clone, Debug)]
pub enum ActionResult {
    /// Done for good, with what happened (`ended`, `gone`, ...), and the
    /// link it concerns when the attempt found out (a created room).
    Done {
        outcome: String,
        link: Option<LinkId>,
        at: Timestamp,
    },
    /// Failed; tried again from `next`, keeping `detail` for that attempt.
    RetryAt {
        error: String,
        next: Timestamp,
        detail: serde_json::Value,
    },
    /// Failed, and not worth another attempt.
    GaveUp { error: String, at: Timestamp },
}

/// A session that ended on a pooled link.
#[derive(Clone, Debug)]
pub struct EndedSession {
    pub booking: BookingId,
    pub link: LinkId,
    pub meeting_link: String,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
}

#[async_trait]
pub trait ProviderActions: Send + Sync {
    /// Sessions of paid bookings holding a link that matches one of
    /// `links` (SQL `LIKE` patterns) that ended at or after `from` and
    /// before `to`, for which no end was queued yet, oldest first.
    async fn ended_sessions(
        &self,
        from: Timestamp,
        to: Timestamp,
        links: &[&str],
        limit: u32,
    ) -> Result<Vec<EndedSession>>;

    /// Queues `action` unless one with its key is in flight, or, for an
    /// end, unless its booking had one already; whether it was queued.
    async fn enqueue(&self, action: &NewAction) -> Result<bool>;

    /// Claims up to `limit` actions due at `now` (of `kind` only, and for
    /// `provider` only, when given), soonest due first, until
    /// `lease_until`: no other claim takes them before their outcome is
    /// recorded or the lease runs out.
    async fn claim(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
        kind: Option<ActionKind>,
        provider: Option<&str>,
    ) -> Result<Vec<ProviderAction>>;

    /// Records a claimed action's attempt (by the claim's attempt count:
    /// a claim whose lease ran out and was taken again records nothing).
    async fn record(&self, id: i64, attempts: u32, result: &ActionResult) -> Result<()>;

    /// Actions of a link or a booking (all when both are `None`), newest
    /// first.
    async fn actions(
        &self,
        link: Option<LinkId>,
        booking: Option<BookingId>,
        limit: u32,
    ) -> Result<Vec<ProviderAction>>;

    /// Rooms meetpool created, or is creating: creates done as `created`
    /// and creates not done yet.
    async fn rooms_created(&self) -> Result<u32>;

    /// Whether a session on `link` other than `booking`'s, starting at or
    /// after `from`, has begun by `now`.
    async fn next_session_began(
        &self,
        link: LinkId,
        booking: BookingId,
        from: Timestamp,
        now: Timestamp,
    ) -> Result<bool>;

    /// For each link checked at least once: when its last check was done
    /// and what it found.
    async fn last_checks(&self) -> Result<Vec<(LinkId, Timestamp, String)>>;
}
