//! The `load` command: many concurrent clients paying pending bookings, for
//! throughput, latency and CPU per notification, and then the database
//! checked for what concurrency must never produce (double bookings).
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::json;

use crate::check::check_db;
use crate::cli::LoadArgs;
use crate::client::Bench;
use crate::cpu::CpuSample;
use crate::imitate::Imitator;
use crate::receiver::Receiver;
use crate::report::{pct, say};
use crate::send::send_all;

pub async fn run(a: LoadArgs) -> Result<()> {
    let b = Bench::new(a.api.clone(), a.clients)?;
    let j = a.api.json;
    let receiver = match a.receive_events {
        Some(addr) => Some(Receiver::listen(addr).await?),
        None => None,
    };
    let imitator = match a.receive_events {
        Some(addr) if a.imitate_events => Some(Imitator::start(addr)?),
        _ => None,
    };
    let t0 = Instant::now();
    let orders = b.setup(a.bookings, a.clients).await?;
    say(
        j,
        format!(
            "set-up: {} links, {} pending bookings ({} per hourly slot from {}) in {:.1}s",
            a.api.links,
            orders.len(),
            a.api.per_slot,
            a.api.start_date,
            t0.elapsed().as_secs_f64()
        ),
    );
    let bodies: Vec<String> = orders.iter().map(|o| b.notification(o)).collect();
    // The set-up's own events (none are expected: bookings are created
    // pending) are not the load's.
    let before = receiver.as_ref().map_or(0, Receiver::received);
    let cpu_before = CpuSample::take(a.server_pid, a.postgres_pid);
    let (t, elapsed) = send_all(&b, &bodies, a.clients, imitator.as_ref()).await;
    let cpu =
        CpuSample::take(a.server_pid, a.postgres_pid).per_unit_since(&cpu_before, bodies.len());
    let rate = bodies.len() as f64 / elapsed.as_secs_f64();
    say(
        j,
        format!(
            "notifications: {} from {} clients in {:.2}s = {:.1} req/s; p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            bodies.len(),
            a.clients,
            elapsed.as_secs_f64(),
            rate,
            pct(&t.latencies, 50.0),
            pct(&t.latencies, 95.0),
            pct(&t.latencies, 99.0),
            pct(&t.latencies, 100.0),
        ),
    );
    say(
        j,
        format!(
            "answers: {} ok, {} errors, {} got a link",
            t.ok, t.errors, t.with_link
        ),
    );
    // A payment_changed event for each applied notification, and a
    // link_assigned for each link.
    let events = match &receiver {
        Some(r) => {
            let expected = before + t.ok + t.with_link;
            let drain = Instant::now();
            let got = r.wait_for(expected, Duration::from_secs(120)).await;
            say(
                j,
                format!(
                    "events: {} of {} delivered ({} twice), the last {:.2}s after the load; change to delivery p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                    got.events - before,
                    expected - before,
                    got.duplicates,
                    drain.elapsed().as_secs_f64(),
                    pct(&got.lags, 50.0),
                    pct(&got.lags, 99.0),
                    pct(&got.lags, 100.0),
                ),
            );
            Some(json!({
                "expected": expected - before,
                "delivered": got.events - before,
                "duplicates": got.duplicates,
                "drain_seconds": drain.elapsed().as_secs_f64(),
                "lag_p50_ms": pct(&got.lags, 50.0),
                "lag_p95_ms": pct(&got.lags, 95.0),
                "lag_p99_ms": pct(&got.lags, 99.0),
                "lag_max_ms": pct(&got.lags, 100.0),
            }))
        }
        None => None,
    };
    if let Some(e) = &t.first_error {
        say(j, format!("first error: {e}"));
    }
    say(j, format!("CPU per notification: {cpu}"));
    let check = match &a.api.database_url {
        Some(url) => Some(check_db(url, &b.tag).await?),
        None => None,
    };
    if let Some(c) = &check {
        say(
            j,
            format!(
                "database: {} overlapping pairs, {} assigned links without a busy range, {} of this run's bookings paid, {} hold a link",
                c.overlaps, c.unguarded, c.paid, c.assigned
            ),
        );
    }
    if j {
        println!(
            "{}",
            json!({
                "notifications": bodies.len(),
                "clients": a.clients,
                "seconds": elapsed.as_secs_f64(),
                "rate": rate,
                "p50_ms": pct(&t.latencies, 50.0),
                "p95_ms": pct(&t.latencies, 95.0),
                "p99_ms": pct(&t.latencies, 99.0),
                "max_ms": pct(&t.latencies, 100.0),
                "ok": t.ok,
                "errors": t.errors,
                "with_link": t.with_link,
                "overlaps": check.as_ref().map(|c| c.overlaps),
                "unguarded": check.as_ref().map(|c| c.unguarded),
                "paid": check.as_ref().map(|c| c.paid),
                "assigned": check.as_ref().map(|c| c.assigned),
                "cpu_us": cpu.json(),
                "events": events,
            })
        );
    }
    if let Some(c) = check {
        if c.overlaps > 0 || c.unguarded > 0 {
            bail!("{} overlapping assignments found", c.overlaps);
        }
        if c.assigned != t.with_link as i64 {
            bail!(
                "{} notifications answered with a link but {} bookings hold one",
                t.with_link,
                c.assigned
            );
        }
    }
    if t.errors > 0 {
        bail!("{} notifications failed", t.errors);
    }
    Ok(())
}
