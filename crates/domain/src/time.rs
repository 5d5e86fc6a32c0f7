//! Wall-clock booking slots and the UTC windows they become.
//!
//! A booking is sold as a local date and time in the platform's zone. It is
//! turned into a UTC window once, when the booking is created, so that later
//! changes to the zone database or to the session type never move a session
//! that people already planned around.
use std::fmt;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};
use thiserror::Error;

use crate::values::DurationMinutes;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TimeError {
    #[error("booking_date must be a date written YYYY-MM-DD")]
    BadDate,
    #[error("booking_time must be a time written HH:MM")]
    BadTime,
    #[error("{0} does not exist in {1}: the clocks skip it (daylight saving change)")]
    Gap(String, String),
    #[error("unknown time zone {0:?}")]
    UnknownZone(String),
    #[error("the time is out of range")]
    OutOfRange,
    #[error(
        "{0} is outside the supported range: dates from {FIRST_YEAR}-01-01 to {LAST_YEAR}-12-31"
    )]
    DateOutOfRange(String),
}

/// The first year a date may name. Dates are the platform's calendar of
/// sessions, history and future alike; outside these years a value is a
/// typing mistake (`0001-01-01`, `9999-12-30`) and would reach the ends of
/// what the date library and the databases can represent.
pub const FIRST_YEAR: i16 = 2000;
/// The last year a date may name.
pub const LAST_YEAR: i16 = 2199;

/// A local date and time in the platform's zone, as the platform sells it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LocalSlot {
    pub date: Date,
    pub time: Time,
}

impl LocalSlot {
    /// Parses `YYYY-MM-DD` and `HH:MM` (seconds are accepted and must be zero
    /// or are kept, so values read back from a `time` column round-trip).
    pub fn parse(date: &str, time: &str) -> Result<Self, TimeError> {
        let date = parse_date(date)?;
        let time = parse_time(time)?;
        Ok(Self { date, time })
    }

    pub fn datetime(&self) -> DateTime {
        self.date.to_datetime(self.time)
    }

    /// The UTC window of a session of `duration` starting at this local time.
    /// A time the clocks skip is refused; a time that happens twice (clocks
    /// turned back) is the earlier of the two instants.
    pub fn window(&self, tz: &TimeZone, duration: DurationMinutes) -> Result<Window, TimeError> {
        let start = self.start(tz)?;
        let end = start
            .checked_add(SignedDuration::from_mins(i64::from(duration.get())))
            .map_err(|_| TimeError::OutOfRange)?;
        Ok(Window { start, end })
    }

    /// The instant this local time names, by the rules of [`Self::window`].
    pub fn start(&self, tz: &TimeZone) -> Result<Timestamp, TimeError> {
        let dt = self.datetime();
        let ambiguous = tz.to_ambiguous_zoned(dt);
        if let AmbiguousOffset::Gap { .. } = ambiguous.offset() {
            let zone = tz
                .iana_name()
                .unwrap_or("the platform's time zone")
                .to_owned();
            return Err(TimeError::Gap(
                format!("{} {}", self.date, self.time_hhmm()),
                zone,
            ));
        }
        Ok(ambiguous
            .earlier()
            .map_err(|_| TimeError::OutOfRange)?
            .timestamp())
    }

    pub fn time_hhmm(&self) -> String {
        format!("{:02}:{:02}", self.time.hour(), self.time.minute())
    }
}

pub fn parse_date(raw: &str) -> Result<Date, TimeError> {
    let raw = raw.trim();
    if raw.len() != 10 {
        return Err(TimeError::BadDate);
    }
    let date = raw.parse::<Date>().map_err(|_| TimeError::BadDate)?;
    if !(FIRST_YEAR..=LAST_YEAR).contains(&date.year()) {
        return Err(TimeError::DateOutOfRange(raw.to_owned()));
    }
    Ok(date)
}

pub fn parse_time(raw: &str) -> Result<Time, TimeError> {
    let raw = raw.trim();
    let ok_shape = matches!(raw.len(), 5 | 8) && raw.as_bytes()[2] == b':';
    // The parser reads a leap second (:60) as :59; a booking never starts
    // on one.
    if !ok_shape || raw.get(6..) == Some("60") {
        return Err(TimeError::BadTime);
    }
    raw.parse::<Time>().map_err(|_| TimeError::BadTime)
}

/// Looks up an IANA zone name (`Asia/Jakarta`, `UTC`).
pub fn zone(name: &str) -> Result<TimeZone, TimeError> {
    TimeZone::get(name).map_err(|_| TimeError::UnknownZone(name.to_owned()))
}

