//! The unassigned queue: paid bookings without a link, each with an
//! automatic assignment and a choice of link. A chosen link that another
//! session holds at an overlapping time is refused, never forced.
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use meetpool_app::dashboard::LinkChoice;
use meetpool_app::{App, AppError, AssignOutcome};
use meetpool_domain::{Booking, BookingId, LinkId};
use serde::Deserialize;

use super::layout::{failure, local, page, refusal, respond, short_link, span, Notice};
use super::session::{Operator, Posted};
use super::{back_to, with_param};
use crate::AppState;

const HERE: &str = "/admin/queue";

#[derive(Deserialize, Default)]
struct QueueQuery {
    assigned: Option<String>,
}

pub async fn show(State(s): State<AppState>, op: Operator, RawQuery(q): RawQuery) -> Response {
    let q: QueueQuery = serde_urlencoded::from_str(q.as_deref().unwrap_or("")).unwrap_or_default();
    let notice = assigned_notice(&s.app, q.assigned.as_deref()).await;
    render(&s.app, &op, StatusCode::OK, notice).await
}

async fn render(app: &App, op: &Operator, status: StatusCode, notice: Option<Notice>) -> Response {
    let queue = match app.unassigned_queue().await {
        Ok(queue) => queue,
        Err(e) => return failure(&e),
    };
    let problems = match app.platform_problems().await {
        Ok(problems) => problems,
        Err(e) => return failure(&e),
    };
    let tz = &app.config().timezone;
    let body = html! {
        (platform_problems(&problems, tz))
        p.muted {
            "Paid sessions that have not ended and have no link, oldest booking first. "
            "They get one automatically as soon as a link is free; here you can ask now."
        }
        @if queue.is_empty() {
            p #queue-empty { "No paid booking is waiting for a link." }
        } @else {
            div.table {
                table #queue {
                    thead { tr { th { "Order" } th { "Session" } th { "Assign" } } }
                    tbody {
                        @for entry in &queue {
                            tr data-booking=(entry.booking.id) {
                                td { a href={ "/admin/bookings/" (entry.booking.id) } { bdi { (entry.booking.order_id) } } }
                                td { (local(entry.booking.window.start, tz)) " – " (entry.booking.window.end.to_zoned(tz.clone()).strftime("%H:%M")) }
                                td { (assign_forms(op, &entry.booking, Some(&entry.choices), HERE)) }
                            }
                        }
                    }
                }
            }
        }
    };
    respond(
        status,
        page(op, HERE, "Unassigned queue", notice.as_ref(), body),
    )
}

/// The forms that assign `booking`: automatically, and (given the choices)
/// to a chosen link. `back` is the page to return to.
pub fn assign_forms(
    op: &Operator,
    booking: &Booking,
    choices: Option<&[LinkChoice]>,
    back: &str,
) -> Markup {
    let action = format!("/admin/bookings/{}/assign", booking.id);
    let select_id = format!("link-{}", booking.id);
    html! {
        form.inline method="post" action=(action) {
            input type="hidden" name="csrf" value=(op.csrf);
            input type="hidden" name="back" value=(back);
            button type="submit" name="auto" value="1" aria-label={ "Assign a free link to order " (booking.order_id) } { "Assign automatically" }
        }
        @if let Some(choices) = choices.filter(|c| !c.is_empty()) {
            form.inline method="post" action=(action) {
                input type="hidden" name="csrf" value=(op.csrf);
                input type="hidden" name="back" value=(back);
                label for=(select_id) { "Link" }
                select id=(select_id) name="link" {
                    @for c in choices {
                        option value=(c.link.id) {
                            (short_link(&c.link.meeting_link))
                            @if c.free { " — free" } @else { " — busy then" }
                        }
                    }
                }
                button.quiet type="submit" aria-label={ "Assign the chosen link to order " (booking.order_id) } { "Assign this link" }
            }
        }
    }
}

/// What an assignment did, for the page it returns to.
pub async fn assigned_notice(app: &App, booking: Option<&str>) -> Option<Notice> {
    let id: BookingId = booking?.parse().ok()?;
    let booking = app.booking(id).await.ok()?;
    let tz = &app.config().timezone;
    Some(Notice::Done(format!(
        "Order {} ({}) now has {}.",
        booking.order_id,
        span(booking.window.start, booking.window.end, tz),
        booking
            .meeting_link
            .as_deref()
            .map_or("no link", short_link)
    )))
}

#[derive(Deserialize)]
pub struct AssignForm {
    /// A link id; absent or empty: the allocation policy chooses.
    link: Option<String>,
    back: Option<String>,
}

pub async fn assign(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Posted { op, form }: Posted<AssignForm>,
) -> Response {
    let Ok(id) = id.parse::<BookingId>() else {
        return failure(&AppError::NotFound("booking"));
    };
    let chosen = form.link.as_deref().filter(|l| !l.is_empty());
    let result = match chosen {
        None => automatically(&s.app, id).await,
        Some(link) => match link.parse::<LinkId>() {
            Ok(link) => s.app.assign_manually(id, link).await.map(|_| ()),
            Err(_) => Err(AppError::NotFound("meeting link")),
        },
    };
    match result {
        Ok(()) => {
            let back = back_to(form.back.as_deref(), HERE);
            Redirect::to(&with_param(&back, "assigned", &id.to_string())).into_response()
        }
        Err(e) => {
            let (status, notice) = refusal(&e);
            render(&s.app, &op, status, Some(notice)).await
        }
    }
}

/// The same use case as `meetpool assign` and the previous system's assign
/// route; no free link is a refusal here as there.
async fn automatically(app: &App, id: BookingId) -> Result<(), AppError> {
    match app.assign(id).await? {
        AssignOutcome::Assigned { .. } => Ok(()),
        AssignOutcome::Exhausted { booking } => Err(AppError::conflict(
            "no_link_available",
            format!(
                "no link is free for order {} at that time: add or enable a link, or choose one in the queue",
                booking.order_id
            ),
        )),
    }
}

/// The adopted platform's bookings meetpool could not take in: shown on the
/// overview and the queue while there are any, since a paid one is a
/// customer without a link that no link added to the pool will help.
pub fn platform_problems(
    problems: &[meetpool_app::PlatformProblem],
    tz: &jiff::tz::TimeZone,
) -> Markup {
    let paid = problems.iter().filter(|p| p.without_link).count();
    html! {
        @if !problems.is_empty() {
            section #platform-problems aria-labelledby="platform-problems-title" {
                h2 #platform-problems-title { "Bookings the platform wrote that meetpool cannot take in" }
                p.warn {
                    (problems.len()) " of the platform's bookings have no link until their rows are fixed"
                    @if paid > 0 { " (" (paid) " of them paid)" }
                    ". Fix each row in the platform's bookings table: meetpool then takes it in at once."
                }
                div.table {
                    table #platform-problems-list {
                        thead { tr { th { "Row" } th { "Order" } th { "Paid" } th { "Since" } th { "What to fix" } } }
                        tbody {
                            @for p in problems {
                                @let view = meetpool_app::views::ProblemView::from(p);
                                tr data-row=(view.row_id) {
                                    td { code { (view.row_id) } }
                                    td { bdi { (view.order_id.as_deref().unwrap_or("—")) } }
                                    td { @if p.paid { "paid" } @else { span.muted { "no" } } }
                                    td { (local(p.since, tz)) }
                                    td { strong { (view.reason) } ": " (view.message) @if !view.detail.is_empty() { " (" (view.detail) ")" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
