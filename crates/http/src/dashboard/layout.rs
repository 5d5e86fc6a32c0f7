//! The page every dashboard view sits in, its style sheet, and the headers
//! every dashboard answer carries.
use axum::http::{header, HeaderName, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use maud::{html, Markup, DOCTYPE};
use meetpool_app::AppError;

use super::session::Operator;
use crate::error::describe;

/// Where the style sheet is served.
pub const STYLE: &str = "/admin/style.css";

/// Pages hold ids and state that change: never cached, never framed (no
/// clickjacking of the forms), nothing loaded from elsewhere.
const HEADERS: [(HeaderName, &str); 4] = [
    (header::CACHE_CONTROL, "no-store"),
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
];

/// The navigation's entries: (path, label).
const NAV: [(&str, &str); 4] = [
    ("/admin", "Overview"),
    ("/admin/day", "Day"),
    ("/admin/queue", "Queue"),
    ("/admin/links", "Links"),
];

pub fn respond(status: StatusCode, page: Markup) -> Response {
    (status, HEADERS, Html(page.into_string())).into_response()
}

/// A notice above a page's content: what an action did, or why not.
pub enum Notice {
    Done(String),
    Refused(String),
    Warning(String),
}

impl Notice {
    pub fn render(&self) -> Markup {
        match self {
            Notice::Done(text) => html! { p.notice.done role="status" { (text) } },
            Notice::Refused(text) => {
                html! { p.notice.refused role="alert" { strong { "Not done: " } (text) } }
            }
            Notice::Warning(text) => {
                html! { p.notice.refused role="alert" { strong { "Warning: " } (text) } }
            }
        }
    }
}

/// A dashboard page for a signed-in operator; `current` is the navigation
/// entry it belongs to.
pub fn page(
    op: &Operator,
    current: &str,
    title: &str,
    notice: Option<&Notice>,
    body: Markup,
) -> Markup {
    shell(
        title,
        html! {
            header.top {
                a.brand href="/admin" { "meetpool" }
                nav aria-label="Dashboard" {
                    ul {
                        @for (path, label) in NAV {
                            li {
                                @if path == current {
                                    a href=(path) aria-current="page" { (label) }
                                } @else {
                                    a href=(path) { (label) }
                                }
                            }
                        }
                    }
                }
                form.signout method="post" action="/admin/sign-out" {
                    input type="hidden" name="csrf" value=(op.csrf);
                    button type="submit" { "Sign out" }
                }
            }
            main id="main" {
                h1 { (title) }
                @if let Some(notice) = notice { (notice.render()) }
                (body)
            }
        },
    )
}

/// The document around any dashboard page, signed in or not.
pub fn shell(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) " · meetpool" }
                link rel="stylesheet" href=(STYLE);
            }
            body {
                a.skip href="#main" { "Skip to content" }
                (body)
            }
        }
    }
}

/// A page that only says something (a refusal, an error), with a way back.
pub fn message_page(status: StatusCode, title: &str, text: &str) -> Response {
    respond(
        status,
        shell(
            title,
            html! {
                main id="main" .narrow {
                    h1 { (title) }
                    p { (text) }
                    p { a href="/admin" { "Back to the dashboard" } }
                }
            },
        ),
    )
}

/// A use case's failure on a page that shows nothing else.
pub fn failure(e: &AppError) -> Response {
    let (status, _, message) = describe(e);
    let title = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::SERVICE_UNAVAILABLE => "Try again in a moment",
        StatusCode::INTERNAL_SERVER_ERROR => "Something went wrong",
        _ => "That did not work",
    };
    message_page(status, title, &capitalized(&message))
}

