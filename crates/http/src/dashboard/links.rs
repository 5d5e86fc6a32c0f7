//! The pool's links: add one, disable or enable one (saying beforehand how
//! many coming sessions disabling it moves), change its notes.
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use meetpool_app::{room_of, App, AppError, LinkInput};
use meetpool_domain::room::is_safe_link;
use meetpool_domain::values::NOTES_MAX;
use meetpool_domain::LinkId;
use serde::Deserialize;

use super::layout::{failure, local, page, refusal, respond, short_link, Notice};
use super::session::{Operator, Posted};
use crate::AppState;

const HERE: &str = "/admin/links";

#[derive(Deserialize, Default)]
struct LinksQuery {
    added: Option<String>,
    disabled: Option<String>,
    moved: Option<usize>,
    enabled: Option<String>,
    noted: Option<String>,
}

pub async fn show(State(s): State<AppState>, op: Operator, RawQuery(q): RawQuery) -> Response {
    let q: LinksQuery = serde_urlencoded::from_str(q.as_deref().unwrap_or("")).unwrap_or_default();
    let notice = done_notice(&s.app, &q).await;
    render(&s.app, &op, StatusCode::OK, notice).await
}

/// What the last action did, named by the query it redirected to.
async fn done_notice(app: &App, q: &LinksQuery) -> Option<Notice> {
    let (id, what) = if let Some(id) = &q.added {
        (id, "added")
    } else if let Some(id) = &q.disabled {
        (id, "disabled")
    } else if let Some(id) = &q.enabled {
        (id, "enabled")
    } else {
        (q.noted.as_ref()?, "noted")
    };
    let link = app.link(id.parse().ok()?).await.ok()?;
    let name = short_link(&link.meeting_link);
    Some(Notice::Done(match what {
        "added" => format!("Added {name}."),
        "disabled" => format!(
            "Disabled {name}: its {} coming sessions moved to other links, or to the unassigned queue where none was free.",
            q.moved.unwrap_or(0)
        ),
        "enabled" => format!("Enabled {name}: waiting bookings that fit were given it."),
        _ => format!("Saved the notes of {name}."),
    }))
}

