//! One day of the pool: the timeline, a date picker, and beside them the
//! paid sessions of that day still waiting for a link.
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use jiff::Timestamp;
use maud::html;
use serde::Deserialize;

use super::layout::{failure, page, respond, span, Notice};
use super::queue::{assign_forms, assigned_notice};
use super::session::Operator;
use super::timeline;
use crate::AppState;

#[derive(Deserialize, Default)]
struct DayQuery {
    date: Option<String>,
    assigned: Option<String>,
}

pub async fn show(State(s): State<AppState>, op: Operator, RawQuery(q): RawQuery) -> Response {
    let app = &s.app;
    let tz = &app.config().timezone;
    let q: DayQuery = serde_urlencoded::from_str(q.as_deref().unwrap_or("")).unwrap_or_default();
    let date = q
        .date
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| Timestamp::now().to_zoned(tz.clone()).date().to_string());
    let t = match app.day_timeline(&date).await {
        Ok(t) => t,
        Err(e) => return failure(&e),
    };
    let notice: Option<Notice> = assigned_notice(app, q.assigned.as_deref()).await;
    let here = format!("/admin/day?date={}", t.date);
    let (before, after) = (t.date.yesterday().ok(), t.date.tomorrow().ok());
    let body = html! {
        form.inline method="get" action="/admin/day" {
            label for="date" { "Day" }
            input id="date" name="date" type="date" value=(t.date) required;
            button type="submit" { "Show" }
            @if let Some(d) = before { a href={ "/admin/day?date=" (d) } { "← " (d) } }
            @if let Some(d) = after { a href={ "/admin/day?date=" (d) } { (d) " →" } }
        }
        ul.legend aria-label="Legend" {
            li { span.key-paid {} "paid" }
            li { span.key-held {} "held at checkout" }
            li { span.key-moved {} "moved to this link in the last 24 hours" }
            li { span.key-now {} "now" }
        }
        div.day {
            section aria-labelledby="timeline-h" {
                h2 id="timeline-h" { "Links" }
                // Wider than a phone: the timeline scrolls sideways there.
                div.scroll { (timeline::svg(&t, tz)) }
                (timeline::table(&t, tz))
            }
            aside aria-labelledby="waiting-h" {
                h2 id="waiting-h" { "Without a link (" (t.unassigned.len()) ")" }
                @if t.unassigned.is_empty() {
                    p.muted { "Every paid session of this day has a link." }
                }
                ul #waiting {
                    @for b in &t.unassigned {
                        li data-booking=(b.id) {
                            a href={ "/admin/bookings/" (b.id) } { "Order " bdi { (b.order_id) } }
                            " " (span(b.window.start, b.window.end, tz))
                            (assign_forms(&op, b, None, &here))
                        }
                    }
                }
            }
        }
        p.muted { "Times in " (app.config().timezone_name) ". Disabled links are marked “(off)”." }
    };
    respond(
        StatusCode::OK,
        page(
            &op,
            "/admin/day",
            &format!("Day {}", t.date),
            notice.as_ref(),
            body,
        ),
    )
}
