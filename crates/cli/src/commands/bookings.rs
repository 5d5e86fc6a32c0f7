//! `meetpool bookings` and `meetpool assign`.
use anyhow::{bail, Context};
use meetpool_app::views::BookingView;
use meetpool_app::{App, AssignOutcome, BookingQuery};
use meetpool_domain::BookingId;

use crate::args::BookingsCommand;
use crate::output::{json, table};

pub async fn run(app: &App, cmd: BookingsCommand, as_json: bool) -> anyhow::Result<()> {
    let BookingsCommand::List {
        unassigned,
        payment_status,
        date,
        limit,
        all,
    } = cmd;
    let mut query = BookingQuery {
        payment_status,
        unassigned,
        date,
        limit: Some(limit),
        after: None,
    };
    let mut bookings = Vec::new();
    loop {
        let page = app.list_bookings(&query).await?;
        bookings.extend(page.bookings);
        match page.next {
            Some(next) if all => query.after = Some(next),
            _ => break,
        }
    }
    let views: Vec<BookingView> = bookings.iter().map(|b| app.booking_view(b)).collect();
    if as_json {
        return json(&views);
    }
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|b| {
            vec![
                b.id.clone(),
                b.order_id.clone(),
                format!("{} {}", b.booking_date, b.booking_time),
                b.payment_status.to_owned(),
                b.meeting_link.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(&["ID", "ORDER", "WHEN (LOCAL)", "PAYMENT", "LINK"], &rows);
    Ok(())
}

pub async fn assign(app: &App, booking: String, as_json: bool) -> anyhow::Result<()> {
    let id: BookingId = booking
        .parse()
        .context("booking must be a booking id (UUID)")?;
    match app.assign(id).await? {
        AssignOutcome::Assigned { booking, already } => {
            if as_json {
                return json(&app.booking_view(&booking));
            }
            let link = booking.meeting_link.unwrap_or_default();
            println!(
                "{} {link}",
                if already {
                    "already assigned:"
                } else {
                    "assigned:"
                }
            );
            Ok(())
        }
        AssignOutcome::Exhausted { .. } => {
            bail!("no meeting link is free for this booking's time: add links, or free one")
        }
    }
}
