//! The command line, kept apart from the commands so that the flags the
//! scripts in bench/ depend on can be read in one place.
use clap::{Args, Parser, Subcommand};
use jiff::civil::Date;

#[derive(Parser)]
#[command(name = "meetpool-bench", about = "Benchmarks for meetpool")]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Concurrent signed settlement notifications; throughput, latency, overlaps.
    Load(LoadArgs),
    /// Bulk-load paid, assigned, non-overlapping historical bookings.
    SeedHistory(SeedArgs),
    /// Single-client assignment latency, and EXPLAIN (ANALYZE) of the hot queries.
    Latency(LatencyArgs),
    /// How well first-fit and best-fit pack a fixed pool, on generated
    /// workloads that fit it by peak concurrency (the domain's own code).
    Simulate(SimulateArgs),
    /// One day's availability and a 30-day capacity report against one
    /// GET /api/bookings/{id}, in alternation (PostgreSQL).
    Reads(ReadsArgs),
    /// `meetpool adopt` on a platform's database with a large history,
    /// against building the exclusion index over those bookings alone.
    Adopt(AdoptArgs),
    /// Print one of the statements a paid notification runs on PostgreSQL, as
    /// the store sends it (`lock`, `candidates` or `write`), for bench/replay.sh.
    Sql { statement: String },
}

#[derive(Args, Clone)]
pub struct Api {
    /// Base URL of a running `meetpool serve`.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    #[arg(long, env = "MEETPOOL_ADMIN_TOKEN")]
    pub admin_token: String,
    #[arg(long, env = "MIDTRANS_SERVER_KEY")]
    pub server_key: String,
    /// Links to add to the pool before the run (0: use those already there).
    #[arg(long, default_value_t = 32)]
    pub links: u32,
    /// First day of the benchmark's bookings (use a different one per run on one database).
    #[arg(long, default_value = "2030-01-01")]
    pub start_date: Date,
    /// Bookings that share one hourly slot (keep it below --links so they fit).
    #[arg(long, default_value_t = 4)]
    pub per_slot: u32,
    /// Only odd hours (00:00-01:00 free, 01:00 used, ...): the gaps seed-history leaves.
    #[arg(long)]
    pub odd_hours: bool,
    /// Database of that server, for the checks afterwards (postgres://... or sqlite:...).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// One JSON object on stdout (human-readable text goes to stderr).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub api: Api,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Bookings created (untimed), then paid by one notification each (timed).
    #[arg(long, default_value_t = 5000)]
    pub bookings: usize,
    /// PID of the `meetpool serve` under test: report its CPU time per notification.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// PID of the PostgreSQL postmaster: report the CPU time of all its
    /// processes per notification.
    #[arg(long)]
    pub postgres_pid: Option<u32>,
    /// Receive the server's outbound events on this address (its
    /// MEETPOOL_EVENTS_URL points here): after the load, wait for every
    /// event and report the time from each change to its delivery.
    #[arg(long)]
    pub receive_events: Option<std::net::SocketAddr>,
    /// Send each answered notification's events from here to the
    /// receiver, signed and of the same size as the server's, for a server
    /// that writes events (`meetpool events on`) but does not deliver them
    /// (no MEETPOOL_EVENTS_URL): the least delivery can cost.
    #[arg(long, requires = "receive_events")]
    pub imitate_events: bool,
}

#[derive(Args)]
pub struct LatencyArgs {
    #[command(flatten)]
    pub api: Api,
    /// Timed notifications, sent one at a time.
    #[arg(long, default_value_t = 300)]
    pub notifications: usize,
    /// Untimed notifications first (connection set-up, statement caches).
    #[arg(long, default_value_t = 30)]
    pub warmup: usize,
    /// Skip the EXPLAIN output.
    #[arg(long)]
    pub no_explain: bool,
    /// A second `meetpool serve` (on its own database) to compare with: the
    /// two are measured in alternating turns, so that a machine getting
    /// slower or faster during the run affects both alike, and the ratio of
    /// the two p50s is printed.
    #[arg(long, requires = "baseline_database_url")]
    pub baseline_url: Option<String>,
    /// The baseline server's database.
    #[arg(long)]
    pub baseline_database_url: Option<String>,
    /// Notifications per turn when alternating with --baseline-url.
    #[arg(long, default_value_t = 10)]
    pub turn: usize,
}

#[derive(Args)]
pub struct SeedArgs {
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Historical bookings to add (on top of earlier seed-history runs).
    #[arg(long, default_value_t = 1_000_000)]
    pub bookings: i64,
    /// Enabled links the history is spread over (created if fewer exist).
    #[arg(long, default_value_t = 32)]
    pub links: i64,
    /// The history's first day (UTC); it fills the even hours of each link
    /// from there, leaving the odd hours for `latency --odd-hours`.
    #[arg(long, default_value = "2030-01-01")]
    pub from_date: Date,
}

#[derive(Args)]
pub struct ReadsArgs {
    /// Base URL of a running `meetpool serve`.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    #[arg(long, env = "MEETPOOL_ADMIN_TOKEN")]
    pub admin_token: String,
    /// That server's PostgreSQL database (a booking and a day are read from it).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Timed rounds of the three requests.
    #[arg(long, default_value_t = 200)]
    pub rounds: usize,
    /// Untimed rounds first.
    #[arg(long, default_value_t = 20)]
    pub warmup: usize,
    /// One JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct SimulateArgs {
    /// Pool sizes to simulate.
    #[arg(long, value_delimiter = ',', default_values_t = [3, 5, 10, 20, 50])]
    pub pools: Vec<usize>,
    /// Workloads per pool size and scenario (each its own seed).
    #[arg(long, default_value_t = 5)]
    pub seeds: u64,
}

#[derive(Args)]
pub struct AdoptArgs {
    /// The PostgreSQL server (a database of the benchmark's own is made there).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub server_url: String,
    #[arg(long, default_value_t = 1_000_000)]
    pub bookings: u32,
    /// Links in the pool.
    #[arg(long, default_value_t = 50)]
    pub links: u32,
    /// One JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}
