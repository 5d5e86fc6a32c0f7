//! A day of the pool drawn as SVG on the server: one row per link, one bar
//! per session, a line at the present moment. Each bar links to its
//! booking and names it in a `<title>`, which browsers show on hover and
//! screen readers read; the same sessions follow as a table.
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use maud::{html, Markup};
use meetpool_app::dashboard::{BarKind, DayTimeline};

use super::layout::{short_link, span};

const WIDTH: f64 = 1000.0;
/// The column of link names.
const LABELS: f64 = 215.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 26.0;
const ROW: f64 = 34.0;
/// Characters of a link shown as its row's label.
const LABEL_CHARS: usize = 28;

/// The held bars' stripes: told apart from paid ones without colour.
const HELD_FILL: &str = "url(#held)";

pub fn svg(t: &DayTimeline, tz: &TimeZone) -> Markup {
    let length = t.day.end.duration_since(t.day.start).as_secs_f64();
    let x = |at: Timestamp| {
        let f = (at.duration_since(t.day.start).as_secs_f64() / length).clamp(0.0, 1.0);
        LABELS + (WIDTH - LABELS - RIGHT) * f
    };
    let height = TOP + ROW * t.rows.len().max(1) as f64 + 6.0;
    let sessions: usize = t.rows.iter().map(|r| r.bars.len()).sum();
    let hours = (length / 3600.0).round() as i64;
    html! {
        svg.timeline xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (WIDTH) " " (height) }
            role="img" aria-labelledby="timeline-title timeline-desc" {
            title id="timeline-title" { "Sessions on " (t.date) " by link" }
            desc id="timeline-desc" {
                (t.rows.len()) " links, " (sessions) " sessions, times in " (tz.iana_name().unwrap_or("the platform's zone"))
            }
            defs {
                pattern id="held" patternUnits="userSpaceOnUse" width="6" height="6" patternTransform="rotate(45)" {
                    rect width="6" height="6" fill="#fff" {}
                    rect width="3" height="6" fill="#b35c00" {}
                }
            }
            @for h in 0..=hours {
                @let at = t.day.start + SignedDuration::from_hours(h);
                line.grid x1=(x(at)) x2=(x(at)) y1=(TOP - 6.0) y2=(height - 4.0) {}
                @if h % 3 == 0 && h < hours {
                    text.hour x=(x(at) + 2.0) y="14" { (at.to_zoned(tz.clone()).strftime("%H:%M")) }
                }
            }
            @for (i, row) in t.rows.iter().enumerate() {
                @let y = TOP + ROW * i as f64;
                g data-link=(row.link.id) data-enabled=(row.link.is_available) {
                    rect.row x=(LABELS) y=(y + 2.0) width=(WIDTH - LABELS - RIGHT) height=(ROW - 4.0) {}
                    text.label.off[!row.link.is_available] x="4" y=(y + ROW / 2.0 + 4.0) {
                        title { (row.link.meeting_link) }
                        (label(&row.link.meeting_link, row.link.is_available))
                    }
                    @for bar in &row.bars {
                        @let (x0, x1) = (x(bar.booking.window.start), x(bar.booking.window.end));
                        // The title names the link for screen readers and
                        // shows on hover.
                        a href={ "/admin/bookings/" (bar.booking.id) } {
                            title {
                                "Order " (bar.booking.order_id) ", "
                                (span(bar.booking.window.start, bar.booking.window.end, tz)) ", " (bar.kind.as_str())
                            }
                            rect class=(bar.kind.as_str()) data-booking=(bar.booking.id)
                                x=(x0) y=(y + 5.0) width=((x1 - x0).max(2.0)) height=(ROW - 10.0) rx="3"
                                fill=[(bar.kind == BarKind::Held).then_some(HELD_FILL)] {}
                        }
                    }
                }
            }
            @if t.day.start <= t.now && t.now < t.day.end {
                line.now x1=(x(t.now)) x2=(x(t.now)) y1=(TOP - 8.0) y2=(height - 2.0) {
                    title { "Now, " (t.now.to_zoned(tz.clone()).strftime("%H:%M")) }
                }
            }
        }
    }
}

fn label(url: &str, enabled: bool) -> String {
    let short = short_link(url);
    let mut text: String = short.chars().take(LABEL_CHARS).collect();
    if short.chars().count() > LABEL_CHARS {
        text.push('…');
    }
    if !enabled {
        text.push_str(" (off)");
    }
    text
}

/// The same sessions as a table, for reading rather than looking.
pub fn table(t: &DayTimeline, tz: &TimeZone) -> Markup {
    html! {
        details {
            summary { "The same sessions as a list" }
            div.table {
                table {
                    thead { tr { th { "Link" } th { "Time" } th { "Order" } th { "State" } } }
                    tbody {
                        @for row in &t.rows {
                            @for bar in &row.bars {
                                tr {
                                    td { (short_link(&row.link.meeting_link)) }
                                    td { (span(bar.booking.window.start, bar.booking.window.end, tz)) }
                                    td { a href={ "/admin/bookings/" (bar.booking.id) } { bdi { (bar.booking.order_id) } } }
                                    td { (bar.kind.as_str()) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
