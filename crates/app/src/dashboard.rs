//! What the operator dashboard reads besides what the API lists: a day's
//! sessions per link, the links a waiting booking could take, and how many
//! coming sessions each link would hand over if it were disabled. Every
//! change the dashboard makes goes through the same use cases as the API.
use std::collections::{HashMap, HashSet};

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use meetpool_domain::time::parse_date;
use meetpool_domain::{Booking, BookingId, LinkId, PaymentStatus, Window};
use meetpool_store::{BookingFilter, Link};

use crate::{App, AppError, Result};

/// A booking moved off a link this recently is marked on the timeline.
pub const MOVED_WITHIN: SignedDuration = SignedDuration::from_hours(24);
/// The most bookings one day's timeline reads.
const DAY_MAX_BOOKINGS: u32 = 5_000;
/// The most waiting bookings the queue page lists.
const QUEUE_MAX: u32 = 200;
/// How far ahead a link's coming sessions are counted.
const COMING_HORIZON: SignedDuration = SignedDuration::from_hours(24 * 400);

/// How a session shows on the timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKind {
    Paid,
    /// An unpaid booking whose checkout hold still reserves the link.
    Held,
    /// Paid, and moved off another link within [`MOVED_WITHIN`].
    Moved,
}

impl BarKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BarKind::Paid => "paid",
            BarKind::Held => "held",
            BarKind::Moved => "moved",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Bar {
    pub booking: Booking,
    pub kind: BarKind,
}

/// One link and its sessions that day, soonest first.
#[derive(Clone, Debug)]
pub struct LinkRow {
    pub link: Link,
    pub bars: Vec<Bar>,
}

/// One local day of the pool: every link with its sessions, and the paid
/// sessions that have no link.
#[derive(Clone, Debug)]
pub struct DayTimeline {
    pub date: Date,
    /// The day in UTC (23 or 25 hours when the clocks change).
    pub day: Window,
    pub now: Timestamp,
    pub rows: Vec<LinkRow>,
    pub unassigned: Vec<Booking>,
}

/// A link a waiting booking could be given, and whether it is free then.
#[derive(Clone, Debug)]
pub struct LinkChoice {
    pub link: Link,
    pub free: bool,
}

/// A paid booking waiting for a link, with every enabled link it could ask
/// for (free ones first).
#[derive(Clone, Debug)]
pub struct QueueEntry {
    pub booking: Booking,
    pub choices: Vec<LinkChoice>,
}

impl App {
    /// The local `date` (`YYYY-MM-DD`) as the timeline shows it.
    pub async fn day_timeline(&self, date: &str) -> Result<DayTimeline> {
        let date = parse_date(date).map_err(|e| AppError::invalid("invalid_date", e))?;
        let day = self.local_day(date)?;
        // A session that started the evening before may run into the day.
        let reach = Window::new(day.start - SignedDuration::from_hours(24), day.end);
        let filter = BookingFilter {
            starts_within: Some(reach),
            limit: DAY_MAX_BOOKINGS,
            ..BookingFilter::default()
        };
        let now = Timestamp::now();
        let bookings = self.bookings(&filter).await?;
        let moved: HashSet<BookingId> = self
            .store()
            .moved_since(reach, now - MOVED_WITHIN)
            .await?
            .into_iter()
            .collect();
        let mut rows: Vec<LinkRow> = self
            .links()
            .await?
            .into_iter()
            .map(|link| LinkRow {
                link,
                bars: Vec::new(),
            })
            .collect();
        let row_of: HashMap<LinkId, usize> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r.link.id, i))
            .collect();
        let mut unassigned = Vec::new();
        for booking in bookings.into_iter().filter(|b| b.window.end > day.start) {
            let paid = booking.payment_status == PaymentStatus::Paid;
            let kind = match booking.meeting_link_id {
                None if paid => {
                    unassigned.push(booking);
                    continue;
                }
                Some(_) if paid && moved.contains(&booking.id) => BarKind::Moved,
                Some(_) if paid => BarKind::Paid,
                Some(_) if booking.hold_expires_at.is_some_and(|t| t > now) => BarKind::Held,
                _ => continue,
            };
            if let Some(&row) = booking.meeting_link_id.and_then(|l| row_of.get(&l)) {
                rows[row].bars.push(Bar { booking, kind });
            }
        }
        Ok(DayTimeline {
            date,
            day,
            now,
            rows,
            unassigned,
        })
    }

    /// The paid bookings waiting for a link (oldest first), each with the
    /// enabled links and whether each is free for its session: one range
    /// read for the whole queue.
    pub async fn unassigned_queue(&self) -> Result<Vec<QueueEntry>> {
        let waiting = self.store().waiting(QUEUE_MAX).await?;
        let Some(during) = waiting
            .iter()
            .map(|b| self.busy(b))
            .reduce(|a, b| Window::new(a.start.min(b.start), a.end.max(b.end)))
        else {
            return Ok(Vec::new());
        };
        let sessions = self.store().link_sessions(during).await?;
        let links: HashMap<LinkId, Link> =
            self.links().await?.into_iter().map(|l| (l.id, l)).collect();
        Ok(waiting
            .into_iter()
            .map(|booking| {
                let busy = self.busy(&booking);
                let mut choices: Vec<LinkChoice> = sessions
                    .iter()
                    .filter_map(|c| {
                        Some(LinkChoice {
                            link: links.get(&c.id)?.clone(),
                            free: c.is_free_for(&busy),
                        })
                    })
                    .collect();
                // Stable: free links first, each group in creation order.
                choices.sort_by_key(|c| !c.free);
                QueueEntry { booking, choices }
            })
            .collect())
    }

    /// For each enabled link, how many of its sessions start from now on:
    /// the sessions that disabling it would move.
    pub async fn coming_sessions(&self) -> Result<HashMap<LinkId, usize>> {
        let now = Timestamp::now();
        let sessions = self
            .store()
            .link_sessions(Window::new(now, now + COMING_HORIZON))
            .await?;
        Ok(sessions
            .into_iter()
            .map(|c| (c.id, c.busy.iter().filter(|w| w.start >= now).count()))
            .collect())
    }
}
