//! The `simulate` command: how well the allocation policies pack a fixed
//! pool. Generated workloads (business hours, sessions of 30 to 120 minutes
//! on a 15-minute grid, booked in random order) are fed one booking at a
//! time to the domain's own `choose_link`, with each link's neighbouring
//! sessions as the store would read them. Every workload fits the pool by
//! peak concurrency, so the optimum serves every booking: what a policy
//! leaves without a link is its loss.
use std::io::Write;

use anyhow::Result;
use jiff::{SignedDuration, Timestamp};
use meetpool_domain::{choose_link, peak_concurrency, LinkCandidate, LinkId, Policy, Window};

use crate::cli::SimulateArgs;

/// A small, seeded generator: the same seed gives the same workloads.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One day's bookings that fit `target` links by peak concurrency: sessions
/// are drawn at random, kept while the day's peak stays within `target`,
/// until the peak reaches it.
fn day(rng: &mut Rng, day: i64, target: usize) -> Vec<Window> {
    let midnight = Timestamp::UNIX_EPOCH + SignedDuration::from_hours(24 * day);
    let whole = Window::new(midnight, midnight + SignedDuration::from_hours(24));
    let mut sessions: Vec<Window> = Vec::new();
    let mut misses = 0;
    while misses < 200 && peak_concurrency(&sessions, &whole) < target {
        // 08:00 to 20:00 starts, 30 to 120 minutes, on a 15-minute grid.
        let start = midnight + SignedDuration::from_mins(8 * 60 + 15 * rng.below(48) as i64);
        let length = SignedDuration::from_mins(30 + 15 * rng.below(7) as i64);
        let session = Window::new(start, start + length);
        sessions.push(session);
        if peak_concurrency(&sessions, &whole) > target {
            sessions.pop();
            misses += 1;
        } else {
            misses = 0;
        }
    }
    sessions
}

/// Bookings in the order they arrive: every day's, shuffled together.
fn workload(rng: &mut Rng, days: i64, target: usize) -> Vec<Window> {
    let mut all: Vec<Window> = (0..days).flat_map(|d| day(rng, d, target)).collect();
    for i in (1..all.len()).rev() {
        all.swap(i, rng.below(i as u64 + 1) as usize);
    }
    all
}

/// Feeds `bookings` to `policy` over `links` links (unbounded: `None`):
/// how many got none, and how many links were used.
fn run(policy: Policy, bookings: &[Window], links: Option<usize>) -> (usize, usize) {
    let ids: Vec<LinkId> = (0..links.unwrap_or(bookings.len()))
        .map(|_| LinkId::new())
        .collect();
    // Each link's sessions, sorted by start.
    let mut held: Vec<Vec<Window>> = vec![Vec::new(); ids.len()];
    let mut unserved = 0;
    for want in bookings {
        // As the store reads them: the last session starting before the
        // window, and the first starting at or after it.
        let candidates: Vec<LinkCandidate> = ids
            .iter()
            .zip(&held)
            .map(|(id, sessions)| {
                let at = sessions.partition_point(|s| s.start < want.start);
                let busy = [at.checked_sub(1), Some(at)]
                    .into_iter()
                    .flatten()
                    .filter_map(|i| sessions.get(i).copied())
                    .collect();
                LinkCandidate { id: *id, busy }
            })
            .collect();
        match choose_link(policy, want, &candidates) {
            Some(link) => {
                let i = ids.iter().position(|l| *l == link).expect("a listed link");
                let at = held[i].partition_point(|s| s.start < want.start);
                held[i].insert(at, *want);
            }
            None => unserved += 1,
        }
    }
    (unserved, held.iter().filter(|s| !s.is_empty()).count())
}

pub fn run_command(a: SimulateArgs) -> Result<()> {
    let policies = [Policy::FirstFit, Policy::BestFit];
    println!("| scenario | pool | policy | bookings | left without a link | links needed (optimum = peak) |");
    println!("|---|---|---|---|---|---|");
    for (scenario, days, load) in [("busy week", 7, 1.0), ("ordinary month", 30, 0.7)] {
        for &pool in &a.pools {
            let target = ((pool as f64 * load).round() as usize).max(1);
            let mut totals = vec![(0usize, 0usize, 0usize); policies.len()];
            let mut peak_sum = 0;
            for seed in 0..a.seeds {
                eprint!(
                    "\r{scenario}, pool {pool}: seed {} of {}",
                    seed + 1,
                    a.seeds
                );
                let _ = std::io::stderr().flush();
                let mut rng =
                    Rng(0x9E37_79B9_7F4A_7C15 ^ (seed + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
                let bookings = workload(&mut rng, days, target);
                peak_sum += target;
                for (p, policy) in policies.iter().enumerate() {
                    let (unserved, _) = run(*policy, &bookings, Some(pool));
                    let (_, needed) = run(*policy, &bookings, None);
                    totals[p].0 += bookings.len();
                    totals[p].1 += unserved;
                    totals[p].2 += needed;
                }
            }
            eprintln!();
            for (p, policy) in policies.iter().enumerate() {
                let (booked, unserved, needed) = totals[p];
                println!(
                    "| {scenario} | {pool} | {} | {booked} | {:.2} % | {:.2} vs {:.2} |",
                    policy.as_str(),
                    100.0 * unserved as f64 / booked.max(1) as f64,
                    needed as f64 / a.seeds as f64,
                    peak_sum as f64 / a.seeds as f64,
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_fit_by_peak_and_an_unbounded_pool_serves_them_all() {
        let mut rng = Rng(7);
        let bookings = workload(&mut rng, 3, 4);
        for d in 0..3 {
            let midnight = Timestamp::UNIX_EPOCH + SignedDuration::from_hours(24 * d);
            let whole = Window::new(midnight, midnight + SignedDuration::from_hours(24));
            assert_eq!(peak_concurrency(&bookings, &whole), 4, "day {d}");
        }
        for policy in [Policy::FirstFit, Policy::BestFit] {
            let (unserved, needed) = run(policy, &bookings, None);
            assert_eq!(unserved, 0);
            assert!(needed >= 4, "never fewer links than the peak");
            // A pool of the peak's size serves most, and never more than all.
            let (short, _) = run(policy, &bookings, Some(4));
            assert!(short < bookings.len() / 10, "{short} of {}", bookings.len());
        }
    }
}
