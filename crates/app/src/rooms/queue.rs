//! The provider actions: queued by scans, carried out after commit.
//!
//! Each round, a replica queues what has come due — the ends of sessions
//! that ended more than the grace ago (read from the bookings, so that the
//! payment's own write path does not change), the checks of rooms not
//! checked for a period, a room to create while paid bookings wait — and
//! then claims the due actions and carries them out, each with its own
//! retries: one provider's failures delay only its own actions. The queue
//! is in the database, so a restart, or a replica that dies mid-call,
//! loses nothing (its lease runs out and another claim takes the action).
//! What each action does is in `actions`.
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use futures_util::future::join_all;
use jiff::{SignedDuration, Timestamp};
use meetpool_domain::LinkId;
use meetpool_store::{ActionKind, ActionResult, Link, NewAction, ProviderAction};
use serde_json::json;
use tokio::sync::Notify;
use tracing::{info, warn};

use super::oauth::CallError;
use super::{room_of, Provider};
use crate::{App, AppError, Result};

/// Actions claimed at a time (carried out concurrently).
const BATCH: u32 = 32;
/// How far back ended sessions are looked for: a conference left over
/// from longer ago is not worth ending, and could be another one's.
const LOOKBACK: SignedDuration = SignedDuration::from_hours(24);
/// Ended sessions queued per round at most (the rest at the next).
const ENDS_PER_ROUND: u32 = 500;
/// What the scans look for in a pooled link, per provider (SQL `LIKE`).
const MEET_LINKS: &str = "https://meet.google.com/%";
const ZOOM_LINKS: &str = "https://%zoom.us/j/%";

/// A pooled room's last check, for `meetpool links check`.
#[derive(Clone, Debug)]
pub struct RoomCheck {
    pub link: Link,
    pub provider: Provider,
    /// When it was last checked and what that found (`exists`, `gone`,
    /// `failed`); `None` when never.
    pub last: Option<(Timestamp, String)>,
}

/// Why an attempt did not finish.
pub(super) struct Failure {
    pub(super) error: CallError,
    /// What the next attempt needs (a room created but not yet pooled).
    pub(super) detail: Option<serde_json::Value>,
}

impl From<CallError> for Failure {
    fn from(error: CallError) -> Self {
        Self {
            error,
            detail: None,
        }
    }
}

impl From<AppError> for Failure {
    fn from(e: AppError) -> Self {
        Self {
            error: CallError::Later {
                error: format!("meetpool's own database: {e}"),
                after: None,
            },
            detail: None,
        }
    }
}

impl App {
    /// Carries out what meetpool does to rooms at their providers until
    /// `shutdown` completes: the scans queue what has come due now, after
    /// each wake-up (a booking finding the pool exhausted) and every poll;
    /// each configured provider's actions are carried out by a loop of
    /// their own, so that a provider that hangs holds up only its own.
    /// Without a configured provider it returns at once. An action under
    /// way when `shutdown` completes is dropped; its lease lets it go again
    /// later.
    pub async fn run_rooms(&self, shutdown: impl Future<Output = ()>) {
        if !self.config().rooms.any() {
            return;
        }
        let queued = Notify::new();
        let scans = async {
            loop {
                self.queue_due().await;
                queued.notify_waiters();
                tokio::select! {
                    () = self.rooms.wake.notified() => {}
                    () = tokio::time::sleep(self.config().rooms.poll) => {}
                }
            }
        };
        let providers = [Provider::GoogleMeet, Provider::Zoom]
            .into_iter()
            .filter(|p| self.config().rooms.has(*p))
            .map(|p| {
                let queued = &queued;
                async move {
                    loop {
                        self.carry_out_due(None, Some(p)).await;
                        tokio::select! {
                            () = queued.notified() => {}
                            () = tokio::time::sleep(self.config().rooms.poll) => {}
                        }
                    }
                }
            });
        tokio::select! {
            () = shutdown => {}
            () = scans => {}
            _ = join_all(providers) => {}
        }
    }

    /// One round: queue what has come due, then carry out every due action.
    pub async fn rooms_round(&self) {
        self.queue_due().await;
        self.carry_out_due(None, None).await;
    }

