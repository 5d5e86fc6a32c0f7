//! The `seed-history` command: a database that has served for years holds
//! many past bookings, and the hot queries must stay fast against them; this
//! writes such a history straight into the tables, in bulk rather than one
//! request at a time through the API.
mod postgres;
mod sqlite;

use std::time::Instant;

use anyhow::Result;

use crate::cli::SeedArgs;
use crate::db::{connect, Db};
use crate::fixture::DURATION_MIN;

pub async fn run(a: SeedArgs) -> Result<()> {
    let t0 = Instant::now();
    let links = a.links.max(1);
    let (from, total) = match connect(&a.database_url).await? {
        Db::Pg(pool) => postgres::seed(&pool, a.bookings, links, a.from_date).await?,
        Db::Lite(pool) => sqlite::seed(&pool, a.bookings, links, a.from_date).await?,
    };
    println!(
        "seed-history: {} bookings added (HIST-{from}..) over {links} links in {:.1}s; {total} bookings stored",
        a.bookings,
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Layout: booking g sits on link g % links, in the (g / links)-th slot from
/// --from-date; slots are whole hours, one session plus the buffer long, and
/// every other slot is left free so that new bookings there find neighbours
/// on both sides (as dense as the history gets, whatever its size).
fn slot_hours(buffer_minutes: i64) -> i64 {
    2 * ((DURATION_MIN + buffer_minutes + 59) / 60)
}
