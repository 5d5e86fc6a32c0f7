//! Making room by moving booked sessions: on a fixed pool a booking can
//! find no free link although fewer sessions overlap it than there are
//! links (link A busy 10–12, link B 13–15: an 11–14 booking fits neither,
//! yet moving 13–15 onto A frees B). [`repack`] finds the fewest moves of
//! movable sessions that free a link for a window.

use crate::time::Window;

/// A session on a link, as the search sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placed<K> {
    pub key: K,
    /// Its busy window (buffer included).
    pub busy: Window,
    /// It may move (it starts later than the freeze allows, say).
    pub movable: bool,
}

/// One session moved from one link to another (indexes into the links).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Move<K> {
    pub key: K,
    pub from: usize,
    pub to: usize,
}

/// A way to free link `link` for the window, by `moves` applied in order:
/// each move's target is free for its session when it is made, and the
/// link is free once they all are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repack<K> {
    pub link: usize,
    pub moves: Vec<Move<K>>,
}

/// The fewest moves (at most `max_moves`) that free one of `links` for
/// `want`; links are tried in order, so ties go to the first. `None` when
/// no plan within `max_moves` exists. `links[i]` holds the sessions of
/// link `i` that can matter (those near `want`; the caller bounds them).
pub fn repack<K: Copy>(
    links: &[Vec<Placed<K>>],
    want: Window,
    max_moves: usize,
) -> Option<Repack<K>> {
    (0..=max_moves).find_map(|budget| {
        let mut state = links.to_vec();
        make_room(&mut state, want, &mut Vec::new(), budget)
            .map(|(link, moves)| Repack { link, moves })
    })
}

/// Frees a link (not in `busy_links`) for `want` with at most `budget`
/// moves, changing `state` accordingly.
fn make_room<K: Copy>(
    state: &mut Vec<Vec<Placed<K>>>,
    want: Window,
    busy_links: &mut Vec<usize>,
    budget: usize,
) -> Option<(usize, Vec<Move<K>>)> {
    for link in 0..state.len() {
        if busy_links.contains(&link) {
            continue;
        }
        let blockers: Vec<Placed<K>> = state[link]
            .iter()
            .filter(|p| p.busy.overlaps(&want))
            .copied()
            .collect();
        if blockers.is_empty() {
            return Some((link, Vec::new()));
        }
        if blockers.len() > budget || blockers.iter().any(|b| !b.movable) {
            continue;
        }
        let mut trial = state.clone();
        trial[link].retain(|p| !p.busy.overlaps(&want));
        busy_links.push(link);
        let mut left = budget - blockers.len();
        let mut moves = Vec::new();
        let mut rehomed = true;
        for b in &blockers {
            match make_room(&mut trial, b.busy, busy_links, left) {
                Some((to, sub)) => {
                    left -= sub.len();
                    moves.extend(sub);
                    trial[to].push(*b);
                    moves.push(Move {
                        key: b.key,
                        from: link,
                        to,
                    });
                }
                None => {
                    rehomed = false;
                    break;
                }
            }
        }
        busy_links.pop();
        if rehomed {
            *state = trial;
            return Some((link, moves));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use jiff::{SignedDuration, Timestamp};

    use super::*;

    fn w(from_h: i64, to_h: i64) -> Window {
        let t0 = Timestamp::UNIX_EPOCH;
        Window::new(
            t0 + SignedDuration::from_hours(from_h),
            t0 + SignedDuration::from_hours(to_h),
        )
    }

    fn on(key: u32, busy: Window) -> Placed<u32> {
        Placed {
            key,
            busy,
            movable: true,
        }
    }

    #[test]
    fn one_move_frees_a_link_for_a_window_that_fits_by_peak() {
        // A busy 10–12, B busy 13–15: 11–14 fits neither.
        let links = vec![vec![on(1, w(10, 12))], vec![on(2, w(13, 15))]];
        let plan = repack(&links, w(11, 14), 3).unwrap();
        // Either session can move to the other link; the first link is
        // tried first: 10–12 joins 13–15 on B, and A is free.
        assert_eq!(plan.link, 0);
        assert_eq!(
            plan.moves,
            vec![Move {
                key: 1,
                from: 0,
                to: 1
            }]
        );
    }

    #[test]
    fn a_free_link_needs_no_move_and_frozen_sessions_stay() {
        let links = vec![vec![on(1, w(10, 12))], vec![]];
        assert_eq!(repack(&links, w(11, 14), 3).unwrap().moves, vec![]);
        let frozen = vec![
            vec![on(1, w(10, 12))],
            vec![Placed {
                movable: false,
                ..on(2, w(13, 15))
            }],
        ];
        // 13–15 may not move, but 10–12 may, to B: A is free.
        let plan = repack(&frozen, w(11, 14), 3).unwrap();
        assert_eq!((plan.link, plan.moves.len()), (0, 1));
        let all_frozen: Vec<Vec<Placed<u32>>> = frozen
            .iter()
            .map(|l| {
                l.iter()
                    .map(|p| Placed {
                        movable: false,
                        ..*p
                    })
                    .collect()
            })
            .collect();
        assert_eq!(repack(&all_frozen, w(11, 14), 3), None);
    }

    #[test]
    fn a_plan_replayed_in_order_never_overlaps() {
        // 13–15 is blocked on every link; any plan must keep every step
        // free of overlaps.
        let links = vec![
            vec![on(1, w(11, 13))],
            vec![on(2, w(12, 14))],
            vec![on(3, w(10, 12)), on(4, w(14, 16))],
        ];
        let plan = repack(&links, w(13, 15), 3).unwrap();
        assert!(plan.moves.len() <= 2, "{plan:?}");
        // Replaying the moves in order never overlaps, and frees the link.
        let mut state = links.clone();
        for m in &plan.moves {
            let i = state[m.from].iter().position(|p| p.key == m.key).unwrap();
            let moved = state[m.from].remove(i);
            assert!(
                state[m.to].iter().all(|p| !p.busy.overlaps(&moved.busy)),
                "{m:?}"
            );
            state[m.to].push(moved);
        }
        assert!(state[plan.link]
            .iter()
            .all(|p| !p.busy.overlaps(&w(13, 15))));
    }
}
