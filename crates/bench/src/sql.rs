//! The `sql` command: bench/replay.sh replays the store's own statements
//! through pgbench, so it takes them from the store rather than a copy that
//! could drift.
use anyhow::{bail, Result};
use meetpool_store::postgres;

pub fn print(statement: &str) -> Result<()> {
    let sql = match statement {
        "lock" => postgres::notification_lock_sql(),
        "candidates" => postgres::CANDIDATES_SQL,
        "write" => postgres::write_sql(),
        other => bail!("unknown statement {other:?} (lock, candidates or write)"),
    };
    println!("{sql}");
    Ok(())
}
