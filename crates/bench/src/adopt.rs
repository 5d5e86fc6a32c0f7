//! The `adopt` command: `meetpool adopt` on a platform's database holding
//! a large history, against the time PostgreSQL takes to build the
//! exclusion constraint's index (a GiST index on the link and the busy
//! range) over the same bookings alone, in one run on one server.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use meetpool_store::postgres::adoption::{adopt, AdoptOptions};
use meetpool_store::DbSettings;
use serde_json::json;
use sqlx::{Connection, PgConnection};

use crate::cli::AdoptArgs;

/// The platform's schema and a few rows of each kind of trouble.
const PLATFORM: &str = include_str!("../../conformance/fixtures/adopter.sql");

/// Sessions a link holds each day in the generated history.
const PER_LINK_DAY: u32 = 20;

pub async fn run(a: AdoptArgs) -> Result<()> {
    let mut server = PgConnection::connect(&a.server_url)
        .await
        .context("connect to the server")?;
    let name = "meetpool_adopt_bench";
    for stmt in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        sqlx::raw_sql(&stmt).execute(&mut server).await?;
    }
    let mut url = reqwest::Url::parse(&a.server_url)?;
    url.set_path(name);
    let url = url.to_string();
    let mut db = PgConnection::connect(&url).await?;

    say(format!(
        "building a platform's database with {} bookings",
        a.bookings
    ));
    let started = Instant::now();
    sqlx::raw_sql(PLATFORM).execute(&mut db).await?;
    let links = a.links.saturating_sub(3);
    let days = a.bookings.div_ceil(a.links * PER_LINK_DAY);
    sqlx::raw_sql(&format!(
        "INSERT INTO meeting_links_pool (meeting_link, created_at) \
           SELECT 'https://meet.google.com/ben-' || lpad(g::text, 4, '0') || '-ch', now() - interval '1 hour' \
           FROM generate_series(1, {links}) g; \
         INSERT INTO bookings (order_id, user_id, expert_id, session_type_id, booking_date, booking_time, \
             total_price, payment_status, status, meeting_link_id, meeting_link, paid_at, created_at) \
           SELECT 'BENCH-' || d || '-' || s || '-' || l.n, '00000000-0000-4000-a000-000000000001', \
             '00000000-0000-4000-b000-000000000001', '00000000-0000-4000-c000-000000000030', \
             current_date - {half} + d, to_char(time '08:00' + s * interval '30 minutes', 'HH24:MI'), \
             75000, 'paid', 'confirmed', l.id, l.meeting_link, now() - interval '1 day', now() - interval '1 day' \
           FROM generate_series(0, {last_day}) d, generate_series(0, {slots}) s, \
             (SELECT id, meeting_link, row_number() OVER (ORDER BY created_at, id) AS n FROM meeting_links_pool) l \
           LIMIT {bookings}; \
         ANALYZE bookings",
        half = days / 2,
        last_day = days - 1,
        slots = PER_LINK_DAY - 1,
        bookings = a.bookings,
    ))
    .execute(&mut db)
    .await?;
    say(format!(
        "  built in {:.1} s",
        started.elapsed().as_secs_f64()
    ));

    // The baseline: the exclusion constraint over the same bookings (before
    // the old flow's overlaps below), in a table of their link and busy
    // range alone: its index built, then each row checked against it.
    sqlx::raw_sql(
        "CREATE EXTENSION IF NOT EXISTS btree_gist; \
         CREATE TABLE index_alone AS SELECT meeting_link_id, \
           tstzrange((booking_date + booking_time::time) AT TIME ZONE 'Asia/Jakarta', \
                     (booking_date + booking_time::time) AT TIME ZONE 'Asia/Jakarta' + interval '30 minutes') AS busy \
           FROM bookings WHERE meeting_link_id IS NOT NULL AND order_id LIKE 'BENCH-%'; \
         ANALYZE index_alone",
    )
    .execute(&mut db)
    .await?;
    // What the old flow leaves: a hundred double bookings and a hundred
    // paid bookings without a link.
    sqlx::raw_sql(concat!(
        "UPDATE bookings SET booking_time = to_char(booking_time::time + interval '15 minutes', 'HH24:MI') ",
        "WHERE id IN (SELECT id FROM bookings WHERE order_id LIKE 'BENCH-%' ORDER BY id LIMIT 100); ",
        "UPDATE bookings SET meeting_link_id = NULL, meeting_link = NULL ",
        "WHERE id IN (SELECT id FROM bookings WHERE order_id LIKE 'BENCH-%' ORDER BY id DESC LIMIT 100); ",
        "ANALYZE bookings"
    ))
    .execute(&mut db)
    .await?;
    let before = index_alone(&mut db).await?;
    say(format!(
        "the exclusion index alone: {:.2} s",
        before.as_secs_f64()
    ));

    say("meetpool adopt:");
    let options = AdoptOptions {
        schema: "public".into(),
        payment_status_values: pairs(
            "pending=waiting,failed=waiting,cancelled=waiting,expired=waiting",
        ),
        status_values: pairs(
            "paid=confirmed,failed=cancelled,expired=cancelled,refunded=cancelled",
        ),
        default_duration: Some(60),
        role: "meetpool_bench".into(),
        role_password: None,
        settings: DbSettings {
            timezone: "Asia/Jakarta".into(),
            buffer_minutes: 0,
        },
        change_settings: false,
        dry_run: false,
    };
    let started = Instant::now();
    let progress = |step: &str| {
        say(format!(
            "  [{:>6.1} s] {step}",
            started.elapsed().as_secs_f64()
        ))
    };
    let report = adopt(&url, &options, &progress).await?;
    let adopting = started.elapsed();
    anyhow::ensure!(report.refused.is_empty(), "refused: {:?}", report.refused);
    let after = index_alone(&mut db).await?;
    say(format!(
        "the exclusion index alone, again: {:.2} s",
        after.as_secs_f64()
    ));
    let baseline = (before + after) / 2;
    let ratio = adopting.as_secs_f64() / baseline.as_secs_f64();
    say(format!(
        "adopt {:.2} s for {} bookings ({} moved or given a link) = {ratio:.2}x the index alone (target: within 3x)",
        adopting.as_secs_f64(),
        a.bookings,
        report.moves.len()
    ));
    db.close().await?;
    for stmt in [
        format!("DROP DATABASE {name} WITH (FORCE)"),
        "DROP ROLE IF EXISTS meetpool_bench".to_owned(),
    ] {
        sqlx::raw_sql(&stmt).execute(&mut server).await?;
    }
    if a.json {
        println!(
            "{}",
            json!({
                "bookings": a.bookings,
                "adopt_s": adopting.as_secs_f64(),
                "index_alone_s": [before.as_secs_f64(), after.as_secs_f64()],
                "ratio": ratio,
                "moves": report.moves.len(),
            })
        );
    }
    Ok(())
}

fn pairs(raw: &str) -> BTreeMap<String, String> {
    raw.split(',')
        .filter_map(|p| p.split_once('='))
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect()
}

/// Progress and results go to stderr; `--json` puts the figures on stdout.
fn say(line: impl AsRef<str>) {
    eprintln!("{}", line.as_ref());
}

/// Builds the exclusion constraint's index over the bookings alone.
async fn index_alone(db: &mut PgConnection) -> Result<Duration> {
    sqlx::raw_sql("ALTER TABLE index_alone DROP CONSTRAINT IF EXISTS index_alone_excl")
        .execute(&mut *db)
        .await?;
    let started = Instant::now();
    sqlx::raw_sql(
        "ALTER TABLE index_alone ADD CONSTRAINT index_alone_excl \
         EXCLUDE USING gist (meeting_link_id WITH =, busy WITH &&) WHERE (meeting_link_id IS NOT NULL)",
    )
    .execute(&mut *db)
    .await?;
    Ok(started.elapsed())
}
