//! Rooms at the provider: what meetpool does to a pooled room where it
//! lives (Google Meet, Zoom), when the provider is configured.
//!
//! - After a session ends plus a grace, its conference is ended, unless
//!   the next session on that room has begun: the next participants never
//!   walk in on the previous ones.
//! - Each pooled room is checked now and then; a room the provider no
//!   longer knows is disabled (an alert), and its coming sessions move as
//!   disabling a link moves them.
//! - When paid bookings wait because no link is free, a room is created
//!   (up to a cap) and added to the pool, which gives it to them.
//! - After a Meet session, who attended it is read from its conference
//!   record and put on the booking (`booking.attendance` for the platform).
//!
//! Nothing here runs inside a booking's transaction. What to do is queued
//! in the database (`provider_actions`) by periodic scans and carried out
//! afterwards by [`App::run_rooms`], so a provider that is down, slow or
//! rate-limiting delays only its own work, and a payment never waits for
//! it. See `queue` for the scans and the attempts, `actions` for what
//! each action does, `meet` and `zoom` for the calls, `oauth` for tokens.
mod actions;
mod config;
mod meet;
mod oauth;
mod queue;
mod zoom;

use std::sync::Arc;

use tokio::sync::Notify;

pub use config::{endpoint, GoogleConfig, RoomsConfig, ZoomConfig, DEFAULT_ROOMS_RETRY};
pub use queue::RoomCheck;

/// A meeting provider meetpool can reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    GoogleMeet,
    Zoom,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GoogleMeet => "google_meet",
            Self::Zoom => "zoom",
        }
    }

    /// The provider's name in words.
    pub fn title(self) -> &'static str {
        match self {
            Self::GoogleMeet => "Google Meet",
            Self::Zoom => "Zoom",
        }
    }
}

impl std::str::FromStr for Provider {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "google_meet" | "google-meet" | "meet" | "google" => Ok(Self::GoogleMeet),
            "zoom" => Ok(Self::Zoom),
            other => Err(format!("{other:?} is not a provider: google-meet or zoom")),
        }
    }
}

/// The provider of a pooled link and its room there: a Meet code
/// (`abc-mnop-xyz`) or a Zoom meeting number. `None` for a link of
/// another kind.
pub fn room_of(link: &str) -> Option<(Provider, String)> {
    let url = url::Url::parse(link).ok()?;
    let host = url.host_str()?.trim_end_matches('.').to_ascii_lowercase();
    let mut path = url.path_segments()?.filter(|s| !s.is_empty());
    if host == "meet.google.com" {
        // Only a standard code (`abc-mnop-xyz`, or without its dashes, as
        // Meet takes it too): anything else is left alone.
        let code: String = path.next()?.to_ascii_lowercase();
        if path.next().is_some() {
            return None;
        }
        let letters: String = code.chars().filter(|c| *c != '-').collect();
        let dashed = code.contains('-');
        if letters.len() != 10
            || !letters.chars().all(|c| c.is_ascii_lowercase())
            || (dashed && code.len() != 12)
            || (dashed && (code.as_bytes()[3] != b'-' || code.as_bytes()[8] != b'-'))
        {
            return None;
        }
        let code = format!("{}-{}-{}", &letters[..3], &letters[3..7], &letters[7..]);
        return Some((Provider::GoogleMeet, code));
    }
    if host == "zoom.us" || host.ends_with(".zoom.us") {
        if path.next()? != "j" {
            return None;
        }
        let id = path.next()?;
        if path.next().is_some() || id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        return Some((Provider::Zoom, id.to_owned()));
    }
    None
}

/// What ending a room's conference found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The conference under way was ended.
    Now,
    /// No conference was under way.
    NoConference,
    /// The provider no longer knows the room.
    Gone,
}

/// Who attended a session, as a platform reads it (`booking.attendance`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Attendance {
    /// Participants present at some time in the session's window.
    pub participants: usize,
    /// How long anyone was there: the union of the participants' spans.
    pub minutes: i64,
    pub first_joined_at: Option<jiff::Timestamp>,
    pub last_left_at: Option<jiff::Timestamp>,
    /// The conference records read.
    pub records: Vec<String>,
}

impl Attendance {
    /// From each participant's span (first join to last leave, within the
    /// session's window).
    pub(crate) fn from_spans(
        mut spans: Vec<(jiff::Timestamp, jiff::Timestamp)>,
        records: Vec<String>,
    ) -> Self {
        spans.sort();
        let mut covered = jiff::SignedDuration::ZERO;
        let mut current: Option<(jiff::Timestamp, jiff::Timestamp)> = None;
        for &(a, b) in &spans {
            current = match current {
                Some((s, e)) if a <= e => Some((s, e.max(b))),
                Some((s, e)) => {
                    covered += e.duration_since(s);
                    Some((a, b))
                }
                None => Some((a, b)),
            };
        }
        if let Some((s, e)) = current {
            covered += e.duration_since(s);
        }
        Self {
            participants: spans.len(),
            minutes: (covered.as_secs() + 59) / 60,
            first_joined_at: spans.iter().map(|s| s.0).min(),
            last_left_at: spans.iter().map(|s| s.1).max(),
            records,
        }
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "joined": self.participants > 0,
            "participants": self.participants,
            "minutes": self.minutes,
            "first_joined_at": self.first_joined_at.map(|t| t.to_string()),
            "last_left_at": self.last_left_at.map(|t| t.to_string()),
            "conference_records": self.records,
        })
    }
}

/// A room made at the provider.
#[derive(Clone, Debug)]
pub(crate) struct Created {
    pub meeting_link: String,
    /// The provider's name for it (`spaces/jQCFfuBOdN5z`, `meeting 85746065432`).
    pub reference: String,
}

/// The configured providers' clients, their tokens, and the runner's
/// wake-up (rung when a booking finds the pool exhausted).
pub(crate) struct Rooms {
    pub(crate) http: reqwest::Client,
    pub(crate) meet: Option<meet::Meet>,
    pub(crate) zoom: Option<zoom::Zoom>,
    pub(crate) wake: Arc<Notify>,
}

impl Rooms {
    pub(crate) fn new(config: &RoomsConfig) -> Self {
        Self {
            // A redirect is not followed: an API that answers with one is
            // not the API meetpool was configured with.
            http: reqwest::Client::builder()
                .timeout(config.timeout)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("HTTP client"),
            meet: config.google.as_ref().map(meet::Meet::new),
            zoom: config.zoom.as_ref().map(zoom::Zoom::new),
            wake: Arc::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{room_of, Provider};

    #[test]
    fn rooms_are_read_from_their_links() {
        for (link, room) in [
            (
                "https://meet.google.com/abc-defg-hij",
                Some((Provider::GoogleMeet, "abc-defg-hij")),
            ),
            (
                "https://meet.google.com/abcdefghij",
                Some((Provider::GoogleMeet, "abc-defg-hij")),
            ),
            (
                "https://zoom.us/j/123456789?pwd=abc",
                Some((Provider::Zoom, "123456789")),
            ),
            (
                "https://us02web.zoom.us/j/123456789",
                Some((Provider::Zoom, "123456789")),
            ),
            ("https://meet.google.com/landing", None),
            ("https://meet.google.com/abc-defghij", None),
            ("https://zoom.us/my/someone", None),
            ("https://evilzoom.us/j/1", None),
            ("https://whereby.com/room", None),
            ("https://meet.google.com/abc-defg-hij/x", None),
        ] {
            assert_eq!(
                room_of(link),
                room.map(|(p, r)| (p, r.to_owned())),
                "{link}"
            );
        }
    }
}
