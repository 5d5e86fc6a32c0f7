//! `meetpool events`: the outbound event log, and its configuration.
use anyhow::Context;
use clap::Subcommand;
use meetpool_app::{parse_duration, parse_schedule, App, EventsConfig};
use secrecy::ExposeSecret;

use crate::args::ConfigArgs;
use crate::output::{json, table};

#[derive(Subcommand, Debug)]
pub enum EventsCommand {
    /// Events and how their delivery stands, newest first.
    List {
        /// Only those that failed for good.
        #[arg(long, conflicts_with = "status")]
        failed: bool,
        /// pending, failed or delivered.
        #[arg(long)]
        status: Option<String>,
        /// Only this booking's events.
        #[arg(long, value_name = "BOOKING_ID")]
        booking: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Send an undelivered event again now (a failed one gets a fresh
    /// retry schedule).
    Retry { id: String },
    /// Start writing events for every change (`serve` with an events URL
    /// does it too).
    On,
    /// Stop writing events: for a database whose platform no longer
    /// receives them (a replica started with an events URL turns them on
    /// again).
    Off,
}

/// The events configuration the flags and environment describe: none
/// without a URL; a URL without a secret is refused.
pub fn config(args: &ConfigArgs) -> anyhow::Result<Option<EventsConfig>> {
    let Some(url) = &args.events_url else {
        return Ok(None);
    };
    let secret = args
        .events_secret
        .as_ref()
        .context("MEETPOOL_EVENTS_URL is set but MEETPOOL_EVENTS_SECRET is not: events are signed with it (whsec_...)")?;
    let mut config = EventsConfig::new(url, secret.expose_secret()).map_err(anyhow::Error::msg)?;
    config.retry = parse_schedule(&args.events_retry)
        .map_err(|e| anyhow::anyhow!("MEETPOOL_EVENTS_RETRY: {e}"))?;
    config.timeout = parse_duration(&args.events_timeout)
        .map_err(|e| anyhow::anyhow!("MEETPOOL_EVENTS_TIMEOUT: {e}"))?;
    config.keep = parse_duration(&args.events_keep)
        .map_err(|e| anyhow::anyhow!("MEETPOOL_EVENTS_KEEP: {e}"))?;
    config.concurrency = args.events_concurrency as usize;
    Ok(Some(config))
}

pub async fn run(app: &App, cmd: EventsCommand, as_json: bool) -> anyhow::Result<()> {
    match cmd {
        EventsCommand::List {
            failed,
            status,
            booking,
            limit,
        } => {
            let status = if failed {
                Some("failed".to_owned())
            } else {
                status
            };
            let events = app
                .deliveries(status.as_deref(), booking.as_deref(), Some(limit))
                .await?;
            if as_json {
                return json(&events);
            }
            let rows: Vec<Vec<String>> = events
                .iter()
                .map(|e| {
                    vec![
                        e.id.clone(),
                        e.kind.clone(),
                        e.booking_id.clone().unwrap_or_else(|| "-".into()),
                        e.status.to_owned(),
                        e.attempts.to_string(),
                        e.created_at.clone(),
                        e.last_error.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            table(
                &[
                    "ID",
                    "TYPE",
                    "BOOKING",
                    "STATUS",
                    "ATTEMPTS",
                    "CREATED",
                    "LAST ERROR",
                ],
                &rows,
            );
            Ok(())
        }
        EventsCommand::On | EventsCommand::Off => {
            let on = matches!(cmd, EventsCommand::On);
            app.record_events(on).await?;
            println!(
                "events are {} for every change",
                if on { "written" } else { "no longer written" }
            );
            Ok(())
        }
        EventsCommand::Retry { id } => {
            let event = app.retry_delivery(&id).await?;
            if as_json {
                return json(&event);
            }
            println!("{} is due now ({})", event.id, event.kind);
            Ok(())
        }
    }
}
