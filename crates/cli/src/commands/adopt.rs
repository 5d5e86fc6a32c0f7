//! `meetpool adopt`: the report, readable or as JSON, and the progress.
use std::time::Instant;

use anyhow::bail;
use meetpool_store::postgres::adoption::{self, AdoptOptions, AdoptReport};
use secrecy::ExposeSecret;

use crate::args::{AdoptArgs, ConfigArgs};
use crate::output::json;

pub async fn run(config: &ConfigArgs, args: &AdoptArgs, as_json: bool) -> anyhow::Result<()> {
    let url = &config.database_url;
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        bail!("adopt works on PostgreSQL: set DATABASE_URL to the platform's database (postgres://...)");
    }
    // The settings the database holds, unless told otherwise; the zone
    // validated as `serve` would.
    let settings = config.settings(adoption::stored_settings(url).await?);
    meetpool_app::Config::new(&settings.timezone).map_err(anyhow::Error::msg)?;
    let options = AdoptOptions {
        schema: args.schema.clone(),
        payment_status_values: adoption::parse_values(
            "--payment-status-values",
            &args.payment_status_values,
        )?,
        status_values: adoption::parse_values("--status-values", &args.status_values)?,
        default_duration: args.default_duration,
        role: args.role.clone(),
        role_password: args
            .role_password
            .as_ref()
            .map(|p| p.expose_secret().to_owned()),
        settings,
        change_settings: args.change_settings,
        dry_run: args.dry_run,
    };
    let started = Instant::now();
    let progress = move |step: &str| {
        eprintln!("[{:>7.1}s] {step}", started.elapsed().as_secs_f64());
    };
    let report = adoption::adopt(url, &options, &progress).await?;
    if as_json {
        json(&report)?;
    } else {
        print(&report, &options);
    }
    if !report.refused.is_empty() {
        bail!(
            "adoption refused ({} problem{}); nothing was changed",
            report.refused.len(),
            if report.refused.len() == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

fn print(r: &AdoptReport, options: &AdoptOptions) {
    let s = &r.schema;
    println!(
        "{}",
        if r.dry_run {
            "meetpool adopt --dry-run: what adoption would do (nothing was changed)"
        } else {
            "meetpool adopt: done"
        }
    );
    if r.already_adopted {
        println!("meetpool's schema is there already: this brings it up to date.");
    }
    let f = &r.found;
    println!("\nFound in the schema {s}:");
    println!(
        "  bookings            {} ({} paid, {} of them without a link)",
        f.bookings, f.paid_bookings, f.paid_without_link
    );
    println!(
        "  meeting_links_pool  {} ({} enabled)",
        f.links, f.enabled_links
    );
    println!("  session_types       {}", f.session_types);
    let cols: Vec<String> = f.columns.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    if !cols.is_empty() {
        println!("  columns             {}", cols.join(", "));
    }
    if !r.vocabulary.is_empty() {
        println!("\nmeetpool's states in the platform's columns (payment_status / status):");
        for v in &r.vocabulary {
            println!(
                "  {:<10} -> {}{}",
                v.state,
                v.payment_status,
                v.status
                    .as_ref()
                    .map(|s| format!(" / {s}"))
                    .unwrap_or_default()
            );
        }
    }
    section(
        if r.dry_run { "Would change" } else { "Changed" },
        &r.changes,
    );
    if !r.moves.is_empty() {
        println!("\nBookings whose link changed ({}):", r.moves.len());
        for m in &r.moves {
            let link = |l: Option<uuid::Uuid>| {
                l.map_or_else(
                    || {
                        if m.why.starts_with("queued") {
                            "the queue"
                        } else {
                            "no link"
                        }
                        .to_owned()
                    },
                    |l| l.to_string(),
                )
            };
            println!(
                "  {} (order {}): {} -> {}\n      {}",
                m.booking_id,
                m.order_id,
                m.from_link.map_or("no link".to_owned(), |l| l.to_string()),
                link(m.to_link),
                m.why
            );
        }
    }
    if r.not_adopted_total > 0 {
        println!(
            "\nBookings left out ({}; the platform's rows stay as they are, and are adopted \
             when fixed):",
            r.not_adopted_total
        );
        for n in &r.not_adopted {
            println!(
                "  {} (order {}): {}",
                n.booking_id,
                n.order_id.as_deref().unwrap_or("-"),
                n.why
            );
        }
        if r.not_adopted_total > r.not_adopted.len() as u64 {
            println!(
                "  ... and {} more",
                r.not_adopted_total - r.not_adopted.len() as u64
            );
        }
    }
    section("Look at (left unchanged)", &r.look_at);
    section("Refused", &r.refused);
    if r.refused.is_empty() {
        println!(
            "\nNext: run meetpool as the role {role} (its search_path finds meetpool's tables):\n  \
             DATABASE_URL=postgres://{role}:PASSWORD@HOST:5432/DATABASE meetpool serve --no-migrate",
            role = options.role
        );
    }
}

fn section(title: &str, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    println!("\n{title}:");
    for l in lines {
        println!("  - {l}");
    }
}