    /// Queues what has come due: ends of sessions, checks of rooms, a room
    /// to create.
    async fn queue_due(&self) {
        if let Err(e) = self.queue_ends().await {
            warn!(error = %e, "cannot look for ended sessions; trying again at the next round");
        }
        if let Err(e) = self.queue_checks(false).await {
            warn!(error = %e, "cannot look for rooms to check; trying again at the next round");
        }
        if let Err(e) = self.queue_growth().await {
            warn!(error = %e, "cannot look for bookings waiting for a room; trying again at the next round");
        }
    }

    /// Checks every enabled room of a configured provider now (`meetpool
    /// links check`): a room the provider no longer knows is disabled and
    /// its sessions move. Each room and its last check.
    pub async fn check_rooms(&self) -> Result<Vec<RoomCheck>> {
        if !self.config().rooms.any() {
            return Err(AppError::NotConfigured(
                "no meeting provider is configured: set MEETPOOL_GOOGLE_* or MEETPOOL_ZOOM_*"
                    .to_owned(),
            ));
        }
        self.queue_checks(true).await?;
        // Another replica's runner may take some of these checks: they are
        // waited for (as long as a claim's lease at most), so that what is
        // reported is what was found now.
        let deadline = tokio::time::Instant::now() + self.lease();
        loop {
            self.carry_out_due(Some(ActionKind::Check), None).await;
            let pending = self.checks_in_flight().await?;
            if pending == 0 || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let last: HashMap<LinkId, (Timestamp, String)> = self
            .store()
            .provider_actions()
            .last_checks()
            .await?
            .into_iter()
            .map(|(link, at, outcome)| (link, (at, outcome)))
            .collect();
        Ok(self
            .store()
            .links()
            .await?
            .into_iter()
            .filter_map(|link| {
                let (provider, _) = room_of(&link.meeting_link)?;
                self.config().rooms.has(provider).then(|| RoomCheck {
                    last: last.get(&link.id).cloned(),
                    link,
                    provider,
                })
            })
            .collect())
    }

    /// Checks of enabled rooms not done yet.
    async fn checks_in_flight(&self) -> Result<usize> {
        let mut pending = 0;
        for link in self
            .store()
            .links()
            .await?
            .iter()
            .filter(|l| l.is_available)
        {
            pending += self
                .store()
                .provider_actions()
                .actions(Some(link.id), None, 10)
                .await?
                .iter()
                .filter(|a| a.kind == ActionKind::Check && a.done_at.is_none())
                .count();
        }
        Ok(pending)
    }

    /// How long a claim holds its actions: each attempt makes at most a
    /// token call and two API calls, each within the timeout; and a margin
    /// for the replicas' clocks.
    fn lease(&self) -> Duration {
        let timeout = self.config().rooms.timeout;
        timeout * 3 + timeout.min(Duration::from_secs(5))
    }

    /// Each link's last check at its provider: when, and what it found.
    pub async fn last_room_checks(&self) -> Result<HashMap<LinkId, (Timestamp, String)>> {
        Ok(self
            .store()
            .provider_actions()
            .last_checks()
            .await?
            .into_iter()
            .map(|(link, at, outcome)| (link, (at, outcome)))
            .collect())
    }

    /// What meetpool asked the provider to do to a link's room (the
    /// link's trail there), newest first: `limit` of them (100 when
    /// absent, at most 1000).
    pub async fn link_provider_actions(
        &self,
        link: LinkId,
        limit: Option<u32>,
    ) -> Result<Vec<crate::views::ProviderActionView>> {
        let limit = crate::status::checked_limit(limit, 100, 1000)?;
        self.link(link).await?;
        Ok(self
            .provider_actions(Some(link), None, limit)
            .await?
            .iter()
            .map(Into::into)
            .collect())
    }

    /// The provider actions of a link or a booking, newest first.
    pub async fn provider_actions(
        &self,
        link: Option<LinkId>,
        booking: Option<meetpool_domain::BookingId>,
        limit: u32,
    ) -> Result<Vec<ProviderAction>> {
        Ok(self
            .store()
            .provider_actions()
            .actions(link, booking, limit)
            .await?)
    }

    /// Queues the end of each session on a configured provider's room
    /// that ended more than the grace ago (and less than a day), once per
    /// session.
    async fn queue_ends(&self) -> Result<()> {
        let rooms = &self.config().rooms;
        let Some(grace) = rooms.end_grace else {
            return Ok(());
        };
        let patterns: Vec<&str> = [
            (Provider::GoogleMeet, MEET_LINKS),
            (Provider::Zoom, ZOOM_LINKS),
        ]
        .into_iter()
        .filter(|(p, _)| rooms.has(*p))
        .map(|(_, like)| like)
        .collect();
        let now = Timestamp::now();
        let to = now - SignedDuration::try_from(grace).unwrap_or(SignedDuration::MAX);
        let sessions = self
            .store()
            .provider_actions()
            .ended_sessions(to - LOOKBACK, to, &patterns, ENDS_PER_ROUND)
            .await?;
        for session in sessions {
            let Some((provider, _)) = room_of(&session.meeting_link) else {
                continue;
            };
            if !rooms.has(provider) {
                continue;
            }
            self.store()
                .provider_actions()
                .enqueue(&NewAction {
                    kind: ActionKind::End,
                    provider: provider.as_str().to_owned(),
                    link: Some(session.link),
                    booking: Some(session.booking),
                    dedup_key: format!("end:{}", session.booking),
                    due_at: now,
                })
                .await?;
        }
        Ok(())
    }

    /// Queues a check of each enabled room of a configured provider not
    /// checked for the period (every one when `now`).
    async fn queue_checks(&self, all: bool) -> Result<()> {
        let rooms = &self.config().rooms;
        let every = match (all, rooms.check_every) {
            (true, _) => Duration::ZERO,
            (false, Some(every)) => every,
            (false, None) => return Ok(()),
        };
        let now = Timestamp::now();
        let every = SignedDuration::try_from(every).unwrap_or(SignedDuration::MAX);
        let last: HashMap<LinkId, Timestamp> = self
            .store()
            .provider_actions()
            .last_checks()
            .await?
            .into_iter()
            .map(|(link, at, _)| (link, at))
            .collect();
        for link in self.store().links().await? {
            if !link.is_available {
                continue;
            }
            let Some((provider, _)) = room_of(&link.meeting_link) else {
                continue;
            };
            let due = last
                .get(&link.id)
                .is_none_or(|at| at.checked_add(every).is_ok_and(|next| next <= now));
            if !rooms.has(provider) || !due {
                continue;
            }
            self.store()
                .provider_actions()
                .enqueue(&NewAction {
                    kind: ActionKind::Check,
                    provider: provider.as_str().to_owned(),
                    link: Some(link.id),
                    booking: None,
                    dedup_key: format!("check:{}", link.id),
                    due_at: now,
                })
                .await?;
        }
        Ok(())
    }

    /// Queues the creation of a room while paid bookings wait for a link,
    /// one at a time, as long as the rooms meetpool created, or is
    /// creating, stay under the cap.
    async fn queue_growth(&self) -> Result<()> {
        let Some(provider) = self.config().rooms.grow_at() else {
            return Ok(());
        };
        if self.store().waiting(1).await?.is_empty() {
            return Ok(());
        }
        let created = self.store().provider_actions().rooms_created().await?;
        if created >= self.config().rooms.grow_max {
            return Ok(());
        }
        let queued = self
            .store()
            .provider_actions()
            .enqueue(&NewAction {
                kind: ActionKind::Create,
                provider: provider.as_str().to_owned(),
                link: None,
                booking: None,
                dedup_key: "create".to_owned(),
                due_at: Timestamp::now(),
            })
            .await?;
        if queued {
            info!(
                provider = provider.as_str(),
                created,
                cap = self.config().rooms.grow_max,
                "paid bookings wait for a link: a room will be created"
            );
        }
        Ok(())
    }

    /// Claims and carries out due actions (of `kind` only, and for
    /// `provider` only, when given) until a claim finds less than a batch.
    async fn carry_out_due(&self, kind: Option<ActionKind>, provider: Option<Provider>) {
        loop {
            let now = Timestamp::now();
            let lease = now + SignedDuration::try_from(self.lease()).unwrap_or(SignedDuration::MAX);
            let claimed = match self
                .store()
                .provider_actions()
                .claim(now, lease, BATCH, kind, provider.map(Provider::as_str))
                .await
            {
                Ok(claimed) => claimed,
                Err(e) => {
                    warn!(error = %e, "cannot read the provider actions; trying again shortly");
                    return;
                }
            };
            let full = claimed.len() >= BATCH as usize;
            join_all(claimed.iter().map(|a| self.attempt(a))).await;
            if !full {
                return;
            }
        }
    }

    /// One attempt at `action`, recorded.
    async fn attempt(&self, action: &ProviderAction) {
        let provider: Provider = match action.provider.parse() {
            Ok(p) => p,
            Err(e) => {
                self.finish(
                    action,
                    ActionResult::GaveUp {
                        error: e,
                        at: Timestamp::now(),
                    },
                )
                .await;
                return;
            }
        };
        let outcome = match action.kind {
            ActionKind::End => self.end_conference(provider, action).await,
            ActionKind::Check => self.check_room(provider, action).await,
            ActionKind::Create => self.create_room(provider, action).await,
            ActionKind::Attendance => self.read_attendance(provider, action).await,
        };
        let now = Timestamp::now();
        let result = match outcome {
            Ok((outcome, link)) => ActionResult::Done {
                outcome: outcome.to_owned(),
                link,
                at: now,
            },
            Err(Failure {
                error: CallError::Refused(error),
                ..
            }) => ActionResult::GaveUp { error, at: now },
            Err(Failure {
                error: CallError::Later { error, after },
                detail,
            }) => match self
                .config()
                .rooms
                .retry
                .get(action.attempts.saturating_sub(1) as usize)
            {
                Some(wait) => ActionResult::RetryAt {
                    error,
                    next: now
                        + SignedDuration::try_from(after.unwrap_or(*wait))
                            .unwrap_or(SignedDuration::MAX),
                    detail: detail.unwrap_or_else(|| action.detail.clone()),
                },
                None => ActionResult::GaveUp { error, at: now },
            },
        };
        self.finish(action, result).await;
    }

    /// Records an attempt's result, counts it, and puts a finished end on
    /// its booking's trail.
    async fn finish(&self, action: &ProviderAction, result: ActionResult) {
        let provider = action
            .provider
            .parse::<Provider>()
            .map(Provider::as_str)
            .unwrap_or("unknown");
        let kind = action.kind.as_str();
        let label = match &result {
            ActionResult::Done { outcome, .. } => outcome.clone(),
            ActionResult::RetryAt { error, next, .. } => {
                info!(action_id = action.id, provider, action = kind, attempt = action.attempts, error, next_attempt_at = %next, "provider action failed; it will be retried");
                "retried".to_owned()
            }
            ActionResult::GaveUp { error, .. } => {
                warn!(
                    action_id = action.id,
                    provider,
                    action = kind,
                    attempts = action.attempts,
                    error,
                    "provider action failed for good"
                );
                "failed".to_owned()
            }
        };
        if let Err(e) = self
            .store()
            .provider_actions()
            .record(action.id, action.attempts, &result)
            .await
        {
            warn!(action_id = action.id, error = %e, "cannot record a provider action; it will be tried again");
            return;
        }
        self.counters.provider_action(provider, kind, &label);
        let finished = match &result {
            ActionResult::Done { outcome, .. } => Some(json!({ "outcome": outcome })),
            ActionResult::GaveUp { error, .. } => {
                Some(json!({ "outcome": "failed", "error": error }))
            }
            ActionResult::RetryAt { .. } => None,
        };
        if let ActionResult::Done { outcome, .. } = &result {
            self.after_end(action, outcome).await;
        }
        if action.kind == ActionKind::Attendance && matches!(result, ActionResult::Done { .. }) {
            // Its own record on the trail says it all.
            return;
        }
        if let (Some(booking), Some(mut detail)) = (action.booking_id, finished) {
            detail["provider"] = json!(provider);
            detail["action"] = json!(kind);
            if let Err(e) = self
                .record_on_booking(booking, action.link_id, detail)
                .await
            {
                warn!(booking_id = %booking, error = %e, "cannot put a provider action on the booking's trail");
            }
        }
    }
}
