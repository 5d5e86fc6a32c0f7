//! Participants' join URLs: `GET /j/{token}` takes them to the meeting
//! inside the join window and otherwise says, on a small page, when it
//! opens or why it does not; `GET /j/{token}.ics` is the session as a
//! calendar file. Public: the token (256 random bits) is the credential.
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{html, Markup, DOCTYPE};
use meetpool_app::{AppError, JoinView};
use meetpool_domain::Join;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(join))
}

/// Pages and redirects change as the session nears: never cached.
const NO_STORE: (header::HeaderName, &str) = (header::CACHE_CONTROL, "no-store");

#[utoipa::path(get, path = "/j/{token}", tag = "participants",
    params(("token" = String, Path, description = "The booking's join token; with `.ics` appended, its calendar file.")),
    responses(
        (status = 303, description = "Inside the join window (from `MEETPOOL_JOIN_OPENS_MINUTES` before the start until the end): to the booking's current meeting link."),
        (status = 200, description = "A page saying when the session opens, that it has ended, that its link is being prepared, that it awaits payment or was cancelled; or, for `{token}.ics`, the RFC 5545 calendar file.", content_type = "text/html"),
        (status = 404, description = "No booking has this token.", content_type = "text/html"),
    ))]
pub async fn join(State(s): State<AppState>, Path(token): Path<String>) -> Response {
    if let Some(token) = token.strip_suffix(".ics") {
        return match s.app.calendar(token).await {
            Ok(ics) => (
                [
                    (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"session.ics\"",
                    ),
                    NO_STORE,
                ],
                ics,
            )
                .into_response(),
            Err(e) => failure(e),
        };
    }
    match s.app.join_view(&token).await {
        Ok(JoinView {
            join: Join::Open(link),
            ..
        }) => ([NO_STORE], Redirect::to(&link)).into_response(),
        Ok(view) => ([NO_STORE], Html(page(&view).into_string())).into_response(),
        Err(e) => failure(e),
    }
}

fn failure(e: AppError) -> Response {
    let (status, title, text) = match e {
        AppError::NotFound(_) => (
            StatusCode::NOT_FOUND,
            "Link not found",
            "This link does not lead to any session. Check that it was copied whole.",
        ),
        AppError::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again in a moment",
            "The service cannot look this session up right now.",
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "The session could not be looked up. Try again in a moment.",
        ),
    };
    let page = layout(title, html! { p { (text) } });
    (status, [NO_STORE], Html(page.into_string())).into_response()
}

fn page(view: &JoinView) -> Markup {
    let when = format!(
        "{} – {} ({})",
        view.starts.strftime("%A %-d %B %Y, %H:%M"),
        view.ends.strftime("%H:%M"),
        view.starts.time_zone().iana_name().unwrap_or("local time"),
    );
    let (title, text) = match &view.join {
        Join::NotYet { opens_at } => (
            "Your session has not started yet".to_owned(),
            format!(
                "Come back from {}: this link then takes you to the meeting.",
                opens_at
                    .to_zoned(view.starts.time_zone().clone())
                    .strftime("%H:%M on %A %-d %B")
            ),
        ),
        Join::Preparing => (
            "Your link is being prepared".to_owned(),
            "Reload this page in a few minutes; the organiser has been told.".to_owned(),
        ),
        Join::AwaitingPayment => (
            "This booking is not paid yet".to_owned(),
            "The meeting opens here once the payment has gone through.".to_owned(),
        ),
        Join::Cancelled => (
            "This booking was cancelled".to_owned(),
            "There is no meeting to join for it.".to_owned(),
        ),
        Join::Ended => (
            "This session has ended".to_owned(),
            "Thank you for taking part.".to_owned(),
        ),
        Join::Open(_) => ("Your session".to_owned(), String::new()),
    };
    layout(
        &title,
        html! {
            p.when { (view.session) ": " (when) }
            p { (text) }
            p { a href=(view.calendar_url) { "Add it to your calendar" } }
        },
    )
}

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) }
                style { "body{font:1.05rem/1.5 system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b}h1{font-size:1.4rem}.when{color:#444}a{color:#0b57d0}" }
            }
            body { main { h1 { (title) } (body) } }
        }
    }
}
