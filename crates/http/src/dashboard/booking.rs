//! One booking: what it is, where it stands, and its audit trail.
use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use maud::{html, Markup};
use meetpool_app::{ActionKind, AppError, DeliveryView, ProviderAction};
use meetpool_domain::{BookingId, PaymentStatus};

use super::layout::{failure, local, page, respond, short_link};
use super::queue::assign_forms;
use super::session::Operator;
use crate::AppState;

pub async fn show(State(s): State<AppState>, op: Operator, Path(id): Path<String>) -> Response {
    let app = &s.app;
    let Ok(id) = id.parse::<BookingId>() else {
        return failure(&AppError::NotFound("booking"));
    };
    let id_text = id.to_string();
    let (booking, events, links, sent, at_provider) = match tokio::try_join!(
        app.booking(id),
        app.events(id),
        app.links(),
        app.deliveries(None, Some(&id_text), Some(DELIVERIES_SHOWN)),
        app.provider_actions(None, Some(id), 10),
    ) {
        Ok(read) => read,
        Err(e) => return failure(&e),
    };
    let link_names: HashMap<_, _> = links
        .iter()
        .map(|l| (l.id, short_link(&l.meeting_link)))
        .collect();
    let tz = &app.config().timezone;
    let here = format!("/admin/bookings/{}", booking.id);
    let body = html! {
        dl.facts {
            dt { "Order" } dd { bdi { (booking.order_id) } }
            dt { "Session" } dd {
                (local(booking.window.start, tz)) " – " (booking.window.end.to_zoned(tz.clone()).strftime("%H:%M"))
                " " span.muted { "(" (app.config().timezone_name) ")" }
            }
            dt { "Payment" } dd { (booking.payment_status.as_str()) }
            dt { "Status" } dd { bdi { (booking.status) } }
            dt { "Link" } dd {
                @match &booking.meeting_link {
                    Some(link) => (link),
                    None => span.warn { "none yet" },
                }
            }
            @if let Some(until) = booking.hold_expires_at.filter(|_| booking.payment_status != PaymentStatus::Paid) {
                dt { "Held until" } dd { (local(until, tz)) }
            }
            dt { "Join URL" } dd { (app.join_url(&booking)) }
            @if let Some(end) = at_provider.iter().find(|a| a.kind == ActionKind::End) {
                dt { "Conference" } dd #conference { (conference(end, tz)) }
            }
            @if let Some(seen) = events.iter().rev().find(|e| e.kind == "attendance") {
                dt { "Attendance" } dd #attendance {
                    @if seen.detail["joined"] == true {
                        (seen.detail["participants"]) " joined; someone was there for "
                        (seen.detail["minutes"]) " minutes"
                    } @else {
                        span.warn { "nobody joined" }
                    }
                }
            }
            dt { "User" } dd { bdi { (booking.user_id) } }
            dt { "Expert" } dd { bdi { (booking.expert_id) } }
            dt { "Moved" } dd { (booking.reschedules) " times" }
            dt { "Id" } dd { (booking.id) }
        }
        @if booking.is_waiting() {
            h2 { "Assign" }
            (assign_forms(&op, &booking, None, &here))
        }
        h2 id="trail-h" { "Audit trail" }
        div.table {
            table #trail aria-labelledby="trail-h" {
                thead { tr { th { "When" } th { "What" } th { "Link" } th { "Detail" } } }
                tbody {
                    @for e in &events {
                        tr {
                            td { (local(e.created_at, tz)) }
                            td { (e.kind) }
                            td { (e.meeting_link_id.and_then(|l| link_names.get(&l).copied()).unwrap_or("")) }
                            td { pre { (serde_json::to_string_pretty(&e.detail).unwrap_or_default()) } }
                        }
                    }
                }
            }
        }
        (deliveries(&sent, app.config().events.is_some(), tz))
    };
    respond(
        StatusCode::OK,
        page(
            &op,
            "",
            &format!("Booking {}", booking.order_id),
            None,
            body,
        ),
    )
}

/// What became of the session's conference at its provider.
fn conference(end: &ProviderAction, tz: &TimeZone) -> String {
    match (end.outcome.as_deref(), end.done_at) {
        (Some("ended"), Some(at)) => format!("ended at the provider, {}", local(at, tz)),
        (Some("next_session_began"), _) => {
            "left on: the next session on the room had begun".to_owned()
        }
        (Some("no_conference"), _) => "none was under way when the session ended".to_owned(),
        (Some("gone"), _) => "the room no longer exists at the provider".to_owned(),
        (Some(other), _) => format!(
            "not ended: {other}{}",
            end.last_error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ),
        (None, _) => format!(
            "to be ended (attempt {}{})",
            end.attempts + 1,
            end.last_error
                .as_deref()
                .map(|e| format!("; last: {e}"))
                .unwrap_or_default()
        ),
    }
}

/// The most outbound events the booking page lists.
const DELIVERIES_SHOWN: u32 = 50;

/// What the platform was told of the booking, beside the audit trail of
/// what happened to it: each event, newest first, and how its delivery
/// stands.
fn deliveries(sent: &[DeliveryView], events_on: bool, tz: &TimeZone) -> Markup {
    let when = |t: &str| {
        t.parse::<Timestamp>()
            .map(|t| local(t, tz))
            .unwrap_or_else(|_| t.to_owned())
    };
    html! {
        section aria-labelledby="deliveries-h" {
            h2 id="deliveries-h" { "Outbound deliveries" }
            @if !events_on {
                p.muted { "This service sends no outbound events: set MEETPOOL_EVENTS_URL to send them." }
            }
            @if sent.is_empty() {
                p.muted #deliveries { "No events for this booking." }
            } @else {
                div.table {
                    table #deliveries aria-labelledby="deliveries-h" {
                        thead { tr { th { "When" } th { "Event" } th { "Delivery" } th { "Attempts" } th { "Delivered or next attempt" } th { "Last error" } } }
                        tbody {
                            @for e in sent {
                                tr {
                                    td { (when(&e.created_at)) }
                                    td { (e.kind) br; span.muted { (e.id) } }
                                    td { @if e.status == "failed" { span.warn { (e.status) } } @else { (e.status) } }
                                    td { (e.attempts) }
                                    td { (e.delivered_at.as_deref().or(e.next_attempt_at.as_deref()).map(when).unwrap_or_default()) }
                                    td { (e.last_error.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