/// The status a refused action's page answers with, and its words.
pub fn refusal(e: &AppError) -> (StatusCode, Notice) {
    let (status, _, message) = describe(e);
    (
        status,
        Notice::Refused(format!("{}. Nothing was changed.", capitalized(&message))),
    )
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// An instant as the platform's operators read it: local date and time.
pub fn local(t: Timestamp, tz: &TimeZone) -> String {
    t.to_zoned(tz.clone())
        .strftime("%a %-d %b %Y, %H:%M")
        .to_string()
}

/// A session's local start and end (`14:00–15:00`).
pub fn span(start: Timestamp, end: Timestamp, tz: &TimeZone) -> String {
    format!(
        "{}–{}",
        start.to_zoned(tz.clone()).strftime("%H:%M"),
        end.to_zoned(tz.clone()).strftime("%H:%M")
    )
}

/// A link as a row label: its address without the scheme.
pub fn short_link(url: &str) -> &str {
    url.trim_start_matches("https://")
}

/// The style sheet: system fonts, high contrast, a visible focus ring, one
/// column on a phone.
pub const CSS: &str = r#"
:root{--ink:#1b1b1b;--muted:#4a4a4a;--line:#c9c9c9;--bg:#fff;--soft:#f3f4f6;--accent:#0b57d0;--paid:#1f5fbf;--held:#b35c00;--moved:#6b2fa8;--warn:#8a1c1c}
*{box-sizing:border-box}
body{margin:0;font:1rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:var(--bg)}
a{color:var(--accent)}
a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible,textarea:focus-visible,summary:focus-visible{outline:3px solid #e8a200;outline-offset:2px}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff;padding:.5rem;z-index:2}
.top{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1.5rem;padding:.6rem 1rem;border-bottom:1px solid var(--line);background:var(--soft)}
.brand{font-weight:700;text-decoration:none;color:var(--ink)}
nav ul{display:flex;flex-wrap:wrap;gap:.25rem 1rem;list-style:none;margin:0;padding:0}
nav a{text-decoration:none;padding:.2rem .1rem}nav a[aria-current=page]{font-weight:700;border-bottom:3px solid var(--accent)}
.signout{margin-left:auto}
main{padding:1rem;max-width:78rem;margin:0 auto}.narrow{max-width:34rem;margin:3rem auto}
h1{font-size:1.5rem;margin:.5rem 0 1rem}h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
button{font:inherit;padding:.35rem .8rem;border:1px solid var(--accent);border-radius:4px;background:var(--accent);color:#fff;cursor:pointer}
button.quiet{background:#fff;color:var(--accent)}button.danger{background:#fff;color:var(--warn);border-color:var(--warn)}
input,select,textarea{font:inherit;padding:.3rem .4rem;border:1px solid #767676;border-radius:4px;max-width:100%}
label{font-weight:600}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:.9rem;color:var(--muted)}
.table{overflow-x:auto}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(10rem,1fr));gap:.75rem;margin:0 0 1rem;padding:0;list-style:none}
.cards li{border:1px solid var(--line);border-radius:6px;padding:.75rem}
.cards .n{display:block;font-size:1.8rem;font-weight:700}
.notice{padding:.6rem .8rem;border-radius:4px;border-left:5px solid}
.done{background:#eaf4ea;border-color:#2e7d32}.refused{background:#fbeaea;border-color:var(--warn)}
.warn{color:var(--warn);font-weight:700}
.muted{color:var(--muted)}
.vh{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.inline{display:inline-flex;flex-wrap:wrap;gap:.4rem;align-items:center;margin:.15rem 0}
.field{display:flex;flex-direction:column;gap:.2rem;margin:0 0 .75rem}
.day{display:grid;grid-template-columns:minmax(0,3fr) minmax(14rem,1fr);gap:1.5rem}
@media (max-width:50rem){.day{grid-template-columns:1fr}}
.scroll{overflow-x:auto}.timeline{width:100%;min-width:44rem;height:auto;border:1px solid var(--line);border-radius:6px;background:#fff}
.timeline .grid{stroke:#e1e1e1}.timeline .hour{font-size:11px;fill:var(--muted)}
.timeline .label{font-size:13px;fill:var(--ink)}.timeline .off{fill:#767676;font-style:italic}
.timeline .row{fill:#fafafa}
.timeline .paid{fill:var(--paid)}.timeline .held{stroke:var(--held);stroke-width:1.5}.timeline .moved{fill:var(--moved);stroke:#2b1145;stroke-width:2}
.timeline .now{stroke:#c62828;stroke-width:2}
.timeline a:focus rect{stroke:#e8a200;stroke-width:3}
.legend{display:flex;flex-wrap:wrap;gap:1rem;list-style:none;padding:0;margin:.5rem 0}
.legend span{display:inline-block;width:1.2rem;height:.8rem;margin-right:.35rem;vertical-align:middle;border-radius:2px}
.key-paid{background:var(--paid)}.key-held{background:repeating-linear-gradient(45deg,var(--held) 0 3px,#fff 3px 6px);border:1px solid var(--held)}
.key-moved{background:var(--moved);outline:2px solid #2b1145}.key-now{background:#c62828;width:.2rem!important}
pre{white-space:pre-wrap;word-break:break-word;background:var(--soft);padding:.5rem;border-radius:4px;font-size:.85rem;margin:0}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem}dl.facts dt{font-weight:600}dl.facts dd{margin:0;word-break:break-all}
"#;
