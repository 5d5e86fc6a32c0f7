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
use meetpool_domain::repack::{repack, Placed};
use meetpool_domain::{choose_link, peak_concurrency, LinkCandidate, LinkId, Policy, Window};

/// Sessions that start within this long of a booking's arrival do not move.
const FREEZE: SignedDuration = SignedDuration::from_hours(2);
/// The most sessions one rescue may move.
const MAX_MOVES: usize = 3;

/// A booking: its session, and when it is made (days ahead).
#[derive(Clone, Copy)]
struct Booking {
    session: Window,
    arrives: Timestamp,
}

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

/// Bookings in the order they arrive: each made between 2 hours and 14
/// days before its session, so the days' bookings interleave.
fn workload(rng: &mut Rng, days: i64, target: usize) -> Vec<Booking> {
    let sessions: Vec<Window> = (0..days).flat_map(|d| day(rng, d, target)).collect();
    let mut all: Vec<Booking> = sessions
        .into_iter()
        .map(|session| Booking {
            session,
            arrives: session.start
                - SignedDuration::from_mins(120 + rng.below(14 * 24 * 60) as i64),
        })
        .collect();
    all.sort_by_key(|b| b.arrives);
    all
}

/// What a policy did with a workload.
#[derive(Default)]
struct Outcome {
    unserved: usize,
    links_used: usize,
    rescues: usize,
    moves: usize,
}

/// Feeds `bookings` to `policy` over `links` links (unbounded: `None`),
/// moving booked sessions to make room when `rescue` is set.
fn run(policy: Policy, bookings: &[Booking], links: Option<usize>, rescue: bool) -> Outcome {
    let ids: Vec<LinkId> = (0..links.unwrap_or(bookings.len()))
        .map(|_| LinkId::new())
        .collect();
    // Each link's sessions, sorted by start, with the booking they are.
    let mut held: Vec<Vec<(Window, usize)>> = vec![Vec::new(); ids.len()];
    let mut out = Outcome::default();
    for (n, booking) in bookings.iter().enumerate() {
        let want = booking.session;
        // As the store reads them: the last session starting before the
        // window, and the first starting at or after it.
        let candidates: Vec<LinkCandidate> = ids
            .iter()
            .zip(&held)
            .map(|(id, sessions)| {
                let at = sessions.partition_point(|(s, _)| s.start < want.start);
                let busy = [at.checked_sub(1), Some(at)]
                    .into_iter()
                    .flatten()
                    .filter_map(|i| sessions.get(i).map(|(s, _)| *s))
                    .collect();
                LinkCandidate { id: *id, busy }
            })
            .collect();
        let link = match choose_link(policy, &want, &candidates) {
            Some(link) => ids.iter().position(|l| *l == link),
            None if rescue => rescue_room(&mut held, booking, &mut out),
            None => None,
        };
        match link {
            Some(i) => insert(&mut held[i], want, n),
            None => out.unserved += 1,
        }
    }
    out.links_used = held.iter().filter(|s| !s.is_empty()).count();
    out
}

fn insert(sessions: &mut Vec<(Window, usize)>, session: Window, booking: usize) {
    let at = sessions.partition_point(|(s, _)| s.start < session.start);
    sessions.insert(at, (session, booking));
}

/// The repack search over the sessions near `booking`'s; its moves
/// applied to `held`. The link freed for it, if any.
fn rescue_room(
    held: &mut [Vec<(Window, usize)>],
    booking: &Booking,
    out: &mut Outcome,
) -> Option<usize> {
    // Chains of up to MAX_MOVES sessions of at most two hours each reach
    // no further than this from the window.
    let reach = SignedDuration::from_hours(2 * MAX_MOVES as i64 + 2);
    let near = Window::new(booking.session.start - reach, booking.session.end + reach);
    let links: Vec<Vec<Placed<usize>>> = held
        .iter()
        .map(|sessions| {
            sessions
                .iter()
                .filter(|(s, _)| s.overlaps(&near))
                .map(|(s, key)| Placed {
                    key: *key,
                    busy: *s,
                    movable: s.start > booking.arrives + FREEZE,
                })
                .collect()
        })
        .collect();
    let plan = repack(&links, booking.session, MAX_MOVES)?;
    for m in &plan.moves {
        let i = held[m.from]
            .iter()
            .position(|(_, key)| *key == m.key)
            .expect("a planned session");
        let (session, key) = held[m.from].remove(i);
        insert(&mut held[m.to], session, key);
    }
    out.rescues += 1;
    out.moves += plan.moves.len();
    Some(plan.link)
}

