//! What participants reach through a booking's join URL: the meeting, a
//! page saying when it opens or why it does not, and the session as a
//! calendar file that stays right when the session moves.
use chrono::{DateTime, Utc};
use icalendar::{Calendar, Component, Event, EventLike, EventStatus};
use jiff::Timestamp;
use meetpool_domain::{join, Booking, Join, PaymentStatus};

use crate::bookings::not_found;
use crate::{App, Result};

/// A participant's view of a booking at one moment.
#[derive(Clone, Debug)]
pub struct JoinView {
    pub join: Join,
    /// The session's start and end in the platform's time zone.
    pub starts: jiff::Zoned,
    pub ends: jiff::Zoned,
    /// The session type's name ("Consultation").
    pub session: String,
    pub calendar_url: String,
}

impl App {
    /// Where a booking's participants join: `{public_url}/j/{token}`.
    pub fn join_url(&self, booking: &Booking) -> String {
        format!(
            "{}/j/{}",
            self.config().public_url.trim_end_matches('/'),
            booking.join_token
        )
    }

    /// What the join URL with `token` answers now.
    pub async fn join_view(&self, token: &str) -> Result<JoinView> {
        let booking = self.booking_by_join_token(token).await?;
        let tz = &self.config().timezone;
        Ok(JoinView {
            join: join(&booking, Timestamp::now(), self.config().join_opens_minutes),
            starts: booking.window.start.to_zoned(tz.clone()),
            ends: booking.window.end.to_zoned(tz.clone()),
            session: self.session_name(&booking).await,
            calendar_url: format!("{}.ics", self.join_url(&booking)),
        })
    }

    /// The session as an RFC 5545 calendar file: one event with a UID stable
    /// for the booking, UTC times, and the join URL (never the raw link) as
    /// its location, cancelled once the booking is no longer paid or
    /// pending.
    pub async fn calendar(&self, token: &str) -> Result<String> {
        let booking = self.booking_by_join_token(token).await?;
        let join_url = self.join_url(&booking);
        let summary = self.session_name(&booking).await;
        let status = match booking.payment_status {
            PaymentStatus::Paid => EventStatus::Confirmed,
            PaymentStatus::Pending => EventStatus::Tentative,
            _ => EventStatus::Cancelled,
        };
        let event = Event::new()
            .uid(&format!("{}@meetpool", booking.id))
            .sequence(booking.reschedules)
            .timestamp(utc(booking.updated_at))
            .starts(utc(booking.window.start))
            .ends(utc(booking.window.end))
            .summary(&summary)
            .description(&format!("Join the session: {join_url}"))
            .location(&join_url)
            .url(&join_url)
            .status(status)
            .done();
        // RFC 5545's PRODID names the product that made the file: this
        // one, not the library (whose default is its own name).
        let mut calendar = Calendar::empty();
        for (name, value) in [
            ("VERSION", "2.0"),
            (
                "PRODID",
                concat!("-//meetpool//meetpool ", env!("CARGO_PKG_VERSION"), "//EN"),
            ),
            ("CALSCALE", "GREGORIAN"),
            ("METHOD", "PUBLISH"),
        ] {
            calendar.append_property(icalendar::Property::new(name, value));
        }
        Ok(calendar.push(event).done().to_string())
    }

    async fn booking_by_join_token(&self, token: &str) -> Result<Booking> {
        self.store()
            .booking_by_join_token(token)
            .await
            .map_err(not_found("booking"))
    }

    /// The session type's name; a generic one if it cannot be read (the
    /// page and the file are still worth serving).
    async fn session_name(&self, booking: &Booking) -> String {
        match self.store().session_type(booking.session_type_id).await {
            Ok(st) => st.name,
            Err(_) => "Session".to_owned(),
        }
    }
}

fn utc(t: Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp(t.as_second(), t.subsec_nanosecond().unsigned_abs())
        .unwrap_or_default()
}
