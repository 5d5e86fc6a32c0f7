//! The operator dashboard: HTML pages rendered on the server (no script),
//! behind a sign-in with the admin token. Every change goes through the
//! same use cases as the JSON API; the pages only read and post forms.
//!
//! - sign-in, the session cookie and CSRF: [`session`];
//! - the page around every view, the style sheet: [`layout`];
//! - one module per view: the overview here, [`day`] (the timeline, drawn
//!   in [`timeline`]), [`queue`], [`links`], [`booking`].
mod booking;
mod day;
mod layout;
mod links;
mod queue;
mod session;
mod timeline;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use jiff::{Span, Timestamp};
use maud::html;
use serde::Deserialize;

use crate::attempts::{self, Attempts, Client};
use crate::auth::AdminToken;
use crate::AppState;
use layout::{failure, page, respond, shell, Notice};
use session::{Operator, Posted, Unsigned};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(overview))
        .route("/admin/", get(|| async { Redirect::to("/admin") }))
        .route(layout::STYLE, get(style))
        .route(session::SIGN_IN, get(sign_in_page).post(sign_in))
        .route("/admin/sign-out", post(sign_out))
        .route("/admin/day", get(day::show))
        .route("/admin/queue", get(queue::show))
        .route("/admin/bookings/{id}", get(booking::show))
        .route("/admin/bookings/{id}/assign", post(queue::assign))
        .route("/admin/links", get(links::show).post(links::add))
        .route("/admin/links/{id}/availability", post(links::availability))
        .route("/admin/links/{id}/notes", post(links::notes))
        .route("/admin/{*rest}", get(unknown_page))
}

async fn unknown_page(_: Operator) -> Response {
    layout::message_page(
        StatusCode::NOT_FOUND,
        "Not found",
        "The dashboard has no such page.",
    )
}

async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        layout::CSS,
    )
}

fn sign_in_form(refused: bool) -> maud::Markup {
    shell(
        "Sign in",
        html! {
            main id="main" .narrow {
                h1 { "meetpool dashboard" }
                @if refused {
                    (Notice::Refused("that is not the admin token.".into()).render())
                }
                form method="post" action=(session::SIGN_IN) {
                    div.field {
                        label for="token" { "Admin token" }
                        input id="token" name="token" type="password" required autofocus
                            autocomplete="current-password" aria-describedby="token-help";
                        span id="token-help" .muted { "The value of MEETPOOL_ADMIN_TOKEN, as for the API." }
                    }
                    button type="submit" { "Sign in" }
                }
            }
        },
    )
}

fn too_many_page(left: std::time::Duration) -> maud::Markup {
    shell(
        "Sign in",
        html! {
            main id="main" .narrow {
                h1 { "meetpool dashboard" }
                (Notice::Refused(format!(
                    "too many wrong tokens from this address: try again in {} seconds.",
                    attempts::retry_after(left).to_str().unwrap_or("60")
                )).render())
            }
        },
    )
}

async fn sign_in_page(
    Extension(admin): Extension<Arc<AdminToken>>,
    headers: HeaderMap,
) -> Response {
    if session::current(&admin, &headers).is_some() {
        return Redirect::to("/admin").into_response();
    }
    respond(StatusCode::OK, sign_in_form(false))
}

#[derive(Deserialize)]
struct SignIn {
    token: String,
}

