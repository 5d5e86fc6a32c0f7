//! One meeting room, one link: spellings of one room are one link, through
//! the API and through plain SQL, and a database that already holds two
//! spellings is reported, never merged silently.
//!
//! One theme a file:
//!
//! - `spelling`: one room under every spelling, through the API and plain SQL; the database reads
//!   links as the service does.
//! - `safe`: unsafe links refused by plain SQL.
//! - `migrate`: `meetpool migrate`'s reports of rooms held twice (nothing changed) and of unsafe
//!   links (disabled, sessions moved, never sent to).
//! - `generated`: generated spellings of each room are one room in the database.
//!
//! This module holds the fixtures they share.
mod generated;
mod migrate;
mod safe;
mod spelling;

use meetpool_conformance::Backend;

const ROOM: &str = "https://meet.google.com/abc-defg-hij";

/// Spellings of `ROOM` that a careless operator might type.
const SPELLINGS: [&str; 6] = [
    "HTTPS://MEET.GOOGLE.COM/ABC-DEFG-HIJ",
    "https://meet.google.com/abc-defg-hij/",
    "https://meet.google.com:443/abc-defg-hij",
    "https://meet.google.com/abc-defg-hij?",
    "https://meet.google.com/abc-defg-hij#",
    "https://meet.google.com/abc-defg-hij?authuser=1",
];

/// Spellings operators used that each once entered the pool beside
/// `ROOM` (Meet) or `ZOOM` (Zoom, whose passcode the stored link keeps).
const MEET_SPELLINGS: [&str; 8] = [
    "https://meet.google.com./abc-defg-hij",
    "https://meet.google.com/%61bc-defg-hij",
    "https://meet.google.com/abc%2Ddefg%2Dhij",
    "https://meet.google.com/abcdefghij",
    "https://meet.google.com//abc-defg-hij",
    "https://g.co/meet/abc-defg-hij",
    "HTTPS://G.CO/meet/ABCDEFGHIJ?authuser=0",
    "https://meet.google.com.:443/abc%2ddefg-HIJ/?hs=122#x",
];
const ZOOM: &str = "https://zoom.us/j/123456789?pwd=abc";
const ZOOM_SPELLINGS: [&str; 6] = [
    "https://zoom.us/j/123456789",
    "https://us02web.zoom.us/j/123456789",
    "https://us02web.zoom.us/j/123456789?pwd=abc#success",
    "https://zoom.us/wc/join/123456789",
    "https://app.zoom.us/wc/123456789/join?fromPWA=1",
    "https://Zoom.us./j/%31%323456789?pwd=other",
];
/// Other providers' rooms, each with spellings the provider documents as
/// the same room.
const OTHER_ROOMS: [(&str, &[&str]); 5] = [
    (
        "https://teams.microsoft.com/l/meetup-join/19%3ameeting_NjE0ZmQ%40thread.v2/0?context=%7b%22Tid%22%3a%22t%22%7d",
        &[
            "https://teams.microsoft.com/l/meetup-join/19:meeting_NjE0ZmQ@thread.v2/0",
            "https://teams.microsoft.com/l/meetup-join/19%3Ameeting_NjE0ZmQ%40thread.v2",
        ],
    ),
    (
        "https://teams.live.com/meet/9876543210123?p=AbCdEf",
        &["https://teams.live.com/meet/9876543210123", "https://TEAMS.live.com/meet/9876543210123/?p=x"],
    ),
    (
        "https://whereby.com/TeamRoom",
        &["https://whereby.com/teamroom", "https://www.whereby.com/TEAMROOM?embed&displayName=x"],
    ),
    (
        "https://acme.whereby.com/standup-1",
        &["https://ACME.whereby.com/Standup-1/?roomKey=k"],
    ),
    (
        "https://meet.jit.si/WeeklyStandup",
        &["https://meet.jit.si/weeklystandup#config.startWithAudioMuted=true", "https://meet.jit.si./WEEKLYstandup?jwt=x"],
    ),
];

/// A plain SQL insert of `link` into the pool (SQLite needs the id and the
/// creation order that PostgreSQL fills in itself).
fn insert_sql(backend: Backend, i: usize, link: &str, enabled: bool) -> String {
    let link = link.replace('\'', "''");
    match backend {
        Backend::Postgres => format!(
            "INSERT INTO meeting_links_pool (meeting_link, is_available) VALUES ('{link}', {enabled})"
        ),
        Backend::Sqlite => format!(
            "INSERT INTO meeting_links_pool (id, seq, meeting_link, is_available) \
             VALUES ('00000000-0000-4000-8000-{i:012}', {}, '{link}', {})",
            1000 + i,
            i32::from(enabled)
        ),
    }
}
