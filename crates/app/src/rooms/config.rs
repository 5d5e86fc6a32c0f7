//! Which providers meetpool reaches, with which credentials, and what it
//! does to their rooms.
use std::time::Duration;

use secrecy::SecretString;

use super::Provider;

/// The retries of a provider action that failed for a reason that may
/// pass (the provider down, slow or rate-limiting): about 9 hours in all.
pub const DEFAULT_ROOMS_RETRY: &str = "30s,2m,10m,1h,2h,6h";

/// Google Meet: OAuth 2.0 user credentials of the account that owns the
/// rooms (a refresh token granted `meetings.space.created`).
#[derive(Clone, Debug)]
pub struct GoogleConfig {
    pub client_id: String,
    pub client_secret: SecretString,
    pub refresh_token: SecretString,
    pub token_url: url::Url,
    /// The Meet REST API's base, `https://meet.googleapis.com`.
    pub api: url::Url,
}

/// Zoom: a Server-to-Server OAuth app of the account that owns the rooms.
#[derive(Clone, Debug)]
pub struct ZoomConfig {
    pub account_id: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub token_url: url::Url,
    /// The REST API's base, `https://api.zoom.us`.
    pub api: url::Url,
}

/// What meetpool does to rooms at their providers: nothing unless a
/// provider is configured.
#[derive(Clone, Debug)]
pub struct RoomsConfig {
    pub google: Option<GoogleConfig>,
    pub zoom: Option<ZoomConfig>,
    /// How long after a session ends its conference is ended (`None`:
    /// never).
    pub end_grace: Option<Duration>,
    /// How long after a Meet session's end was dealt with its conference
    /// record is read for who attended (`None`: never).
    pub attendance_after: Option<Duration>,
    /// How often each pooled room is checked (`None`: only on demand).
    pub check_every: Option<Duration>,
    /// The most rooms meetpool creates, in all (0: it never creates one).
    pub grow_max: u32,
    /// Where rooms are created (the configured provider when `None`; Meet
    /// when both are).
    pub grow_provider: Option<Provider>,
    /// How often the queue is looked at besides the wake-ups.
    pub poll: Duration,
    /// The most one call to a provider may take.
    pub timeout: Duration,
    /// The waits after each failed attempt; once spent, the action has
    /// failed for good.
    pub retry: Vec<Duration>,
}

impl Default for RoomsConfig {
    fn default() -> Self {
        Self {
            google: None,
            zoom: None,
            end_grace: Some(Duration::from_secs(600)),
            attendance_after: Some(Duration::from_secs(120)),
            check_every: Some(Duration::from_secs(86_400)),
            grow_max: 0,
            grow_provider: None,
            poll: Duration::from_secs(15),
            timeout: Duration::from_secs(10),
            retry: crate::parse_schedule(DEFAULT_ROOMS_RETRY).expect("valid schedule"),
        }
    }
}

impl RoomsConfig {
    /// Whether `provider` is configured.
    pub fn has(&self, provider: Provider) -> bool {
        match provider {
            Provider::GoogleMeet => self.google.is_some(),
            Provider::Zoom => self.zoom.is_some(),
        }
    }

    /// Whether any provider is.
    pub fn any(&self) -> bool {
        self.google.is_some() || self.zoom.is_some()
    }

    /// Where rooms are created, when they are.
    pub fn grow_at(&self) -> Option<Provider> {
        if self.grow_max == 0 {
            return None;
        }
        match self.grow_provider {
            Some(p) => self.has(p).then_some(p),
            None if self.google.is_some() => Some(Provider::GoogleMeet),
            None if self.zoom.is_some() => Some(Provider::Zoom),
            None => None,
        }
    }
}

/// An API base or token endpoint: https, so that credentials never travel
/// in clear text, except on this machine's own loopback.
pub fn endpoint(name: &str, raw: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("{name}: {e}"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(format!(
            "{name} must be an https URL (credentials are sent to it), not {raw}"
        ));
    }
    Ok(url)
}