pub fn run_command(a: SimulateArgs) -> Result<()> {
    let policies = [
        ("first-fit", Policy::FirstFit, false),
        ("best-fit", Policy::BestFit, false),
        ("best-fit + repack", Policy::BestFit, true),
    ];
    println!("| scenario | pool | policy | bookings | left without a link | moves per rescue | links needed (optimum = peak) |");
    println!("|---|---|---|---|---|---|---|");
    for (scenario, days, load) in [("busy week", 7, 1.0), ("ordinary month", 30, 0.7)] {
        for &pool in &a.pools {
            let target = ((pool as f64 * load).round() as usize).max(1);
            let mut totals: Vec<(usize, Outcome)> =
                policies.iter().map(|_| (0, Outcome::default())).collect();
            for seed in 0..a.seeds {
                eprint!(
                    "\r{scenario}, pool {pool}: seed {} of {}   ",
                    seed + 1,
                    a.seeds
                );
                let _ = std::io::stderr().flush();
                let mut rng =
                    Rng(0x9E37_79B9_7F4A_7C15 ^ (seed + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
                let bookings = workload(&mut rng, days, target);
                for (p, (_, policy, rescue)) in policies.iter().enumerate() {
                    let fixed = run(*policy, &bookings, Some(pool), *rescue);
                    let unbounded = run(*policy, &bookings, None, false);
                    let t = &mut totals[p];
                    t.0 += bookings.len();
                    t.1.unserved += fixed.unserved;
                    t.1.rescues += fixed.rescues;
                    t.1.moves += fixed.moves;
                    t.1.links_used += unbounded.links_used;
                }
            }
            eprintln!();
            for ((name, _, rescue), (booked, o)) in policies.iter().zip(&totals) {
                let per_rescue = if *rescue {
                    format!("{:.2}", o.moves as f64 / o.rescues.max(1) as f64)
                } else {
                    "–".to_owned()
                };
                println!(
                    "| {scenario} | {pool} | {name} | {booked} | {:.2} % | {per_rescue} | {:.2} vs {target} |",
                    100.0 * o.unserved as f64 / (*booked).max(1) as f64,
                    o.links_used as f64 / a.seeds as f64,
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
    fn workloads_fit_by_peak_and_repacking_serves_at_least_as_many() {
        let mut rng = Rng(7);
        let bookings = workload(&mut rng, 3, 4);
        let sessions: Vec<Window> = bookings.iter().map(|b| b.session).collect();
        for d in 0..3 {
            let midnight = Timestamp::UNIX_EPOCH + SignedDuration::from_hours(24 * d);
            let whole = Window::new(midnight, midnight + SignedDuration::from_hours(24));
            assert_eq!(peak_concurrency(&sessions, &whole), 4, "day {d}");
        }
        for policy in [Policy::FirstFit, Policy::BestFit] {
            let unbounded = run(policy, &bookings, None, false);
            assert_eq!(unbounded.unserved, 0);
            assert!(unbounded.links_used >= 4, "never fewer links than the peak");
        }
        let plain = run(Policy::BestFit, &bookings, Some(4), false);
        let repacked = run(Policy::BestFit, &bookings, Some(4), true);
        assert!(repacked.unserved <= plain.unserved);
        assert!(repacked.moves <= MAX_MOVES * repacked.rescues);
        assert!(repacked.rescues > 0 || plain.unserved == 0);
    }
}
