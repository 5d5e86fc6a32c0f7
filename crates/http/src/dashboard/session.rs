//! Signing in to the dashboard with the admin token.
//!
//! The session is a cookie signed with a key derived from the admin token
//! (`expiry.nonce.hmac`), not a row or a map entry: any replica verifies it
//! without sharing state, a restart keeps operators signed in, and a new
//! admin token signs every session out. The cost of statelessness: signing
//! out removes the cookie from the browser, but a copy taken before stays
//! valid until it expires, so the lifetime is kept to a working day.
//!
//! Every form carries a CSRF token derived from the session's nonce with
//! the same key, checked before the form is read; the cookie is also
//! `SameSite=Strict`, so another site's page cannot make the browser send
//! it at all.
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::layout::message_page;
use crate::auth::AdminToken;
use crate::AppState;

pub const COOKIE: &str = "meetpool_session";
/// How long a sign-in lasts.
pub const LIFETIME_SECS: i64 = 8 * 60 * 60;
pub const SIGN_IN: &str = "/admin/sign-in";
const KEY_PURPOSE: &str = "meetpool dashboard session v1";

/// A signed-in operator, and the token their forms must carry (no
/// `Debug`: the token stays out of logs).
#[derive(Clone)]
pub struct Operator {
    pub csrf: String,
}

fn mac(admin: &AdminToken, label: &str, text: &str) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&admin.derive_key(KEY_PURPOSE)).expect("any key length");
    mac.update(label.as_bytes());
    mac.update(b":");
    mac.update(text.as_bytes());
    mac
}

fn csrf_for(admin: &AdminToken, nonce: &str) -> String {
    hex::encode(mac(admin, "csrf", nonce).finalize().into_bytes())
}

/// A new session's cookie value.
pub fn issue(admin: &AdminToken, now: Timestamp) -> String {
    let expires = now.as_second() + LIFETIME_SECS;
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let payload = format!("{expires}.{nonce}");
    let sig = hex::encode(mac(admin, "session", &payload).finalize().into_bytes());
    format!("{payload}.{sig}")
}

/// The operator a cookie value signs in, if it is genuine and unexpired.
pub fn verify(admin: &AdminToken, value: &str, now: Timestamp) -> Option<Operator> {
    let (payload, sig) = value.rsplit_once('.')?;
    let (expires, nonce) = payload.split_once('.')?;
    let sig = hex::decode(sig).ok()?;
    mac(admin, "session", payload).verify_slice(&sig).ok()?;
    if expires.parse::<i64>().ok()? <= now.as_second() {
        return None;
    }
    Some(Operator {
        csrf: csrf_for(admin, nonce),
    })
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// Whether the browser reached us over https: directly behind a proxy that
/// says so, or because the service's public address is https.
pub fn over_https(headers: &HeaderMap, public_url: &str) -> bool {
    let forwarded = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    forwarded || public_url.starts_with("https://")
}

/// The `Set-Cookie` value that signs in with `value` (or, empty, signs out).
pub fn set_cookie(value: &str, secure: bool) -> String {
    let max_age = if value.is_empty() { 0 } else { LIFETIME_SECS };
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={value}; Path=/admin; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

/// The operator the request's session cookie signs in, if any.
pub fn current(admin: &AdminToken, headers: &HeaderMap) -> Option<Operator> {
    cookie_value(headers, COOKIE).and_then(|v| verify(admin, v, Timestamp::now()))
}

fn admin_token(parts: &Parts) -> Arc<AdminToken> {
    parts
        .extensions
        .get::<Arc<AdminToken>>()
        .cloned()
        .expect("the admin token is layered on every route")
}

/// Pages need a signed-in operator; without one, the sign-in page.
impl FromRequestParts<AppState> for Operator {
    type Rejection = Redirect;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Redirect> {
        current(&admin_token(parts), &parts.headers).ok_or_else(|| Redirect::to(SIGN_IN))
    }
}

/// The body of a dashboard form: 415 unless it is urlencoded.
async fn form_bytes(req: Request, state: &AppState) -> Result<Bytes, Response> {
    let urlencoded = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !urlencoded {
        return Err(message_page(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Not a form",
            "This address takes the dashboard's forms only.",
        ));
    }
    Bytes::from_request(req, state)
        .await
        .map_err(IntoResponse::into_response)
}

/// A form whose fields do not fit what it should hold.
fn unreadable(e: serde_urlencoded::de::Error) -> Response {
    message_page(
        StatusCode::BAD_REQUEST,
        "The form could not be read",
        &format!("{e}. Nothing was changed: go back, reload the page and try again."),
    )
}

/// A form that needs no session (signing in).
pub struct Unsigned<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Unsigned<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let bytes = form_bytes(req, state).await?;
        serde_urlencoded::from_bytes(&bytes)
            .map(Unsigned)
            .map_err(unreadable)
    }
}

