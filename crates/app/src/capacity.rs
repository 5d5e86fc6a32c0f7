//! Selling only what can be served: how many more bookings each start of a
//! day can take (availability), and how close each coming day is to the
//! pool's size (capacity).
use jiff::civil::{Date, Time};
use jiff::SignedDuration;
use meetpool_domain::time::{LocalSlot, TimeError};
use meetpool_domain::{peak_load, SessionTypeId, Window};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{App, AppError, Result};

/// The longest capacity report, in days.
pub const CAPACITY_MAX_DAYS: i64 = 366;

/// One start on the day's grid.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Availability {
    /// Local start, `HH:MM`.
    pub booking_time: String,
    /// RFC 3339, UTC.
    pub starts_at: String,
    pub ends_at: String,
    /// How many more bookings of this type the pool can take at this start.
    pub available: usize,
}

/// One day of the capacity report.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DayCapacity {
    /// `YYYY-MM-DD`, the platform's local day.
    pub date: String,
    /// The most paid sessions in progress at one instant that day.
    pub peak_sessions: usize,
    pub enabled_links: usize,
    /// Enabled links less the peak: how many more sessions the busiest
    /// moment could take (negative: more paid sessions than links).
    pub headroom: i64,
    /// Paid bookings that day without a link.
    pub unassigned: usize,
    /// The day's peak reaches the pool's size.
    pub warning: bool,
}

impl App {
    /// For each start on the `slot_minutes` grid of the local `date`, how
    /// many enabled links are free for a session of `session_type_id` (its
    /// buffer included): what a paid booking made then would find.
    pub async fn availability(
        &self,
        date: &str,
        session_type_id: &str,
    ) -> Result<Vec<Availability>> {
        let date: Date = meetpool_domain::time::parse_date(date)
            .map_err(|e| AppError::invalid("invalid_date", e))?;
        let session_type_id: SessionTypeId = session_type_id.parse().map_err(|_| {
            AppError::invalid("invalid_session_type_id", "session_type_id must be a UUID")
        })?;
        let step = i64::from(self.config().slot_minutes.max(1));
        let tz = &self.config().timezone;
        let mut starts = Vec::new();
        let mut minute = 0;
        while minute < 24 * 60 {
            let time = Time::new((minute / 60) as i8, (minute % 60) as i8, 0, 0)
                .map_err(|e| AppError::Internal(e.to_string()))?;
            // A time the clocks skip is no start.
            if let Ok(start) = (LocalSlot { date, time }).start(tz) {
                starts.push((time, start));
            }
            minute += step;
        }
        let (Some(first), Some(last)) = (starts.first(), starts.last()) else {
            return Ok(Vec::new());
        };
        let buffer = self.config().buffer_minutes;
        // The type's duration and the links' sessions in one read.
        let Some((minutes, links)) = self
            .store()
            .sessions_of_type(session_type_id, Window::new(first.1, last.1), buffer)
            .await?
        else {
            return Err(AppError::invalid(
                "unknown_session_type",
                "session_type_id names no session type",
            ));
        };
        let duration = SignedDuration::from_mins(i64::from(minutes));
        Ok(starts
            .iter()
            .map(|(time, start)| {
                let window = Window::new(*start, *start + duration);
                let busy = window.busy(buffer);
                Availability {
                    booking_time: time.strftime("%H:%M").to_string(),
                    starts_at: window.start.to_string(),
                    ends_at: window.end.to_string(),
                    available: links.iter().filter(|l| l.is_free_for(&busy)).count(),
                }
            })
            .collect())
    }

    /// Per local day from `from` (default today) to `to` (inclusive;
    /// default 29 days on): the peak of paid sessions against the enabled
    /// links.
    pub async fn capacity(&self, from: Option<&str>, to: Option<&str>) -> Result<Vec<DayCapacity>> {
        let parse = |raw: &str, what: &str| {
            meetpool_domain::time::parse_date(raw).map_err(|e| match e {
                TimeError::DateOutOfRange(_) => {
                    AppError::invalid("invalid_date", format!("{what}: {e}"))
                }
                _ => {
                    AppError::invalid("invalid_date", format!("{what} must be a date, YYYY-MM-DD"))
                }
            })
        };
        let from = match from {
            Some(raw) => parse(raw, "from")?,
            None => jiff::Timestamp::now()
                .to_zoned(self.config().timezone.clone())
                .date(),
        };
        let to = match to {
            Some(raw) => parse(raw, "to")?,
            None => from
                .checked_add(jiff::Span::new().days(29))
                .map_err(|e| AppError::invalid("invalid_date", e))?,
        };
        let days = (to - from).get_days() as i64 + 1;
        if !(1..=CAPACITY_MAX_DAYS).contains(&days) {
            return Err(AppError::invalid(
                "invalid_range",
                format!("to must be on or after from, at most {CAPACITY_MAX_DAYS} days on"),
            ));
        }
        let first = self.local_day(from)?;
        let last = self.local_day(to)?;
        // Two independent reads: on two connections at once.
        let sessions = async {
            Ok::<_, AppError>(
                self.store()
                    .paid_sessions(Window::new(first.start, last.end))
                    .await?,
            )
        };
        let enabled = async { Ok::<_, AppError>(self.store().enabled_links().await?) };
        let (sessions, enabled) = tokio::try_join!(sessions, enabled)?;
        let enabled = enabled as usize;
        let buffer = SignedDuration::from_mins(i64::from(self.config().buffer_minutes));
        let busy: Vec<(Window, usize)> = sessions
            .iter()
            .map(|s| {
                let w = s.window;
                (Window::new(w.start, w.end + buffer), s.sessions as usize)
            })
            .collect();
        let mut out = Vec::new();
        let mut day = from;
        while day <= to {
            let window = self.local_day(day)?;
            let peak = peak_load(busy.iter().copied(), &window);
            let unassigned = sessions
                .iter()
                .filter(|s| window.start <= s.window.start && s.window.start < window.end)
                .map(|s| s.unlinked as usize)
                .sum();
            out.push(DayCapacity {
                date: day.to_string(),
                peak_sessions: peak,
                enabled_links: enabled,
                headroom: enabled as i64 - peak as i64,
                unassigned,
                warning: peak >= enabled,
            });
            day = day
                .tomorrow()
                .map_err(|e| AppError::invalid("invalid_date", e))?;
        }
        Ok(out)
    }
}
