//! Validated values. They are parsed once, at the edge (HTTP body, CLI
//! argument); past the edge they are known good.
use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ValueError {
    #[error("meeting_link must be an absolute https URL with a host")]
    NotHttpsUrl,
    #[error("order_id must be 1 to 100 visible characters without spaces")]
    BadOrderId,
    #[error("duration must be a whole number of minutes from 1 to 1440")]
    BadDuration,
    #[error("{0} must not be empty")]
    Empty(&'static str),
    #[error("price must not be negative")]
    NegativePrice,
}

/// An absolute `https://` URL with a host: the only kind of meeting link a
/// participant's browser can open safely.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct MeetingUrl(String);

impl MeetingUrl {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let raw = raw.trim();
        if raw.len() > 2048 {
            return Err(ValueError::NotHttpsUrl);
        }
        let url = url::Url::parse(raw).map_err(|_| ValueError::NotHttpsUrl)?;
        if url.scheme() != "https" || url.host_str().is_none_or(str::is_empty) {
            return Err(ValueError::NotHttpsUrl);
        }
        // Keep the operator's spelling (no trailing slash added): the link is
        // shown to people and compared for uniqueness as typed.
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MeetingUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for MeetingUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MeetingUrl({})", self.0)
    }
}

impl<'de> Deserialize<'de> for MeetingUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The platform's order id, also Midtrans' `order_id`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Debug)]
#[serde(transparent)]
pub struct OrderId(String);

impl OrderId {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let ok = !raw.is_empty()
            && raw.chars().count() <= 100
            && raw
                .chars()
                .all(|c| c.is_ascii_graphic() || (!c.is_ascii() && !c.is_whitespace()));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValueError::BadOrderId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A session length in whole minutes, 1..=1440.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize)]
#[serde(transparent)]
pub struct DurationMinutes(i32);

impl DurationMinutes {
    pub fn new(minutes: i64) -> Result<Self, ValueError> {
        if (1..=1440).contains(&minutes) {
            Ok(Self(minutes as i32))
        } else {
            Err(ValueError::BadDuration)
        }
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

/// Trims a required free-text field and refuses it when empty.
pub fn required_text(field: &'static str, raw: &str) -> Result<String, ValueError> {
    let t = raw.trim();
    if t.is_empty() {
        Err(ValueError::Empty(field))
    } else {
        Ok(t.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meeting_urls_must_be_absolute_https() {
        assert!(MeetingUrl::parse("https://meet.google.com/kcw-ebey-pqu").is_ok());
        assert!(MeetingUrl::parse("https://zoom.us/j/123?pwd=abc").is_ok());
        for bad in [
            "http://meet.google.com/x",
            "meet.google.com/x",
            "",
            "https://",
            "ftp://x.y",
            "javascript:alert(1)",
        ] {
            assert_eq!(
                MeetingUrl::parse(bad),
                Err(ValueError::NotHttpsUrl),
                "{bad}"
            );
        }
    }

    #[test]
    fn order_ids_are_visible_text() {
        assert!(OrderId::parse("ORDER-1001").is_ok());
        assert!(OrderId::parse("TEST-1-8b7c").is_ok());
        assert_eq!(OrderId::parse(""), Err(ValueError::BadOrderId));
        assert_eq!(OrderId::parse("has space"), Err(ValueError::BadOrderId));
        assert_eq!(
            OrderId::parse(&"x".repeat(101)),
            Err(ValueError::BadOrderId)
        );
    }

    #[test]
    fn durations_are_one_minute_to_one_day() {
        assert!(DurationMinutes::new(1).is_ok());
        assert!(DurationMinutes::new(1440).is_ok());
        assert_eq!(DurationMinutes::new(0), Err(ValueError::BadDuration));
        assert_eq!(DurationMinutes::new(1441), Err(ValueError::BadDuration));
    }
}
