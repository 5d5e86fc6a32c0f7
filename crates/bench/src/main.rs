//! meetpool's benchmarks: a load generator that sends signed Midtrans
//! settlement notifications to a running `meetpool serve` and then checks
//! the database for double bookings, a bulk loader of historical bookings,
//! and a single-client latency probe with EXPLAIN of the hot queries.
//! `bench/run.sh` drives all three.
#![forbid(unsafe_code)]

mod adopt;
mod check;
mod cli;
mod client;
mod cpu;
mod db;
mod explain;
mod fixture;
mod imitate;
mod latency;
mod load;
mod probe;
mod reads;
mod receiver;
mod report;
mod seed;
mod send;
mod simulate;
mod sql;

use anyhow::Result;
use clap::Parser;

use crate::cli::{Cli, Cmd};

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Load(a) => load::run(a).await,
        Cmd::SeedHistory(a) => seed::run(a).await,
        Cmd::Latency(a) => latency::run(a).await,
        Cmd::Reads(a) => reads::run(a).await,
        Cmd::Adopt(a) => adopt::run(a).await,
        Cmd::Simulate(a) => simulate::run_command(a),
        Cmd::Sql { statement } => sql::print(&statement),
    }
}
