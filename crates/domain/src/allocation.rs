//! Which link a booking gets.
//!
//! The storage layer hands over every enabled link with the busy windows of
//! the sessions it holds near the new one; this module picks. Correctness
//! (never two overlapping sessions on a link) is the database's job; this is
//! only about choosing well among the links that are free.
use std::cmp::Ordering;
use std::str::FromStr;

use jiff::SignedDuration;

use crate::ids::LinkId;
use crate::time::Window;

/// How far either side of a new session neighbours are looked for. A link
/// whose nearest session is further away than this is as good as idle there.
pub const NEIGHBOUR_HORIZON: SignedDuration = SignedDuration::from_hours(24);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Policy {
    /// The link whose neighbouring sessions leave the smallest idle gap around
    /// the new one, so that long free stretches stay whole for later bookings.
    #[default]
    BestFit,
    /// The first free link in creation order (the previous system's rule).
    FirstFit,
}

impl FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "best-fit" | "best_fit" | "bestfit" => Ok(Self::BestFit),
            "first-fit" | "first_fit" | "firstfit" => Ok(Self::FirstFit),
            other => Err(format!(
                "unknown allocation policy {other:?} (use best-fit or first-fit)"
            )),
        }
    }
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BestFit => "best-fit",
            Self::FirstFit => "first-fit",
        }
    }
}

/// An enabled link and the busy windows (buffer included) of the sessions it
/// holds next to the new one: any that overlap it, and its nearest
/// neighbours on either side.
#[derive(Clone, Debug)]
pub struct LinkCandidate {
    pub id: LinkId,
    pub busy: Vec<Window>,
}

impl LinkCandidate {
    pub fn is_free_for(&self, want: &Window) -> bool {
        !self.busy.iter().any(|b| b.overlaps(want))
    }

    /// Idle time left on each side of `want`; `None` where no session is
    /// within [`NEIGHBOUR_HORIZON`].
    fn gaps(&self, want: &Window) -> (Option<SignedDuration>, Option<SignedDuration>) {
        let near = |gap: &SignedDuration| *gap <= NEIGHBOUR_HORIZON;
        let before = self
            .busy
            .iter()
            .filter(|b| b.end <= want.start)
            .map(|b| want.start.duration_since(b.end))
            .filter(near)
            .min();
        let after = self
            .busy
            .iter()
            .filter(|b| b.start >= want.end)
            .map(|b| b.start.duration_since(want.end))
            .filter(near)
            .min();
        (before, after)
    }
}

/// A best-fit score: fewer open (neighbourless) sides first, then the least
/// idle time on the bounded sides. Lower is better.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Fit {
    open_sides: u8,
    idle: SignedDuration,
}

fn fit(candidate: &LinkCandidate, want: &Window) -> Fit {
    let (before, after) = candidate.gaps(want);
    Fit {
        open_sides: u8::from(before.is_none()) + u8::from(after.is_none()),
        idle: before.unwrap_or_default() + after.unwrap_or_default(),
    }
}

