use jiff::tz::TimeZone;
use meetpool_domain::time::zone;
use meetpool_domain::Policy;
use meetpool_store::DbSettings;
use secrecy::SecretString;

use crate::{EventsConfig, RoomsConfig};

/// How a Midtrans notification is trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MidtransVerify {
    /// The signature alone.
    #[default]
    Signature,
    /// The signature, then the transaction's status fetched from Midtrans,
    /// which is what gets applied.
    Status,
}

/// What the use cases need to know; read once at start-up.
#[derive(Clone, Debug)]
pub struct Config {
    pub timezone_name: String,
    pub timezone: TimeZone,
    pub buffer_minutes: u32,
    pub policy: Policy,
    pub midtrans_server_key: Option<SecretString>,
    pub midtrans_verify: MidtransVerify,
    pub midtrans_api_base: String,
    /// A settlement must pay the booking's price (off for platforms that
    /// charge fees on top).
    pub midtrans_amount_check: bool,
    /// Reconciliation: the waits between asking Midtrans about a pending
    /// payment (the first from the booking's creation, the last repeated);
    /// off when `None`.
    pub midtrans_reconcile: Option<Vec<std::time::Duration>>,
    /// Where join URLs point (`{public_url}/j/{token}`).
    pub public_url: String,
    /// How long before a session starts its join URL leads to the meeting.
    pub join_opens_minutes: u32,
    /// The grid of starts availability is reported on.
    pub slot_minutes: u32,
    /// How long a checkout hold keeps its link for the unpaid booking.
    pub hold_minutes: u32,
    /// Repacking (opt-in): when no link is free, booked sessions starting
    /// more than this many minutes from now may move to make room.
    pub repack_freeze_minutes: Option<u32>,
    /// Where outbound events go, and how (off when `None`).
    pub events: Option<EventsConfig>,
    /// What meetpool does to rooms at their providers (nothing unless one
    /// is configured).
    pub rooms: RoomsConfig,
}

impl Config {
    pub fn new(timezone_name: &str) -> Result<Self, String> {
        let timezone = zone(timezone_name).map_err(|e| e.to_string())?;
        Ok(Self {
            timezone_name: timezone_name.to_owned(),
            timezone,
            buffer_minutes: 0,
            policy: Policy::default(),
            midtrans_server_key: None,
            midtrans_verify: MidtransVerify::default(),
            midtrans_api_base: "https://api.sandbox.midtrans.com".to_owned(),
            midtrans_amount_check: true,
            midtrans_reconcile: None,
            public_url: "http://127.0.0.1:8080".to_owned(),
            join_opens_minutes: 15,
            slot_minutes: 30,
            hold_minutes: 15,
            repack_freeze_minutes: None,
            events: None,
            rooms: RoomsConfig::default(),
        })
    }

    /// Sets the platform's zone by its IANA name.
    pub fn set_timezone(&mut self, name: &str) -> Result<(), String> {
        self.timezone = zone(name).map_err(|e| e.to_string())?;
        self.timezone_name = name.to_owned();
        Ok(())
    }

    /// Sets the Midtrans API base: https, so that the server key never
    /// travels in clear text, except on this machine's own loopback.
    pub fn set_midtrans_api_base(&mut self, base: &str) -> Result<(), String> {
        let url = url::Url::parse(base).map_err(|e| format!("MIDTRANS_API_BASE: {e}"))?;
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
            return Err(format!(
                "MIDTRANS_API_BASE must be an https URL (the server key is sent to it), not {base}"
            ));
        }
        self.midtrans_api_base = base.to_owned();
        Ok(())
    }

    pub fn db_settings(&self) -> DbSettings {
        DbSettings {
            timezone: self.timezone_name.clone(),
            buffer_minutes: self.buffer_minutes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Config;

    #[test]
    fn the_server_key_only_travels_over_https_or_loopback() {
        let mut c = Config::new("UTC").unwrap();
        for ok in [
            "https://api.midtrans.com",
            "http://127.0.0.1:9999",
            "http://localhost:8080/x",
            "http://[::1]:80",
        ] {
            assert_eq!(c.set_midtrans_api_base(ok), Ok(()), "{ok}");
            assert_eq!(c.midtrans_api_base, ok);
        }
        for bad in [
            "http://api.midtrans.com",
            "http://10.0.0.1",
            "ftp://x",
            "not a url",
        ] {
            assert!(c.set_midtrans_api_base(bad).is_err(), "{bad}");
        }
    }
}
