//! Rooms at the provider: what meetpool does to pooled rooms at Google
//! Meet and Zoom, against local servers that answer as each provider's API
//! reference documents. Ending a session's conference, checking that rooms
//! still exist, creating a room when the pool runs out; never in a
//! payment's way, nothing lost across a restart.
//!
//! One theme a file:
//!
//! - `ending`: a session's conference ended once, after its end and grace, unless the next one
//!   began.
//! - `checks`: rooms gone at the provider disabled, other 404s not; the pool grown by a created
//!   room.
//! - `failures`: failing, hanging and rate-limiting providers, restarts, expired tokens.
//! - `zoom`: Zoom's end, check and create.
//! - `attendance`: a Meet session's attendance on its booking.
//!
//! This module holds the fixtures they share.
mod attendance;
mod checks;
mod ending;
mod failures;
mod zoom;

use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use meetpool_app::Config;
use meetpool_conformance::TestApp;

/// Providers configured with short waits: a round every 50 ms, calls
/// given 1 s (so an attempt cut short by a restart is taken again within
/// 4 s), retries every 100 ms for a while.
fn quick(c: &mut Config) {
    c.rooms.poll = Duration::from_millis(50);
    c.rooms.timeout = Duration::from_secs(1);
    c.rooms.retry = vec![Duration::from_millis(100); 100];
    c.rooms.check_every = None;
    c.rooms.end_grace = Some(Duration::from_millis(1));
    c.rooms.attendance_after = None;
}

/// The local date and time (the tests' zone is UTC) of `ago` before now.
fn at(ago: SignedDuration) -> (String, String) {
    let z = (Timestamp::now() - ago).to_zoned(TimeZone::UTC);
    (
        z.date().to_string(),
        format!("{:02}:{:02}", z.hour(), z.minute()),
    )
}

fn mins(n: i64) -> SignedDuration {
    SignedDuration::from_mins(n)
}

/// The outcomes of the provider actions on a booking's trail.
async fn provider_outcomes(t: &TestApp, booking: &str) -> Vec<String> {
    t.events(booking)
        .await
        .into_iter()
        .filter(|e| e.kind == "provider_action")
        .map(|e| {
            format!(
                "{}:{}",
                e.detail["action"].as_str().unwrap_or(""),
                e.detail["outcome"].as_str().unwrap_or("")
            )
        })
        .collect()
}