/// A half-open interval of time `[start, end)`: a session that ends at 15:00
/// and one that starts at 15:00 do not overlap.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Window {
    pub fn new(start: Timestamp, end: Timestamp) -> Self {
        debug_assert!(start < end, "a window must not be empty");
        Self { start, end }
    }

    pub fn overlaps(&self, other: &Window) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// The time a link is kept for this session: the session plus the idle
    /// buffer after it.
    pub fn busy(&self, buffer_minutes: u32) -> Window {
        Window {
            start: self.start,
            end: self.end + SignedDuration::from_mins(i64::from(buffer_minutes)),
        }
    }
}

impl fmt::Debug for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", self.start, self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mins(n: i64) -> DurationMinutes {
        DurationMinutes::new(n).unwrap()
    }

    #[test]
    fn a_slot_in_jakarta_becomes_utc() {
        let tz = zone("Asia/Jakarta").unwrap();
        let w = LocalSlot::parse("2025-12-01", "14:00")
            .unwrap()
            .window(&tz, mins(60))
            .unwrap();
        assert_eq!(w.start.to_string(), "2025-12-01T07:00:00Z");
        assert_eq!(w.end.to_string(), "2025-12-01T08:00:00Z");
    }

    #[test]
    fn sessions_cross_midnight() {
        let tz = zone("UTC").unwrap();
        let late = LocalSlot::parse("2025-12-01", "23:30")
            .unwrap()
            .window(&tz, mins(90))
            .unwrap();
        let early = LocalSlot::parse("2025-12-02", "00:30")
            .unwrap()
            .window(&tz, mins(60))
            .unwrap();
        assert_eq!(late.end.to_string(), "2025-12-02T01:00:00Z");
        assert!(late.overlaps(&early));
    }

    #[test]
    fn a_time_the_clocks_skip_is_refused() {
        let tz = zone("America/New_York").unwrap();
        let err = LocalSlot::parse("2026-03-08", "02:30")
            .unwrap()
            .window(&tz, mins(60))
            .unwrap_err();
        assert!(matches!(err, TimeError::Gap(..)), "{err:?}");
    }

    #[test]
    fn a_time_that_happens_twice_is_the_earlier() {
        let tz = zone("America/New_York").unwrap();
        let w = LocalSlot::parse("2026-11-01", "01:30")
            .unwrap()
            .window(&tz, mins(60))
            .unwrap();
        // 01:30 EDT (UTC-4), not 01:30 EST (UTC-5).
        assert_eq!(w.start.to_string(), "2026-11-01T05:30:00Z");
    }

    #[test]
    fn a_session_over_a_dst_change_lasts_its_real_duration() {
        let tz = zone("Europe/Berlin").unwrap();
        let w = LocalSlot::parse("2026-03-29", "01:30")
            .unwrap()
            .window(&tz, mins(60))
            .unwrap();
        assert_eq!(w.end.duration_since(w.start), SignedDuration::from_mins(60));
    }

    #[test]
    fn half_open_windows_touching_do_not_overlap() {
        let tz = zone("UTC").unwrap();
        let a = LocalSlot::parse("2025-12-01", "14:00")
            .unwrap()
            .window(&tz, mins(60))
            .unwrap();
        let b = LocalSlot::parse("2025-12-01", "15:00")
            .unwrap()
            .window(&tz, mins(60))
            .unwrap();
        assert!(!a.overlaps(&b));
        assert!(a.busy(10).overlaps(&b));
    }

    #[test]
    fn malformed_dates_and_times_are_refused() {
        assert_eq!(
            LocalSlot::parse("2025-13-01", "14:00"),
            Err(TimeError::BadDate)
        );
        assert_eq!(
            LocalSlot::parse("01-12-2025", "14:00"),
            Err(TimeError::BadDate)
        );
        assert_eq!(
            LocalSlot::parse("2025-12-01", "25:00"),
            Err(TimeError::BadTime)
        );
        assert_eq!(
            LocalSlot::parse("2025-12-01", "2pm"),
            Err(TimeError::BadTime)
        );
        assert!(LocalSlot::parse("2025-12-01", "14:00:00").is_ok());
    }

    #[test]
    fn dates_outside_the_supported_years_are_refused() {
        for far in [
            "0001-01-01",
            "1999-12-31",
            "2200-01-01",
            "9999-12-30",
            "9999-12-31",
        ] {
            assert_eq!(
                LocalSlot::parse(far, "23:30"),
                Err(TimeError::DateOutOfRange(far.to_owned())),
                "{far}"
            );
        }
        let tz = zone("Pacific/Kiritimati").unwrap();
        for edge in ["2000-01-01", "2199-12-31"] {
            let w = LocalSlot::parse(edge, "23:30")
                .unwrap()
                .window(&tz, mins(1440))
                .unwrap();
            assert!(w.start < w.end, "{edge}");
        }
    }
}
