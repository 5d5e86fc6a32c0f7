//! The operator dashboard over plain HTTP, as a browser without script
//! would use it: nothing without signing in, the admin token and nothing
//! else signs in, the session cookie's flags, and no form changes anything
//! without the session's CSRF token.
//!
//! One theme a file:
//!
//! - `sign_in`: signing in and out, the cookie, CSRF, wrong sign-ins limited.
//! - `pages`: what the queue, day and booking pages show.
//! - `input`: notes, right-to-left names and out-of-range days.
//!
//! This module holds the fixtures they share.
mod input;
mod pages;
mod sign_in;

use meetpool_conformance::{TestApp, ADMIN_TOKEN};
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::StatusCode;

/// A browser without script: it follows no redirect by itself and keeps
/// the session cookie it is given.
struct Visitor<'a> {
    t: &'a TestApp,
    http: reqwest::Client,
    cookie: Option<String>,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .map_or("", |v| v.to_str().unwrap())
    }

    fn set_cookie(&self) -> Option<&str> {
        self.headers.get(SET_COOKIE).map(|v| v.to_str().unwrap())
    }

    /// The CSRF token the page's forms carry.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find(r#"name="csrf" value=""#)
            .unwrap_or_else(|| panic!("no form on the page: {}", self.body));
        let rest = &self.body[at + r#"name="csrf" value=""#.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

impl<'a> Visitor<'a> {
    fn new(t: &'a TestApp) -> Self {
        Self {
            t,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let req = match &self.cookie {
            Some(c) => req.header("cookie", c),
            None => req,
        };
        let res = req.send().await.unwrap();
        Answer {
            status: res.status(),
            headers: res.headers().clone(),
            body: res.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(self.http.get(self.t.url(path))).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        self.send(self.http.post(self.t.url(path)).form(form)).await
    }

    /// Signs in with `token`; keeps the cookie it is given.
    async fn sign_in_with(&mut self, token: &str) -> Answer {
        let answer = self.post("/admin/sign-in", &[("token", token)]).await;
        if let Some(set) = answer.set_cookie() {
            self.cookie = Some(set.split(';').next().unwrap().to_owned());
        }
        answer
    }

    async fn signed_in(t: &'a TestApp) -> Self {
        let mut v = Self::new(t);
        let answer = v.sign_in_with(ADMIN_TOKEN).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        v
    }
}

const ROOM: &str = "https://meet.google.com/kcw-ebey-pqu";
