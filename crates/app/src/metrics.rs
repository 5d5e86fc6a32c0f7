//! Counters the service exposes. Plain atomics: the few numbers an operator
//! alerts on, with no per-booking labels. A transaction's counts are added
//! once it commits, by its [`crate::work::Report`]s.
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use meetpool_store::PoolStatus;

#[derive(Clone, Copy, Debug)]
pub(crate) enum Counter {
    Assignments,
    Releases,
    PoolExhausted,
    NotificationsApplied,
    NotificationsDuplicate,
    NotificationsRejected,
    NotificationsQueued,
    SettlementGroups,
}

/// Conditions an operator must look at, each counted under its own `kind`
/// (`meetpool_alerts_total{kind=...}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Alert {
    /// A booking that needed a link found none free.
    PoolExhausted,
    /// A settlement did not pay the booking's price.
    AmountMismatch,
    /// Money was taken for a booking already cancelled.
    PaidAfterCancel,
    /// A pooled room its provider no longer knows: the link was disabled.
    RoomGone,
    /// An adopted platform wrote a booking meetpool cannot take in.
    PlatformRowRejected,
}

impl Alert {
    const ALL: [Alert; 5] = [
        Alert::PoolExhausted,
        Alert::AmountMismatch,
        Alert::PaidAfterCancel,
        Alert::RoomGone,
        Alert::PlatformRowRejected,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Alert::PoolExhausted => "pool.exhausted",
            Alert::AmountMismatch => "payment.amount_mismatch",
            Alert::PaidAfterCancel => "payment.after_cancel",
            Alert::RoomGone => "room.gone",
            Alert::PlatformRowRejected => "platform.row_rejected",
        }
    }
}

/// What came of asking Midtrans about a pending payment
/// (`meetpool_reconcile_checks_total{outcome=...}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CheckOutcome {
    /// The answer changed the booking (paid, failed, expired...).
    Applied,
    /// The answer changed nothing (still pending, already applied, refused
    /// as a notification would be).
    Unchanged,
    /// Midtrans knows no transaction for the order yet: asked again later.
    NotFound,
    /// No answer, or not one Midtrans documents: asked again later.
    Failed,
}

impl CheckOutcome {
    pub(crate) const ALL: [CheckOutcome; 4] = [
        CheckOutcome::Applied,
        CheckOutcome::Unchanged,
        CheckOutcome::NotFound,
        CheckOutcome::Failed,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CheckOutcome::Applied => "applied",
            CheckOutcome::Unchanged => "unchanged",
            CheckOutcome::NotFound => "not_found",
            CheckOutcome::Failed => "failed",
        }
    }
}

#[derive(Default)]
pub struct Counters {
    /// Provider actions by provider, action and outcome: a handful of
    /// each, so a map behind a lock is plenty.
    provider_actions:
        std::sync::Mutex<std::collections::BTreeMap<(&'static str, &'static str, String), u64>>,
    alerts: [AtomicU64; Alert::ALL.len()],
    checks: [AtomicU64; CheckOutcome::ALL.len()],
    assignments: AtomicU64,
    releases: AtomicU64,
    pool_exhausted: AtomicU64,
    notifications_applied: AtomicU64,
    notifications_duplicate: AtomicU64,
    notifications_rejected: AtomicU64,
    notifications_queued: AtomicU64,
    settlement_groups: AtomicU64,
}

impl Counters {
    fn get(&self, c: Counter) -> &AtomicU64 {
        match c {
            Counter::Assignments => &self.assignments,
            Counter::Releases => &self.releases,
            Counter::PoolExhausted => &self.pool_exhausted,
            Counter::NotificationsApplied => &self.notifications_applied,
            Counter::NotificationsDuplicate => &self.notifications_duplicate,
            Counter::NotificationsRejected => &self.notifications_rejected,
            Counter::NotificationsQueued => &self.notifications_queued,
            Counter::SettlementGroups => &self.settlement_groups,
        }
    }