/// Picks a link for a session whose busy window is `want`. `candidates` are in
/// link creation order, which breaks ties.
pub fn choose_link(policy: Policy, want: &Window, candidates: &[LinkCandidate]) -> Option<LinkId> {
    let mut free = candidates.iter().filter(|c| c.is_free_for(want));
    match policy {
        Policy::FirstFit => free.next().map(|c| c.id),
        Policy::BestFit => free
            .enumerate()
            .min_by(|(ia, a), (ib, b)| match fit(a, want).cmp(&fit(b, want)) {
                Ordering::Equal => ia.cmp(ib),
                other => other,
            })
            .map(|(_, c)| c.id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    fn at(h: i64, m: i64) -> Timestamp {
        Timestamp::from_second(1_764_547_200 + h * 3600 + m * 60).unwrap() // 2025-12-01T00:00Z
    }
    fn w(h1: i64, m1: i64, h2: i64, m2: i64) -> Window {
        Window::new(at(h1, m1), at(h2, m2))
    }
    fn link(n: u128, busy: Vec<Window>) -> LinkCandidate {
        LinkCandidate {
            id: LinkId(uuid::Uuid::from_u128(n)),
            busy,
        }
    }

    #[test]
    fn first_fit_takes_the_first_free_link() {
        let links = [
            link(1, vec![w(14, 0, 15, 0)]),
            link(2, vec![]),
            link(3, vec![]),
        ];
        let got = choose_link(Policy::FirstFit, &w(14, 30, 15, 30), &links);
        assert_eq!(got, Some(links[1].id));
    }

    #[test]
    fn nothing_free_gives_nothing() {
        let links = [
            link(1, vec![w(14, 0, 15, 0)]),
            link(2, vec![w(13, 0, 14, 30)]),
        ];
        assert_eq!(choose_link(Policy::BestFit, &w(14, 0, 15, 0), &links), None);
        assert_eq!(
            choose_link(Policy::FirstFit, &w(14, 0, 15, 0), &links),
            None
        );
    }

    #[test]
    fn best_fit_prefers_a_link_busy_nearby_to_an_idle_one() {
        // Sessions at 14:00 and 16:00 on one day share a link.
        let links = [link(1, vec![]), link(2, vec![w(14, 0, 15, 0)])];
        assert_eq!(
            choose_link(Policy::BestFit, &w(16, 0, 17, 0), &links),
            Some(links[1].id)
        );
    }

    #[test]
    fn best_fit_picks_the_tightest_gap() {
        let links = [
            link(1, vec![w(9, 0, 10, 0), w(18, 0, 19, 0)]),
            link(2, vec![w(13, 0, 14, 0), w(15, 30, 16, 0)]),
            link(3, vec![w(12, 0, 13, 0)]),
        ];
        assert_eq!(
            choose_link(Policy::BestFit, &w(14, 0, 15, 0), &links),
            Some(links[1].id)
        );
    }

    #[test]
    fn a_neighbour_beyond_the_horizon_counts_as_none() {
        // Link 1's neighbour is 30 hours away: as good as idle on that side,
        // so link 2, with a neighbour 5 hours away, fits more tightly.
        let far = Window::new(at(-30, 0), at(-29, 0));
        let links = [link(1, vec![far]), link(2, vec![w(9, 0, 10, 0)])];
        assert_eq!(
            choose_link(Policy::BestFit, &w(15, 0, 16, 0), &links),
            Some(links[1].id)
        );
    }

    #[test]
    fn best_fit_ties_go_to_the_oldest_link() {
        let links = [link(1, vec![]), link(2, vec![]), link(3, vec![])];
        assert_eq!(
            choose_link(Policy::BestFit, &w(14, 0, 15, 0), &links),
            Some(links[0].id)
        );
    }

    #[test]
    fn policies_parse() {
        assert_eq!("best-fit".parse::<Policy>(), Ok(Policy::BestFit));
        assert_eq!("FIRST-FIT".parse::<Policy>(), Ok(Policy::FirstFit));
        assert!("random".parse::<Policy>().is_err());
    }
}

/// The most sessions in progress at one instant within `during`: the fewest
/// links that could serve them all (on interval schedules the peak is also
/// enough). Windows are half-open, so one ending as another starts do not
/// count together.
pub fn peak_concurrency(sessions: &[Window], during: &Window) -> usize {
    peak_load(sessions.iter().map(|w| (*w, 1)), during)
}

/// [`peak_concurrency`] of sessions given as windows, each with how many
/// sessions share it.
pub fn peak_load(sessions: impl IntoIterator<Item = (Window, usize)>, during: &Window) -> usize {
    let mut edges: Vec<(jiff::Timestamp, i64)> = sessions
        .into_iter()
        .filter(|(w, n)| *n > 0 && w.start < during.end && during.start < w.end)
        .flat_map(|(w, n)| {
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            [(w.start.max(during.start), n), (w.end.min(during.end), -n)]
        })
        .collect();
    // Ends before starts at the same instant.
    edges.sort();
    let (mut now, mut peak) = (0i64, 0i64);
    for (_, step) in edges {
        now += step;
        peak = peak.max(now);
    }
    usize::try_from(peak).unwrap_or_default()
}

#[cfg(test)]
mod peak_tests {
    use jiff::{SignedDuration, Timestamp};

    use super::*;

    fn w(from_h: i64, to_h: i64) -> Window {
        let t0 = Timestamp::UNIX_EPOCH;
        Window::new(
            t0 + SignedDuration::from_hours(from_h),
            t0 + SignedDuration::from_hours(to_h),
        )
    }

    #[test]
    fn peak_counts_sessions_at_one_instant_within_the_day() {
        let day = w(0, 24);
        assert_eq!(peak_concurrency(&[], &day), 0);
        assert_eq!(
            peak_concurrency(&[w(10, 12), w(12, 14)], &day),
            1,
            "back to back"
        );
        assert_eq!(
            peak_concurrency(&[w(10, 12), w(11, 13), w(11, 15), w(14, 16)], &day),
            3
        );
        assert_eq!(
            peak_concurrency(&[w(23, 25), w(-1, 1)], &day),
            1,
            "clipped to the day"
        );
        assert_eq!(peak_concurrency(&[w(30, 31)], &day), 0);
    }

    #[test]
    fn a_shared_window_counts_as_its_sessions() {
        let day = w(0, 24);
        assert_eq!(
            peak_load([(w(10, 12), 3), (w(11, 13), 2), (w(12, 14), 4)], &day),
            6
        );
        assert_eq!(
            peak_load([(w(10, 12), 3), (w(12, 14), 2)], &day),
            3,
            "back to back"
        );
        assert_eq!(peak_load([(w(23, 25), 5), (w(10, 11), 0)], &day), 5);
        let singles = [w(10, 12), w(11, 13), w(11, 15), w(14, 16), w(11, 15)];
        assert_eq!(
            peak_load(singles.iter().map(|w| (*w, 1)), &day),
            peak_concurrency(&singles, &day)
        );
    }
}
