//! The `reads` command: what selling a slot costs to ask. One day's
//! availability and a 30-day capacity report against one
//! `GET /api/bookings/{id}`, on a server with a large history, in
//! alternating turns so that the machine's drift hits all three alike.
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::cli::ReadsArgs;
use crate::report::{pct, say};

pub async fn run(a: ReadsArgs) -> Result<()> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&a.database_url)
        .await?;
    // A booking from the middle of the history, and its day: the busiest
    // kind of day the history has.
    let (id, session_type, day): (uuid::Uuid, uuid::Uuid, String) = sqlx::query_as(
        "SELECT id, session_type_id, booking_date::text FROM bookings \
         ORDER BY starts_at OFFSET (SELECT count(*) / 2 FROM bookings) LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .context("a booking to read")?;
    let to: String = sqlx::query_scalar("SELECT ($1::date + 29)::text")
        .bind(&day)
        .fetch_one(&pool)
        .await?;
    let http = reqwest::Client::new();
    let paths = [
        format!("/api/bookings/{id}"),
        format!("/api/availability?date={day}&session_type_id={session_type}"),
        format!("/api/capacity?from={day}&to={to}"),
    ];
    let mut times: [Vec<Duration>; 3] = Default::default();
    for round in 0..a.warmup + a.rounds {
        for (i, path) in paths.iter().enumerate() {
            let started = Instant::now();
            let res = http
                .get(format!("{}{path}", a.url))
                .bearer_auth(&a.admin_token)
                .send()
                .await?;
            if !res.status().is_success() {
                bail!("{path}: {}", res.status());
            }
            res.bytes().await?;
            if round >= a.warmup {
                times[i].push(started.elapsed());
            }
        }
    }
    for t in &mut times {
        t.sort();
    }
    let p50: Vec<f64> = times.iter().map(|t| pct(t, 50.0)).collect();
    let j = a.json;
    say(j, format!("day {day}, {} rounds in alternation", a.rounds));
    say(j, format!("GET /api/bookings/{{id}}: p50 {:.2} ms", p50[0]));
    say(
        j,
        format!(
            "availability, one day: p50 {:.2} ms, {:.2}x (target <= 3x)",
            p50[1],
            p50[1] / p50[0]
        ),
    );
    say(
        j,
        format!(
            "capacity, 30 days: p50 {:.2} ms, {:.2}x (target <= 3x)",
            p50[2],
            p50[2] / p50[0]
        ),
    );
    if j {
        println!(
            "{}",
            json!({
                "booking_p50_ms": p50[0], "availability_p50_ms": p50[1], "capacity_p50_ms": p50[2],
                "availability_ratio": p50[1] / p50[0], "capacity_ratio": p50[2] / p50[0],
            })
        );
    }
    Ok(())
}