async fn render(app: &App, op: &Operator, status: StatusCode, notice: Option<Notice>) -> Response {
    let (links, coming, checks) =
        match tokio::try_join!(app.links(), app.coming_sessions(), app.last_room_checks()) {
            Ok(read) => read,
            Err(e) => return failure(&e),
        };
    let tz = &app.config().timezone;
    // A room of a configured provider: its last check there.
    let at_provider = |meeting_link: &str, id: &LinkId| -> Option<String> {
        let (provider, _) = room_of(meeting_link)?;
        if !app.config().rooms.has(provider) {
            return None;
        }
        Some(match checks.get(id) {
            Some((at, found)) => format!("{}: {found}, {}", provider.title(), local(*at, tz)),
            None => format!("{}: not checked yet", provider.title()),
        })
    };
    let body = html! {
        h2 id="add-h" { "Add a link" }
        form method="post" action=(HERE) aria-labelledby="add-h" {
            input type="hidden" name="csrf" value=(op.csrf);
            div.field {
                label for="new-link" { "Meeting link" }
                input id="new-link" name="meeting_link" type="url" required placeholder="https://meet.google.com/abc-defg-hij";
            }
            div.field {
                label for="new-notes" { "Notes (optional)" }
                textarea id="new-notes" name="notes" rows="2" maxlength=(NOTES_MAX) {}
            }
            button type="submit" { "Add link" }
        }
        h2 id="pool-h" { "The pool (" (links.len()) ")" }
        div.table {
            table #links aria-labelledby="pool-h" {
                thead { tr { th { "Link" } th { "State" } th { "Coming sessions" } th { "At the provider" } th { "Notes" } th { "Action" } } }
                tbody {
                    @for link in &links {
                        @let n = coming.get(&link.id).copied().unwrap_or(0);
                        tr data-link=(link.id) {
                            td {
                                // A link written by hand that is not an https:// URL
                                // naming a host is shown, never made clickable.
                                @if is_safe_link(&link.meeting_link) {
                                    a href=(link.meeting_link) rel="noreferrer" { (short_link(&link.meeting_link)) }
                                } @else {
                                    span.warn title="Not an https:// link: never opened or sent to participants" {
                                        "Unsafe link: " code { (link.meeting_link) }
                                    }
                                }
                            }
                            td { @if link.is_available { "Enabled" } @else { span.muted { "Disabled" } } }
                            td { @if link.is_available { (n) } @else { span.muted { "—" } } }
                            td.provider {
                                @match at_provider(&link.meeting_link, &link.id) {
                                    Some(text) => (text),
                                    None => span.muted { "—" },
                                }
                            }
                            td {
                                form.inline method="post" action={ (HERE) "/" (link.id) "/notes" } {
                                    input type="hidden" name="csrf" value=(op.csrf);
                                    label.vh for={ "notes-" (link.id) } { "Notes for " (short_link(&link.meeting_link)) }
                                    textarea id={ "notes-" (link.id) } name="notes" rows="2" maxlength=(NOTES_MAX) {
                                        (link.notes.as_deref().unwrap_or(""))
                                    }
                                    button.quiet type="submit" { "Save" }
                                }
                            }
                            td {
                                form method="post" action={ (HERE) "/" (link.id) "/availability" } {
                                    input type="hidden" name="csrf" value=(op.csrf);
                                    @if link.is_available {
                                        input type="hidden" name="enabled" value="false";
                                        input type="hidden" name="moving" value=(n);
                                        button.danger type="submit" {
                                            "Disable"
                                            @if n > 0 { " (moves " (n) " coming " (if n == 1 { "session" } else { "sessions" }) ")" }
                                        }
                                    } @else {
                                        input type="hidden" name="enabled" value="true";
                                        button.quiet type="submit" { "Enable" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        p.muted { "A link that bookings reference is disabled rather than deleted, so their history keeps it." }
    };
    respond(status, page(op, HERE, "Links", notice.as_ref(), body))
}

/// A refused change: the page again, saying why.
async fn refused(app: &App, op: &Operator, e: AppError) -> Response {
    let (status, notice) = refusal(&e);
    render(app, op, status, Some(notice)).await
}

fn link_id(raw: &str) -> Result<LinkId, AppError> {
    raw.parse().map_err(|_| AppError::NotFound("meeting link"))
}

/// A form's text area sends its line breaks as CR LF (the HTML standard);
/// the API stores notes with the LF a JSON client sends, so both read alike.
fn one_kind_of_line_break(text: &str) -> String {
    text.replace("\r\n", "\n")
}

#[derive(Deserialize)]
pub struct AddForm {
    meeting_link: String,
    notes: Option<String>,
}

pub async fn add(State(s): State<AppState>, Posted { op, form }: Posted<AddForm>) -> Response {
    let input = LinkInput {
        meeting_link: Some(form.meeting_link),
        notes: form
            .notes
            .filter(|n| !n.trim().is_empty())
            .map(|n| Some(one_kind_of_line_break(&n))),
        is_available: None,
    };
    match s.app.add_link(input).await {
        Ok(link) => Redirect::to(&format!("{HERE}?added={}", link.id)).into_response(),
        Err(e) => refused(&s.app, &op, e).await,
    }
}

#[derive(Deserialize)]
pub struct AvailabilityForm {
    enabled: bool,
}

pub async fn availability(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Posted { op, form }: Posted<AvailabilityForm>,
) -> Response {
    let id = match link_id(&id) {
        Ok(id) => id,
        Err(e) => return failure(&e),
    };
    // Counted just before, as the button said: the sessions the use case
    // is about to move.
    let moving = match s.app.coming_sessions().await {
        Ok(coming) => coming.get(&id).copied().unwrap_or(0),
        Err(e) => return refused(&s.app, &op, e).await,
    };
    let input = LinkInput {
        is_available: Some(form.enabled),
        ..LinkInput::default()
    };
    match s.app.update_link(id, input).await {
        Ok(_) if form.enabled => Redirect::to(&format!("{HERE}?enabled={id}")).into_response(),
        Ok(_) => Redirect::to(&format!("{HERE}?disabled={id}&moved={moving}")).into_response(),
        Err(e) => refused(&s.app, &op, e).await,
    }
}

#[derive(Deserialize)]
pub struct NotesForm {
    notes: String,
}

pub async fn notes(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Posted { op, form }: Posted<NotesForm>,
) -> Response {
    let id = match link_id(&id) {
        Ok(id) => id,
        Err(e) => return failure(&e),
    };
    let notes = Some(one_kind_of_line_break(&form.notes)).filter(|n| !n.trim().is_empty());
    let input = LinkInput {
        notes: Some(notes),
        ..LinkInput::default()
    };
    match s.app.update_link(id, input).await {
        Ok(_) => Redirect::to(&format!("{HERE}?noted={id}")).into_response(),
        Err(e) => refused(&s.app, &op, e).await,
    }
}