/// A form posted by a signed-in operator, its CSRF token checked before
/// anything else is read: 403 without it, and nothing changes.
pub struct Posted<T> {
    pub op: Operator,
    pub form: T,
}

#[derive(Deserialize)]
struct CsrfField {
    csrf: Option<String>,
}

impl<T: DeserializeOwned> FromRequest<AppState> for Posted<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let op = Operator::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let bytes = form_bytes(Request::from_parts(parts, body), state).await?;
        let given = serde_urlencoded::from_bytes::<CsrfField>(&bytes)
            .ok()
            .and_then(|f| f.csrf);
        let genuine =
            given.is_some_and(|given| bool::from(given.as_bytes().ct_eq(op.csrf.as_bytes())));
        if !genuine {
            return Err(message_page(
                StatusCode::FORBIDDEN,
                "This form was refused",
                "It did not come from a dashboard page of this sign-in (its security token is \
                 missing or stale). Nothing was changed: reload the page and try again.",
            ));
        }
        let form = serde_urlencoded::from_bytes(&bytes).map_err(unreadable)?;
        Ok(Posted { op, form })
    }
}

#[cfg(test)]
mod tests {
    use jiff::{SignedDuration, Timestamp};

    use super::*;

    fn admin(token: &str) -> AdminToken {
        AdminToken::new(token.to_owned().into())
    }

    #[test]
    fn a_session_lasts_its_lifetime_and_not_a_second_more() {
        let a = admin("secret");
        let now = Timestamp::now();
        let cookie = issue(&a, now);
        assert!(verify(&a, &cookie, now).is_some());
        let last = now + SignedDuration::from_secs(LIFETIME_SECS - 1);
        assert!(verify(&a, &cookie, last).is_some());
        let expired = now + SignedDuration::from_secs(LIFETIME_SECS);
        assert!(verify(&a, &cookie, expired).is_none());
    }

    #[test]
    fn a_session_signed_with_another_token_or_altered_is_no_session() {
        let now = Timestamp::now();
        let cookie = issue(&admin("old token"), now);
        assert!(verify(&admin("new token"), &cookie, now).is_none());
        let a = admin("secret");
        let cookie = issue(&a, now);
        let (expires, rest) = cookie.split_once('.').unwrap();
        let later = format!("{}.{rest}", expires.parse::<i64>().unwrap() + 86_400);
        assert!(verify(&a, &later, now).is_none());
        for bad in ["", "x", "1.2", "1.2.3", "..", &cookie[..cookie.len() - 2]] {
            assert!(verify(&a, bad, now).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn each_session_has_its_own_csrf_token() {
        let a = admin("secret");
        let now = Timestamp::now();
        let (one, two) = (issue(&a, now), issue(&a, now));
        let csrf = |c: &str| verify(&a, c, now).unwrap().csrf;
        assert_eq!(csrf(&one), csrf(&one));
        assert_ne!(csrf(&one), csrf(&two));
    }

    #[test]
    fn the_cookie_is_secure_over_https_only() {
        let mut headers = HeaderMap::new();
        assert!(!over_https(&headers, "http://127.0.0.1:8080"));
        assert!(over_https(&headers, "https://pool.example.com"));
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        assert!(over_https(&headers, "http://127.0.0.1:8080"));
        assert!(set_cookie("v", true).ends_with("; Secure"));
        assert!(!set_cookie("v", false).contains("Secure"));
        assert!(set_cookie("", false).contains("Max-Age=0"));
    }
}
