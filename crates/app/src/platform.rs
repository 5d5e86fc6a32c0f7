//! On a platform's database adopted in place (`meetpool adopt`), the
//! platform's own code keeps writing its tables: it marks bookings paid,
//! cancels, refunds and reschedules them, adds and disables links. The
//! database turns each such write into a [`PlatformChange`]; this carries
//! them out with the same use cases as the API, so a booking the platform
//! marks paid gets a link within moments, and each change follows
//! meetpool's rules (forward-only payments, no overlap), however the
//! platform wrote it.
use std::future::Future;
use std::time::Duration;

use meetpool_store::{PlatformChange, PlatformProblem, ProblemReason, Wakeups};
use serde_json::json;
use tracing::{info, warn};

use crate::metrics::Alert;
use crate::views::ProblemView;
use crate::{App, AppError, LinkInput, RescheduleInput, Result};

/// How often changes are looked for without a notification: the only way
/// behind a transaction-mode pooler without a direct connection, and a
/// safety net beside LISTEN.
pub const PLATFORM_POLL: Duration = Duration::from_secs(2);

impl App {
    /// Carries out the platform's pending changes, oldest first; how many.
    pub async fn apply_platform_changes(&self) -> Result<usize> {
        let Some(platform) = self.store().platform() else {
            return Ok(0);
        };
        let mut done = 0;
        loop {
            let claimed = platform.claim(100).await?;
            if claimed.is_empty() {
                return Ok(done);
            }
            for c in claimed {
                if let Err(e) = self.apply_platform_change(&c.change).await {
                    // A change the rules refuse (a payment going backwards,
                    // a time that does not exist) is the platform's to fix;
                    // trying again would not help.
                    if matches!(
                        e,
                        AppError::Unavailable | AppError::Busy | AppError::Internal(_)
                    ) {
                        return Err(e);
                    }
                    warn!(change = ?c.change, error = %e, "a change the platform made was not carried out");
                    // A move meetpool cannot follow leaves the platform's
                    // row saying one time and meetpool holding another:
                    // listed and alerted until the platform writes it again.
                    if let (
                        PlatformChange::Schedule { booking, .. },
                        AppError::Invalid { code, message },
                    ) = (&c.change, &e)
                    {
                        let reason = match *code {
                            "invalid_slot" if message.contains("skip") => {
                                ProblemReason::NonexistentTime
                            }
                            "invalid_slot" => ProblemReason::UnreadableTime,
                            "unknown_session_type" => ProblemReason::UnknownDuration,
                            _ => ProblemReason::Refused,
                        };
                        platform
                            .note_problem(*booking, reason, &format!("not moved: {message}"))
                            .await?;
                    }
                }
                platform.done(c.id).await?;
                done += 1;
            }
        }
    }

    /// Whether this is a platform's database adopted in place, whose own
    /// writes [`App::run_platform_sync`] carries out.
    pub async fn adopted(&self) -> Result<bool> {
        Ok(match self.store().platform() {
            Some(platform) => platform.adopted().await?,
            None => false,
        })
    }

    /// The platform's rows meetpool could not take in, still open, oldest
    /// first (none but on an adopted database).
    pub async fn platform_problems(&self) -> Result<Vec<PlatformProblem>> {
        Ok(match self.store().platform() {
            Some(platform) => platform.problems().await?,
            None => Vec::new(),
        })
    }

    /// Raises an alert for each problem no replica has raised yet: a
    /// warning naming the platform's row and the reason, a count in
    /// `meetpool_alerts_total{kind="platform.row_rejected"}`, and the
    /// outbound event `platform.row_rejected`. How many.
    pub async fn alert_platform_problems(&self) -> Result<usize> {
        let problems = match self.store().platform() {
            Some(platform) => platform.claim_problems_to_alert().await?,
            None => return Ok(0),
        };
        for p in &problems {
            warn!(
                booking_id = %p.booking_id,
                order_id = p.order_id.as_deref().unwrap_or(""),
                reason = p.reason.as_str(),
                paid = p.paid,
                detail = %p.detail,
                "the platform wrote a booking meetpool cannot take in: it gets no link until the row is fixed"
            );
            self.counters.alert(Alert::PlatformRowRejected);
            let view = ProblemView::from(p);
            let key = format!(
                "platform.row_rejected:{}:{}:{}",
                view.row_id, view.reason, view.since
            );
            if let Err(e) = self
                .store()
                .outbox()
                .raise("platform.row_rejected", &key, &json!({ "problem": view }))
                .await
            {
                warn!(error = %e, "cannot raise platform.row_rejected");
            }
        }
        Ok(problems.len())
    }

    async fn apply_platform_change(&self, change: &PlatformChange) -> Result<()> {
        match change {
            PlatformChange::Payment { booking, state } => {
                self.set_payment_status(*booking, *state).await?;
            }
            PlatformChange::Schedule {
                booking,
                date,
                time,
                session_type,
            } => {
                self.reschedule(
                    *booking,
                    RescheduleInput {
                        booking_date: Some(date.to_string()),
                        booking_time: Some(time.trim().to_owned()),
                        session_type_id: session_type.map(|s| s.to_string()),
                        // The platform has made the move already: its
                        // consequences follow, wherever in time it went.
                        allow_past: true,
                    },
                )
                .await?;
            }
            PlatformChange::Backfill => {
                self.backfill_all().await?;
            }
            PlatformChange::Link { link, enabled } => {
                self.update_link(
                    *link,
                    LinkInput {
                        is_available: Some(*enabled),
                        ..LinkInput::default()
                    },
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Carries out the platform's changes as they come until `shutdown`:
    /// woken by the database's notifications where it can listen, and
    /// every [`PLATFORM_POLL`] in any case.
    pub async fn run_platform_sync(&self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut listener: Option<Box<dyn Wakeups>> = None;
        loop {
            if listener.is_none() {
                let listening = match self.store().platform() {
                    Some(platform) => platform.listener().await,
                    None => Ok(None),
                };
                listener = match listening {
                    Ok(l) => l,
                    Err(e) => {
                        warn!(error = %e, "cannot listen for the platform's changes; polling");
                        None
                    }
                };
            }
            match self.apply_platform_changes().await {
                Ok(0) => {}
                Ok(n) => info!(changes = n, "carried out the platform's changes"),
                Err(e) => warn!(error = %e, "carrying out the platform's changes failed; retrying"),
            }
            if let Err(e) = self.alert_platform_problems().await {
                warn!(error = %e, "reading the platform's rejected rows failed; retrying");
            }
            let woken = async {
                match listener.as_mut() {
                    Some(l) => l.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut shutdown => return,
                r = woken => if let Err(e) = r {
                    warn!(error = %e, "lost the platform's notifications; polling until they are back");
                    listener = None;
                },
                () = tokio::time::sleep(PLATFORM_POLL) => {}
            }
        }
    }
}
