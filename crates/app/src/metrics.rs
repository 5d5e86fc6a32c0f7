//! Counters the service exposes. Plain atomics: the few numbers an operator
//! alerts on, with no per-booking labels.
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Counters {
    pub assignments: AtomicU64,
    pub releases: AtomicU64,
    pub pool_exhausted: AtomicU64,
    pub notifications_applied: AtomicU64,
    pub notifications_duplicate: AtomicU64,
    pub notifications_rejected: AtomicU64,
}

pub static COUNTERS: Counters = Counters {
    assignments: AtomicU64::new(0),
    releases: AtomicU64::new(0),
    pool_exhausted: AtomicU64::new(0),
    notifications_applied: AtomicU64::new(0),
    notifications_duplicate: AtomicU64::new(0),
    notifications_rejected: AtomicU64::new(0),
};

pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The counters in Prometheus' text format.
pub fn render() -> String {
    let c = &COUNTERS;
    let rows = [
        (
            "meetpool_assignments_total",
            "Links assigned to bookings.",
            &c.assignments,
        ),
        (
            "meetpool_releases_total",
            "Links taken back from bookings.",
            &c.releases,
        ),
        (
            "meetpool_pool_exhausted_total",
            "Times a paid booking found no free link.",
            &c.pool_exhausted,
        ),
        (
            "meetpool_notifications_applied_total",
            "Payment notifications applied.",
            &c.notifications_applied,
        ),
        (
            "meetpool_notifications_duplicate_total",
            "Payment notifications received again.",
            &c.notifications_duplicate,
        ),
        (
            "meetpool_notifications_rejected_total",
            "Payment notifications refused (signature).",
            &c.notifications_rejected,
        ),
    ];
    let mut out = String::new();
    for (name, help, v) in rows {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
            v.load(Ordering::Relaxed)
        ));
    }
    out
}