async fn sign_in(
    State(s): State<AppState>,
    Extension(admin): Extension<Arc<AdminToken>>,
    Extension(attempts): Extension<Arc<Attempts>>,
    client: Client,
    headers: HeaderMap,
    Unsigned(form): Unsigned<SignIn>,
) -> Response {
    if let Some(left) = attempts.blocked(client) {
        tracing::warn!("dashboard sign-in refused: too many wrong tokens from this address");
        let mut page = respond(StatusCode::TOO_MANY_REQUESTS, too_many_page(left));
        page.headers_mut()
            .insert(header::RETRY_AFTER, attempts::retry_after(left));
        return page;
    }
    if !admin.is(&form.token) {
        attempts.failed(client);
        tracing::warn!("dashboard sign-in refused: not the admin token");
        return respond(StatusCode::UNAUTHORIZED, sign_in_form(true));
    }
    tracing::info!("dashboard sign-in");
    let secure = session::over_https(&headers, &s.app.config().public_url);
    let cookie = session::set_cookie(&session::issue(&admin, Timestamp::now()), secure);
    ([(header::SET_COOKIE, cookie)], Redirect::to("/admin")).into_response()
}

/// A form with nothing to say but its CSRF token.
#[derive(Deserialize)]
struct Bare {}

async fn sign_out(State(s): State<AppState>, headers: HeaderMap, _: Posted<Bare>) -> Response {
    let secure = session::over_https(&headers, &s.app.config().public_url);
    (
        [(header::SET_COOKIE, session::set_cookie("", secure))],
        Redirect::to(session::SIGN_IN),
    )
        .into_response()
}

/// How many coming days the overview shows.
const DAYS_AHEAD: i64 = 7;

async fn overview(State(s): State<AppState>, op: Operator) -> Response {
    let app = &s.app;
    let status = match app.pool_status().await {
        Ok(status) => status,
        Err(e) => return failure(&e),
    };
    let today = Timestamp::now()
        .to_zoned(app.config().timezone.clone())
        .date();
    let last = today.saturating_add(Span::new().days(DAYS_AHEAD - 1));
    let days = match app
        .capacity(Some(&today.to_string()), Some(&last.to_string()))
        .await
    {
        Ok(days) => days,
        Err(e) => return failure(&e),
    };
    let problems = match app.platform_problems().await {
        Ok(problems) => problems,
        Err(e) => return failure(&e),
    };
    let full = days.iter().filter(|d| d.warning).count();
    let notice = (full > 0).then(|| {
        Notice::Warning(format!(
            "the pool is full at the busiest moment of {full} of the coming {DAYS_AHEAD} days: \
             add links before more bookings are paid"
        ))
    });
    let body = html! {
        ul.cards aria-label="The pool now" {
            li { span.n { (status.available_links) } "links enabled, of " (status.total_links) }
            li { span.n { (status.in_use_now) } "in use now" }
            li {
                span.n { (status.unassigned_paid_bookings) }
                a href="/admin/queue" { "paid bookings without a link" }
            }
        }
        (queue::platform_problems(&problems, &app.config().timezone))
        h2 id="headroom" { "The coming days" }
        p.muted { "Headroom: enabled links less the most paid sessions at one moment of the day (times in " (app.config().timezone_name) ")." }
        div.table {
            table aria-labelledby="headroom" {
                thead { tr { th { "Day" } th { "Busiest moment" } th { "Links" } th { "Headroom" } th { "Without a link" } th { "Warning" } } }
                tbody {
                    @for d in &days {
                        tr {
                            td { a href={ "/admin/day?date=" (d.date) } { (d.date) } }
                            td { (d.peak_sessions) " sessions" }
                            td { (d.enabled_links) }
                            td { (d.headroom) }
                            td { (d.unassigned) }
                            td { @if d.warning { span.warn { "At capacity" } } @else { span.muted { "—" } } }
                        }
                    }
                }
            }
        }
    };
    respond(
        StatusCode::OK,
        page(&op, "/admin", "Pool status", notice.as_ref(), body),
    )
}

/// Where to go after an action: a dashboard page the form names, or
/// `default` (never another site).
fn back_to(back: Option<&str>, default: &str) -> String {
    match back {
        Some(b) if b.starts_with("/admin") && !b.contains("//") && !b.contains('\\') => {
            b.to_owned()
        }
        _ => default.to_owned(),
    }
}

/// `path` with `key=value` added to its query.
fn with_param(path: &str, key: &str, value: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}{key}={value}")
}
