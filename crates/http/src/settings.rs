//! What the HTTP layer bounds, and for whom it answers CORS preflights.
use std::time::Duration;

use axum::http::HeaderValue;

/// Limits against slow or greedy clients, and the browser origins that may
/// call the previous system's routes. The defaults suit a service behind a
/// proxy or facing the internet alike.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// A request's headers must arrive within this time of its first byte.
    pub header_timeout: Duration,
    /// A keep-alive connection with no request in flight is closed after
    /// this time.
    pub idle_timeout: Duration,
    /// A request (its body included) that takes longer is answered 503
    /// `request_timeout`.
    pub request_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Bytes of a request body; more is 413 `payload_too_large`.
    pub max_body_bytes: usize,
    /// Browser origins allowed to call the previous system's routes; none:
    /// no CORS headers at all.
    pub cors_origins: Vec<HeaderValue>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            max_body_bytes: 1024 * 1024,
            cors_origins: Vec::new(),
        }
    }
}

impl HttpSettings {
    /// Sets the CORS origins from their text (`https://app.example.com`),
    /// refusing one that cannot be a header value.
    pub fn allow_origins<'a>(
        &mut self,
        origins: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), String> {
        self.cors_origins = origins
            .into_iter()
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|o| {
                HeaderValue::from_str(o.trim_end_matches('/'))
                    .map_err(|_| format!("{o:?} is not an origin"))
            })
            .collect::<Result<_, _>>()?;
        Ok(())
    }
}
