//! Failed sign-ins counted per client address: after [`MAX_FAILURES`]
//! wrong admin tokens within [`WINDOW`], the address is answered 429 with
//! `Retry-After` until the window has passed, on the dashboard's sign-in
//! and on the API's bearer check alike. A correct token costs nothing
//! more: only failures are counted, and nothing ever waits.
//!
//! In process, per replica: a guesser spread over N replicas gets N times
//! the attempts, which against a 16-character token changes nothing.
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::refusal;

/// Wrong tokens an address may send within [`WINDOW`].
pub const MAX_FAILURES: u32 = 10;
/// How long failures are remembered, from the first of them.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most; beyond, the ones whose window has passed
/// are forgotten first, and new ones are not counted while none has.
const MAX_ADDRESSES: usize = 65_536;

/// Where a request came from, as the limit counts it: an IPv6 client is
/// its /64 (one host's usual allocation, which it can walk freely).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Client(Option<IpAddr>);

impl Client {
    pub fn of(request: &Request) -> Self {
        Self::from_extensions(request.extensions())
    }

    pub fn from_extensions(extensions: &axum::http::Extensions) -> Self {
        let ip = extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| match addr.ip() {
                IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                    Some(v4) => IpAddr::V4(v4),
                    None => {
                        let s = v6.segments();
                        IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
                    }
                },
                v4 => v4,
            });
        Self(ip)
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self::from_extensions(&parts.extensions))
    }
}

struct Failures {
    since: Instant,
    count: u32,
}

#[derive(Default)]
pub struct Attempts {
    failures: Mutex<HashMap<Client, Failures>>,
}

impl Attempts {
    /// How long `client` must still wait, if it has failed too often.
    pub fn blocked(&self, client: Client) -> Option<Duration> {
        let now = Instant::now();
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let f = failures.get(&client)?;
        let left = WINDOW.checked_sub(now.duration_since(f.since))?;
        (f.count >= MAX_FAILURES && !left.is_zero()).then_some(left)
    }

    /// Counts a wrong token sent by `client`.
    pub fn failed(&self, client: Client) {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= MAX_ADDRESSES && !failures.contains_key(&client) {
            failures.retain(|_, f| now.duration_since(f.since) < WINDOW);
            if failures.len() >= MAX_ADDRESSES {
                return;
            }
        }
        let f = failures.entry(client).or_insert(Failures {
            since: now,
            count: 0,
        });
        if now.duration_since(f.since) >= WINDOW {
            *f = Failures {
                since: now,
                count: 0,
            };
        }
        f.count = f.count.saturating_add(1);
    }
}

/// `Retry-After` in whole seconds, rounded up.
pub fn retry_after(left: Duration) -> HeaderValue {
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    HeaderValue::from(secs.max(1))
}

/// The API's answer to an address that failed too often.
pub fn too_many(left: Duration) -> Response {
    let mut response = refusal(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
        format!(
            "more than {MAX_FAILURES} wrong admin tokens from this address within {} s: try again later",
            WINDOW.as_secs()
        ),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, retry_after(left));
    response.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_its_failures_and_others_are_not() {
        let attempts = Attempts::default();
        let one = Client(Some("10.0.0.1".parse().unwrap()));
        let other = Client(Some("10.0.0.2".parse().unwrap()));
        for _ in 0..MAX_FAILURES - 1 {
            attempts.failed(one);
        }
        assert_eq!(attempts.blocked(one), None);
        attempts.failed(one);
        let left = attempts.blocked(one).expect("blocked");
        assert!(left <= WINDOW && left > WINDOW - Duration::from_secs(5));
        assert_eq!(attempts.blocked(other), None);
        assert_eq!(retry_after(Duration::from_millis(59_001)), "60");
    }
}
