//! Validated values. They are parsed once, at the edge (HTTP body, CLI
//! argument); past the edge they are known good.
use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::room::decode_unreserved;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ValueError {
    #[error("meeting_link {0}")]
    BadMeetingLink(&'static str),
    #[error("order_id must be 1 to 100 visible characters without spaces")]
    BadOrderId,
    #[error("duration must be a whole number of minutes from 1 to 1440")]
    BadDuration,
    #[error("{0} must not be empty")]
    Empty(&'static str),
    #[error("{0} must not contain control characters")]
    ControlCharacter(&'static str),
    #[error("{0} must be at most {1} characters long")]
    TooLong(&'static str, usize),
    #[error("price must not be negative")]
    NegativePrice,
    #[error("{0} must not contain invisible or direction-changing characters (zero-width spaces, bidirectional controls)")]
    Invisible(&'static str),
}

/// Characters that show as nothing, or reorder what follows: zero-width
/// spaces and joiners, the bidirectional marks, embeddings, overrides and
/// isolates, the byte order mark. In an identifier they let two different
/// values look the same on a screen.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// A meeting room's address: an absolute `https://` URL with a host, the
/// only kind of link a participant's browser can open safely, kept in its
/// canonical spelling so that one room is one value.
///
/// Canonical means: scheme and host in lower case, no trailing dot on the
/// host, no default port, `.` and `..` segments resolved, percent-encoded
/// unreserved characters decoded (RFC 3986 §6.2.2), no trailing `/`, no
/// empty `?` or `#`; for Google Meet, whose meeting codes ignore case and
/// dashes, `https://meet.google.com/` and the code in lower case
/// (`xxx-xxxx-xxx` for a ten-letter one) and nothing after it, since Meet's
/// query parameters (`authuser`, `hs`, ...) only steer the browser; a
/// `g.co/meet/` link is written as the Meet link it redirects to. Other
/// providers' links keep their query (a Zoom link's `pwd` lets participants
/// in): [`MeetingUrl::room`] says which room a link opens, and the pool's
/// uniqueness holds on the room, in the service and in the database.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct MeetingUrl(String);

impl MeetingUrl {
    pub const MAX_LEN: usize = crate::room::LINK_MAX;

    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        use ValueError::BadMeetingLink as Bad;
        if raw.len() > Self::MAX_LEN {
            return Err(Bad("is longer than 2048 characters"));
        }
        if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(Bad("must not contain spaces or control characters"));
        }
        if raw.contains('\\') {
            return Err(Bad("must not contain backslashes"));
        }
        // `https:host/x` parses as a URL too; a link is written in full.
        if !raw
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
        {
            return Err(Bad("must be an absolute https:// URL"));
        }
        if !crate::room::percent_well_formed(raw) {
            return Err(Bad(
                "must write every % as a percent-encoded octet (%25 for %)",
            ));
        }
        let mut url = url::Url::parse(raw).map_err(|_| Bad("is not a valid URL"))?;
        // `https:///x` parses with `x` as its host; a link names its host.
        if raw[8..].starts_with(['/', '?', '#']) || url.host_str().is_none_or(str::is_empty) {
            return Err(Bad("must name a host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Bad("must not contain a user name or password"));
        }
        // The parser has lower-cased the scheme and host, dropped :443 and
        // resolved dot segments. `meet.google.com.` is `meet.google.com`.
        let host = url.host_str().unwrap_or_default().to_owned();
        if host.ends_with('.') {
            let bare = host.trim_end_matches('.');
            if bare.is_empty() || url.set_host(Some(bare)).is_err() {
                return Err(Bad("must name a host"));
            }
        }
        let host = url.host_str().unwrap_or_default().to_owned();
        let path = decode_unreserved(url.path(), true);
        url.set_path(&path);
        if let Some(q) = url.query().map(|q| decode_unreserved(q, true)) {
            url.set_query(Some(&q).filter(|q| !q.is_empty()).map(String::as_str));
        }
        if let Some(f) = url.fragment().map(|f| decode_unreserved(f, true)) {
            url.set_fragment(Some(&f).filter(|f| !f.is_empty()).map(String::as_str));
        }
        let meet_code = match host.as_str() {
            "meet.google.com" => Some(url.path().to_owned()),
            "g.co" if url.path().starts_with("/meet/") => Some(url.path()[5..].to_owned()),
            _ => None,
        };
        let canonical = if let Some(code) = meet_code {
            let code = code.to_lowercase();
            crate::room::room_of(&format!("https://meet.google.com{code}"))
        } else {
            let trimmed = url.path().trim_end_matches('/').to_owned();
            url.set_path(&trimmed);
            let bare_host = url.path() == "/" && url.query().is_none() && url.fragment().is_none();
            let mut canonical = String::from(url);
            // An empty path still serialises as `/`: `https://host/` -> `https://host`.
            if bare_host {
                canonical.pop();
            }
            canonical
        };
        // What the database would refuse (`|`, `{`, ... which the parser
        // leaves as they are) is refused here first.
        if !crate::room::is_safe_link(&canonical) {
            return Err(Bad(
                "must be written with the characters a URL may hold (percent-encode others)",
            ));
        }
        // A spelling that the database, reading it as written, would take
        // for another room than its canonical form (a host written
        // `127.1`, a port `0443`) is refused rather than stored: the
        // service and the database always agree on a link's room.
        if crate::room::is_safe_link(raw)
            && crate::room::room_of(raw) != crate::room::room_of(&canonical)
        {
            return Err(Bad("must name its host and port plainly"));
        }
        Ok(Self(canonical))
    }

    /// The meeting room this link opens ([`crate::room::room_of`]): the
    /// same for every spelling of one room, as the database derives it.
    pub fn room(&self) -> String {
        crate::room::room_of(&self.0)
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
            && raw.chars().all(|c| {
                c.is_ascii_graphic() || (!c.is_ascii() && !c.is_whitespace() && !is_invisible(c))
            });
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

/// The most characters a one-line text field (a name, an id) may hold.
pub const LINE_MAX: usize = 200;
/// The most characters an operator's notes may hold.
pub const NOTES_MAX: usize = 2000;

/// Trims a required one-line text field, and refuses it when empty, longer
/// than [`LINE_MAX`] characters, or holding a control character (a NUL
/// byte, which PostgreSQL cannot store, included).
pub fn required_text(field: &'static str, raw: &str) -> Result<String, ValueError> {
    let t = raw.trim();
    if t.is_empty() {
        return Err(ValueError::Empty(field));
    }
    checked_text(field, t, LINE_MAX, false)
}

/// An identifier the platform gives (a user's, an expert's): a required
/// one-line text that must also read as what it is, so no invisible or
/// direction-changing character.
pub fn identifier(field: &'static str, raw: &str) -> Result<String, ValueError> {
    let t = required_text(field, raw)?;
    if t.chars().any(is_invisible) {
        return Err(ValueError::Invisible(field));
    }
    Ok(t)
}

/// An optional free-text field of at most `max` characters; with
/// `multiline`, line breaks and tabs are allowed, no other control
/// character is. Empty after trimming means none.
pub fn optional_text(
    field: &'static str,
    raw: Option<&str>,
    max: usize,
    multiline: bool,
) -> Result<Option<String>, ValueError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => checked_text(field, t, max, multiline).map(Some),
    }
}

fn checked_text(
    field: &'static str,
    t: &str,
    max: usize,
    multiline: bool,
) -> Result<String, ValueError> {
    let allowed = |c: char| multiline && matches!(c, '\n' | '\r' | '\t');
    if t.chars().any(|c| c.is_control() && !allowed(c)) {
        return Err(ValueError::ControlCharacter(field));
    }
    if t.chars().count() > max {
        return Err(ValueError::TooLong(field, max));
    }
    Ok(t.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meeting_urls_must_be_absolute_https_without_credentials() {
        assert!(MeetingUrl::parse("https://meet.google.com/kcw-ebey-pqu").is_ok());
        assert!(MeetingUrl::parse("https://zoom.us/j/123?pwd=abc").is_ok());
        for bad in [
            "http://meet.google.com/x",
            "meet.google.com/x",
            "",
            "https://",
            "https:meet.google.com/x",
            "https:///meet.google.com/x",
            "ftp://x.y",
            "javascript:alert(1)",
            "https://user:pw@meet.google.com/x",
            "https://user@meet.google.com/x",
            "https://meet.google.com/a b",
            " https://meet.google.com/x",
            "https://meet.google.com/x\n",
            "https://meet.google.com/x\0",
            "https://meet.google.com\\x",
            "https://meet.google.com/x\u{85}",
        ] {
            assert!(
                matches!(MeetingUrl::parse(bad), Err(ValueError::BadMeetingLink(_))),
                "{bad:?}"
            );
        }
        let long = format!("https://x.example/{}", "a".repeat(MeetingUrl::MAX_LEN));
        assert!(MeetingUrl::parse(&long).is_err());
    }

    #[test]
    fn one_room_has_one_spelling() {
        let meet = "https://meet.google.com/abc-defg-hij";
        for spelling in [
            "https://meet.google.com/abc-defg-hij",
            "HTTPS://MEET.GOOGLE.COM/ABC-DEFG-HIJ",
            "https://meet.google.com/abc-defg-hij/",
            "https://meet.google.com:443/abc-defg-hij",
            "https://meet.google.com/abc-defg-hij?",
            "https://meet.google.com/abc-defg-hij#",
            "https://meet.google.com/abc-defg-hij?authuser=1",
            "https://Meet.Google.com/Abc-Defg-Hij/?#",
        ] {
            assert_eq!(
                MeetingUrl::parse(spelling).unwrap().as_str(),
                meet,
                "{spelling}"
            );
        }
        // Elsewhere only the parts that never name another room are folded:
        // a path's case and a real query are kept.
        for (spelling, canonical) in [
            (
                "https://Zoom.US:443/j/123?pwd=AbC",
                "https://zoom.us/j/123?pwd=AbC",
            ),
            ("https://zoom.us/j/123/?", "https://zoom.us/j/123"),
            ("https://whereby.com/MyRoom#", "https://whereby.com/MyRoom"),
            ("https://rooms.example/", "https://rooms.example"),
            (
                "https://rooms.example:8443/r",
                "https://rooms.example:8443/r",
            ),
            ("https://rooms.example/?a=1", "https://rooms.example/?a=1"),
        ] {
            assert_eq!(MeetingUrl::parse(spelling).unwrap().as_str(), canonical);
        }
        assert_ne!(
            MeetingUrl::parse("https://zoom.us/j/123").unwrap(),
            MeetingUrl::parse("https://zoom.us/j/124").unwrap()
        );
    }

    /// Spellings operators used, each of which once entered the pool
    /// beside its room.
    #[test]
    fn every_spelling_of_a_room_is_that_room() {
        let meet = "https://meet.google.com/abc-defg-hij";
        for spelling in [
            "https://meet.google.com./abc-defg-hij",
            "https://meet.google.com/%61bc-defg-hij",
            "https://meet.google.com/abc%2Ddefg%2Dhij",
            "https://meet.google.com/abc%2ddefg%2dhij",
            "https://meet.google.com/abcdefghij",
            "https://meet.google.com/ABCDEFGHIJ",
            "https://meet.google.com//abc-defg-hij",
            "https://meet.google.com/./abc-defg-hij",
            "https://meet.google.com/x/../abc-defg-hij",
            "https://g.co/meet/abc-defg-hij",
            "https://G.CO/meet/abcdefghij?authuser=0",
            "https://meet.google.com.:443/abc-defg-hij/?hs=122#x",
        ] {
            let url = MeetingUrl::parse(spelling).unwrap();
            assert_eq!(url.as_str(), meet, "{spelling}");
            assert_eq!(url.room(), meet, "{spelling}");
        }
        // Zoom: the meeting number is the room; the link keeps its passcode.
        let zoom = "https://zoom.us/j/123456789";
        for (spelling, stored) in [
            (
                "https://zoom.us/j/123456789?pwd=abc",
                "https://zoom.us/j/123456789?pwd=abc",
            ),
            ("https://zoom.us/j/123456789", zoom),
            (
                "https://us02web.zoom.us/j/123456789",
                "https://us02web.zoom.us/j/123456789",
            ),
            (
                "https://us02web.zoom.us/j/123456789?pwd=Xy%7A#success",
                "https://us02web.zoom.us/j/123456789?pwd=Xyz#success",
            ),
            (
                "https://zoom.us/wc/join/123456789",
                "https://zoom.us/wc/join/123456789",
            ),
            (
                "https://app.zoom.us/wc/123456789/join?fromPWA=1",
                "https://app.zoom.us/wc/123456789/join?fromPWA=1",
            ),
            (
                "https://zoom.us/s/123456789?zak=x",
                "https://zoom.us/s/123456789?zak=x",
            ),
        ] {
            let url = MeetingUrl::parse(spelling).unwrap();
            assert_eq!(url.as_str(), stored, "{spelling}");
            assert_eq!(url.room(), zoom, "{spelling}");
        }
        assert_ne!(
            MeetingUrl::parse("https://zoom.us/j/123456789")
                .unwrap()
                .room(),
            MeetingUrl::parse("https://zoom.us/j/123456780")
                .unwrap()
                .room()
        );
        assert_eq!(
            MeetingUrl::parse("https://acme.zoom.us/my/Jane.Doe?pwd=1")
                .unwrap()
                .room(),
            "https://zoom.us/my/jane.doe"
        );
        // Teams: the meeting's thread, or its id.
        let thread = "https://teams.microsoft.com/l/meetup-join/19:meeting_nje0@thread.v2";
        for spelling in [
            "https://teams.microsoft.com/l/meetup-join/19%3ameeting_NjE0%40thread.v2/0?context=%7b%22Tid%22%3a%22t%22%7d",
            "https://teams.microsoft.com/l/meetup-join/19%3Ameeting_NjE0%40thread.v2/0",
            "https://teams.microsoft.com/l/meetup-join/19:meeting_NjE0@thread.v2",
        ] {
            assert_eq!(MeetingUrl::parse(spelling).unwrap().room(), thread, "{spelling}");
        }
        assert_eq!(
            MeetingUrl::parse("https://teams.live.com/meet/9876543210?p=AbCd")
                .unwrap()
                .room(),
            "https://teams.live.com/meet/9876543210"
        );
        // Whereby and Jitsi: room names ignore case.
        for (a, b) in [
            (
                "https://whereby.com/MyRoom",
                "https://www.whereby.com/myroom?embed",
            ),
            (
                "https://acme.whereby.com/Room-1?roomKey=k",
                "https://ACME.whereby.com/room-1/",
            ),
            (
                "https://meet.jit.si/TeamStandup",
                "https://meet.jit.si/teamstandup#config.startWithAudioMuted=true",
            ),
        ] {
            assert_eq!(
                MeetingUrl::parse(a).unwrap().room(),
                MeetingUrl::parse(b).unwrap().room()
            );
        }
        // Elsewhere the query names the room, and other hosts are other rooms.
        assert_ne!(
            MeetingUrl::parse("https://rooms.example/r?id=1")
                .unwrap()
                .room(),
            MeetingUrl::parse("https://rooms.example/r?id=2")
                .unwrap()
                .room()
        );
        assert_ne!(
            MeetingUrl::parse("https://meet.google.com/abc-defg-hij")
                .unwrap()
                .room(),
            MeetingUrl::parse("https://meet.google.com/abc-defg-hik")
                .unwrap()
                .room()
        );
        assert_eq!(
            MeetingUrl::parse("https://rooms.example//r/%7Ex/")
                .unwrap()
                .room(),
            "https://rooms.example/r/~x"
        );
    }

    #[test]
    fn only_safe_links_pass() {
        use crate::room::is_safe_link;
        for good in [
            "https://meet.google.com/abc-defg-hij",
            "HTTPS://zoom.us/j/1?pwd=a%2Fb",
            "https://[::1]:8443/r",
            "https://rooms.example/a;b=c/(x)*!$&'+,",
        ] {
            assert!(is_safe_link(good), "{good}");
        }
        for bad in [
            "javascript:alert(1)",
            "JAVASCRIPT:alert(1)//https://x",
            "http://meet.google.com/x",
            "data:text/html,<script>",
            "https://",
            "https:///x",
            "https://?x",
            "https://:443/x",
            "https://user@meet.google.com/x",
            "https://a%2Fb.example/x",
            "https://x.example/a b",
            "https://x.example/\"<b>",
            "https://x.example/%zz",
            "https://x.example/%4",
            "https://x.example/a/../b",
            "https://x.example/a/%2e/b",
            "https://x.example/é",
            "https://x.example/{x}",
        ] {
            assert!(!is_safe_link(bad), "{bad}");
            assert!(
                MeetingUrl::parse(bad).map_or(true, |u| is_safe_link(u.as_str())),
                "{bad}"
            );
        }
        // What the service stores, the database accepts.
        assert_eq!(
            MeetingUrl::parse("https://x.example/é/a/../b")
                .unwrap()
                .as_str(),
            "https://x.example/%C3%A9/b"
        );
        for refused in [
            "https://x.example/a|b",
            "https://x.example/?q=^",
            "https://x.example/%zz",
        ] {
            assert!(MeetingUrl::parse(refused).is_err(), "{refused}");
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
        assert!(OrderId::parse("ORDER-١٠٠١").is_ok());
        for lookalike in [
            "ORDER\u{202E}1001",
            "ORDER\u{200B}1001",
            "\u{FEFF}ORDER",
            "A\u{2066}B",
            "A\u{061C}B",
        ] {
            assert_eq!(
                OrderId::parse(lookalike),
                Err(ValueError::BadOrderId),
                "{lookalike:?}"
            );
        }
    }

    #[test]
    fn identifiers_refuse_invisible_characters() {
        assert_eq!(identifier("user_id", " user-1 ").unwrap(), "user-1");
        assert_eq!(identifier("user_id", "أحمد").unwrap(), "أحمد");
        for bad in ["user\u{200F}1", "user\u{202D}1", "\u{200D}"] {
            assert_eq!(
                identifier("user_id", bad),
                Err(ValueError::Invisible("user_id")),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn durations_are_one_minute_to_one_day() {
        assert!(DurationMinutes::new(1).is_ok());
        assert!(DurationMinutes::new(1440).is_ok());
        assert_eq!(DurationMinutes::new(0), Err(ValueError::BadDuration));
        assert_eq!(DurationMinutes::new(1441), Err(ValueError::BadDuration));
    }

    #[test]
    fn text_fields_refuse_control_characters_and_excess() {
        assert_eq!(required_text("user_id", " u-1 ").unwrap(), "u-1");
        for bad in ["a\0b", "a\u{7}", "line\nbreak", "\u{1b}[31m"] {
            assert_eq!(
                required_text("user_id", bad),
                Err(ValueError::ControlCharacter("user_id")),
                "{bad:?}"
            );
        }
        assert_eq!(
            required_text("user_id", &"x".repeat(LINE_MAX + 1)),
            Err(ValueError::TooLong("user_id", LINE_MAX))
        );
        assert_eq!(
            optional_text("notes", Some("two\nlines\ttab"), NOTES_MAX, true).unwrap(),
            Some("two\nlines\ttab".to_owned())
        );
        assert_eq!(
            optional_text("notes", Some("nul\0"), NOTES_MAX, true),
            Err(ValueError::ControlCharacter("notes"))
        );
        assert_eq!(
            optional_text("notes", Some("  "), NOTES_MAX, true),
            Ok(None)
        );
    }
}
