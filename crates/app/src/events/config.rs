//! How outbound events are delivered: where, signed with what, retried
//! when, waited for how long.
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::sign::decode_secret;

/// The Standard Webhooks recommendation, a little over 27 hours in all.
pub const DEFAULT_RETRY_SCHEDULE: &str = "5s,5m,30m,2h,5h,10h,10h";
pub const DEFAULT_TIMEOUT: &str = "10s";
/// How long delivered events stay listed.
pub const DEFAULT_KEEP: &str = "30d";
/// How many attempts one process makes at once: enough to keep up with
/// thousands of events a second nearby, few enough for a small endpoint
/// (a single-threaded server, a function with a concurrency limit).
pub const DEFAULT_CONCURRENCY: usize = 16;

#[derive(Clone)]
pub struct EventsConfig {
    pub url: url::Url,
    key: Arc<[u8]>,
    /// The waits after each failed attempt; once spent, the event has
    /// failed for good.
    pub retry: Vec<Duration>,
    /// The most one attempt may take, answer included.
    pub timeout: Duration,
    /// How often undelivered events are looked for besides the wake-up
    /// after each commit (another replica's, retries coming due).
    pub poll: Duration,
    /// How long a delivered event stays in the log; failed and pending
    /// ones stay until they are delivered.
    pub keep: Duration,
    /// The most attempts under way at once, in this process (at least 1).
    pub concurrency: usize,
}

impl fmt::Debug for EventsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventsConfig")
            .field("url", &self.url.as_str())
            .field("key", &"[redacted]")
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .field("keep", &self.keep)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

impl EventsConfig {
    /// Events to `url`, signed with the `whsec_...` `secret`, with the
    /// default schedule and timeout.
    pub fn new(url: &str, secret: &str) -> Result<Self, String> {
        let parsed =
            url::Url::parse(url).map_err(|e| format!("MEETPOOL_EVENTS_URL {url:?}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!(
                "MEETPOOL_EVENTS_URL must be an http or https URL, not {url}"
            ));
        }
        Ok(Self {
            url: parsed,
            key: decode_secret(secret)?.into(),
            retry: parse_schedule(DEFAULT_RETRY_SCHEDULE)?,
            timeout: parse_duration(DEFAULT_TIMEOUT)?,
            poll: Duration::from_secs(1),
            keep: parse_duration(DEFAULT_KEEP)?,
            concurrency: DEFAULT_CONCURRENCY,
        })
    }

    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }

    /// How long the whole schedule lasts.
    pub fn retry_span(&self) -> Duration {
        self.retry.iter().sum()
    }
}

/// `5s,5m,30m,2h`: the waits after each failed attempt.
pub fn parse_schedule(s: &str) -> Result<Vec<Duration>, String> {
    s.split(',')
        .map(|part| parse_duration(part.trim()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("retry schedule {s:?}: {e}"))
}

/// `250ms`, `5s`, `30m`, `2h` or `1d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 5s, 30m or 2h"))?;
    let secs = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("{s:?} is not a duration such as 5s, 30m or 2h")),
    };
    Ok(Duration::from_secs(n.saturating_mul(secs)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_default_schedule_retries_for_more_than_a_day() {
        let c = EventsConfig::new(
            "https://platform.example/hooks",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        )
        .unwrap();
        assert!(c.retry_span() > Duration::from_secs(24 * 3600));
        assert!(!format!("{c:?}").contains("MfKQ"));
    }

    #[test]
    fn durations_and_schedules_parse_or_say_why_not() {
        assert_eq!(
            parse_schedule("250ms, 5s,2m,1h,1d").unwrap(),
            [250, 5_000, 120_000, 3_600_000, 86_400_000].map(Duration::from_millis)
        );
        for bad in ["", "5", "5x", "s", "5s,,1m", "-1s"] {
            assert!(parse_schedule(bad).is_err(), "{bad}");
        }
        assert!(EventsConfig::new("ftp://x", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
    }
}
