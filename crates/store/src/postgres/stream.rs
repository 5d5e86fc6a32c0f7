//! Where the stream of queued events stands, and how far a read of it lets
//! it go (migration 0013): event numbers are taken in one order and
//! committed in another, so the stream waits for a missing number while a
//! transaction that may still write it runs, but not for long.
use jiff::{SignedDuration, Timestamp};

/// How long the stream waits for a missing number whose transaction may
/// still commit, before it goes on without it (meetpool's own transactions
/// last milliseconds; one left open would hold back every later event).
pub(crate) const LATE_AFTER: SignedDuration = SignedDuration::from_secs(5);

/// The stream's row: everything numbered up to `through` is dealt with,
/// but for missing numbers it stopped waiting for (late ranges).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StreamPosition {
    pub(crate) through: i64,
    pub(crate) gap: Option<Gap>,
}

/// Numbers found missing below `until` at `since`, when `xmax` was the
/// first transaction id not given out: every transaction that took one of
/// them had started, so once none older than `xmax` runs, a number still
/// missing never will come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Gap {
    pub(crate) until: i64,
    pub(crate) xmax: u64,
    pub(crate) since: Timestamp,
}

/// Missing numbers `first..=last` the stream went on without, while a
/// transaction older than `xmax` may still write them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Late {
    pub(crate) first: i64,
    pub(crate) last: i64,
    pub(crate) xmax: u64,
}

/// What a read of the stream's events (their numbers `seqs`, ascending,
/// after `through`, read with a snapshot whose oldest running transaction
/// is `xmin` and whose first id not given out is `xmax`, at `now`) lets it
/// take.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Advance {
    /// How many of the events, from the first.
    pub(crate) taken: usize,
    pub(crate) position: StreamPosition,
    /// Missing numbers it no longer waits for.
    pub(crate) late: Vec<Late>,
}

impl StreamPosition {
    /// Takes the events as far as no missing number may still come before
    /// them, or it has been waited for `LATE_AFTER` already.
    pub(crate) fn advance(self, seqs: &[i64], xmin: u64, xmax: u64, now: Timestamp) -> Advance {
        let mut next = self.through + 1;
        let mut gap = self.gap;
        let mut late = Vec::new();
        let mut taken = 0;
        let newest = seqs.last().copied().unwrap_or(self.through);
        'events: for &seq in seqs {
            while seq > next {
                match gap {
                    // Missing numbers seen before, below the event then
                    // newest: known never to come once every transaction
                    // running then has ended; waited for until then, or
                    // until waiting holds back the events after them too
                    // long.
                    Some(g) if next < g.until => {
                        let resume = seq.min(g.until);
                        if xmin < g.xmax {
                            if now.duration_since(g.since) < LATE_AFTER {
                                break 'events;
                            }
                            late.push(Late {
                                first: next,
                                last: resume - 1,
                                xmax: g.xmax,
                            });
                        }
                        next = resume;
                    }
                    // Missing numbers seen for the first time.
                    _ => {
                        gap = Some(Gap {
                            until: newest,
                            xmax,
                            since: now,
                        });
                        break 'events;
                    }
                }
            }
            taken += 1;
            next = seq + 1;
        }
        let through = next - 1;
        if gap.is_some_and(|g| through >= g.until) {
            gap = None;
        }
        Advance {
            taken,
            position: StreamPosition { through, gap },
            late,
        }
    }
}

#[cfg(test)]
mod tests {
    use jiff::{SignedDuration, Timestamp};

    use super::{Advance, Gap, Late, StreamPosition, LATE_AFTER};

    const T0: Timestamp = Timestamp::UNIX_EPOCH;

    fn at(through: i64, gap: Option<(i64, u64)>) -> StreamPosition {
        StreamPosition {
            through,
            gap: gap.map(|(until, xmax)| Gap {
                until,
                xmax,
                since: T0,
            }),
        }
    }

    fn took(taken: usize, position: StreamPosition) -> Advance {
        Advance {
            taken,
            position,
            late: Vec::new(),
        }
    }

    /// A moment after T0, while missing numbers are still waited for.
    fn soon() -> Timestamp {
        T0 + SignedDuration::from_millis(100)
    }

    #[test]
    fn the_stream_takes_events_in_an_unbroken_run_of_numbers() {
        assert_eq!(
            at(10, None).advance(&[11, 12, 13], 50, 60, T0),
            took(3, at(13, None))
        );
        assert_eq!(at(10, None).advance(&[], 50, 60, T0), took(0, at(10, None)));
    }

    #[test]
    fn a_missing_number_is_waited_for_while_its_transaction_may_still_commit() {
        // 12 is missing: the stream stops before it and notes who could
        // still write it (any transaction before id 60).
        let seen = at(10, None).advance(&[11, 13, 14], 50, 60, T0);
        assert_eq!(seen, took(1, at(11, Some((14, 60)))));
        let seen = seen.position;
        // Transaction 55 still runs: 12 may still come, so nothing moves,
        // and the note is kept (not moved on to newer transactions).
        assert_eq!(seen.advance(&[13, 14, 15], 55, 70, soon()), took(0, seen));
        // It came.
        assert_eq!(
            seen.advance(&[12, 13, 14, 15], 55, 70, soon()),
            took(4, at(15, None))
        );
        // Or every transaction before 60 has ended without it: it never
        // will come.
        assert_eq!(
            seen.advance(&[13, 14, 15], 60, 70, soon()),
            took(3, at(15, None))
        );
    }

    #[test]
    fn a_note_covers_only_the_numbers_below_the_newest_event_seen_then() {
        // 12 is known never to come, but 14 was not missing when the note
        // was made: it is noted afresh.
        let seen = at(11, Some((13, 60))).advance(&[13, 15], 60, 80, soon());
        let mut noted = at(13, Some((15, 80)));
        noted.gap.as_mut().unwrap().since = soon();
        assert_eq!(seen, took(1, noted));
    }

    #[test]
    fn a_number_waited_for_too_long_is_left_to_come_late() {
        let seen = at(11, Some((14, 60)));
        let later = T0 + LATE_AFTER;
        assert_eq!(
            seen.advance(&[14, 15], 55, 70, later),
            Advance {
                taken: 2,
                position: at(15, None),
                late: vec![Late {
                    first: 12,
                    last: 13,
                    xmax: 60
                }],
            }
        );
    }
}