    pub(crate) fn inc(&self, c: Counter) {
        self.get(c).fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one attempt of a provider action and what became of it.
    pub(crate) fn provider_action(
        &self,
        provider: &'static str,
        action: &'static str,
        outcome: &str,
    ) {
        let mut map = self
            .provider_actions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *map.entry((provider, action, outcome.to_owned()))
            .or_default() += 1;
    }

    pub(crate) fn check(&self, o: CheckOutcome) {
        let i = CheckOutcome::ALL
            .iter()
            .position(|x| *x == o)
            .expect("listed");
        self.checks[i].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn alert(&self, a: Alert) {
        let i = Alert::ALL.iter().position(|x| *x == a).expect("listed");
        self.alerts[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The counters in Prometheus' text format.
    pub fn render(&self) -> String {
        let rows = [
            (
                "meetpool_assignments_total",
                "Links assigned to bookings.",
                Counter::Assignments,
            ),
            (
                "meetpool_releases_total",
                "Links taken back from bookings.",
                Counter::Releases,
            ),
            (
                "meetpool_pool_exhausted_total",
                "Times a paid booking found no free link.",
                Counter::PoolExhausted,
            ),
            (
                "meetpool_notifications_applied_total",
                "Payment notifications applied.",
                Counter::NotificationsApplied,
            ),
            (
                "meetpool_notifications_duplicate_total",
                "Payment notifications received again.",
                Counter::NotificationsDuplicate,
            ),
            (
                "meetpool_notifications_rejected_total",
                "Payment notifications refused (signature).",
                Counter::NotificationsRejected,
            ),
            (
                "meetpool_notifications_queued_total",
                "Verified payment notifications queued for settlement.",
                Counter::NotificationsQueued,
            ),
            (
                "meetpool_settlement_groups_total",
                "Transactions that settled queued notifications: fewer than the notifications when they share one.",
                Counter::SettlementGroups,
            ),
        ];
        let mut out = String::new();
        for (name, help, c) in rows {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                self.get(c).load(Ordering::Relaxed)
            ));
        }
        out.push_str(
            "# HELP meetpool_alerts_total Conditions an operator must look at, by kind.\n\
             # TYPE meetpool_alerts_total counter\n",
        );
        for (alert, n) in Alert::ALL.iter().zip(&self.alerts) {
            out.push_str(&format!(
                "meetpool_alerts_total{{kind=\"{}\"}} {}\n",
                alert.as_str(),
                n.load(Ordering::Relaxed)
            ));
        }
        let actions = self
            .provider_actions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        out.push_str(
            "# HELP meetpool_provider_actions_total Attempts of what meetpool asked meeting providers to do, by outcome.\n\
             # TYPE meetpool_provider_actions_total counter\n",
        );
        for ((provider, action, outcome), n) in actions.iter() {
            out.push_str(&format!(
                "meetpool_provider_actions_total{{provider=\"{provider}\",action=\"{action}\",outcome=\"{outcome}\"}} {n}\n"
            ));
        }
        out.push_str(
            "# HELP meetpool_reconcile_checks_total Pending payments asked about at Midtrans (reconciliation), by outcome.\n\
             # TYPE meetpool_reconcile_checks_total counter\n",
        );
        for (outcome, n) in CheckOutcome::ALL.iter().zip(&self.checks) {
            out.push_str(&format!(
                "meetpool_reconcile_checks_total{{outcome=\"{}\"}} {}\n",
                outcome.as_str(),
                n.load(Ordering::Relaxed)
            ));
        }
        out
    }
}

/// The gauges read at scrape time: the pool's links by state and its queue
/// (absent when the database does not answer: no number beats a wrong one),
/// and the database connections checked out.
pub(crate) fn render_gauges(status: Option<&PoolStatus>, connections_in_use: u32) -> String {
    let mut out = String::new();
    if let Some(s) = status {
        let _ = write!(
            out,
            "# HELP meetpool_links Meeting links in the pool, by state.\n\
             # TYPE meetpool_links gauge\n\
             meetpool_links{{state=\"enabled\"}} {}\n\
             meetpool_links{{state=\"disabled\"}} {}\n\
             # HELP meetpool_unassigned_paid_bookings Paid bookings waiting for a link (the queue).\n\
             # TYPE meetpool_unassigned_paid_bookings gauge\n\
             meetpool_unassigned_paid_bookings {}\n",
            s.available_links,
            s.total_links - s.available_links,
            s.unassigned_paid_bookings,
        );
    }
    let _ = write!(
        out,
        "# HELP meetpool_db_connections_in_use Database connections checked out of the pool.\n\
         # TYPE meetpool_db_connections_in_use gauge\n\
         meetpool_db_connections_in_use {connections_in_use}\n"
    );
    out
}

/// The adopted platform's rows meetpool could not take in, still open, by
/// reason (every reason listed, 0 included, so an alert rule sees it fall).
pub(crate) fn render_problems(problems: &[meetpool_store::PlatformProblem]) -> String {
    let mut out = String::from(
        "# HELP meetpool_platform_rows_rejected Rows of the adopted platform's bookings that meetpool could not take in, still open, by reason.\n\
         # TYPE meetpool_platform_rows_rejected gauge\n",
    );
    for reason in meetpool_store::ProblemReason::ALL {
        let n = problems.iter().filter(|p| p.reason == reason).count();
        let _ = writeln!(
            out,
            "meetpool_platform_rows_rejected{{reason=\"{}\"}} {n}",
            reason.as_str()
        );
    }
    out
}
