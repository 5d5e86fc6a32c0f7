//! meetpool's benchmarks: a load generator that sends signed Midtrans
//! settlement notifications to a running `meetpool serve` and then checks
//! the database for double bookings, a bulk loader of historical bookings,
//! and a single-client latency probe with EXPLAIN of the hot queries.
//! `bench/run.sh` drives all three.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use jiff::civil::Date;
use jiff::ToSpan;
use meetpool_domain::midtrans::signature;
use serde_json::{json, Value};
use sqlx::{PgPool, Row, SqlitePool};

const PRICE: i64 = 100_000;
const GROSS_AMOUNT: &str = "100000.00";
/// Session length of every benchmark booking, minutes.
const DURATION_MIN: i64 = 60;

#[derive(Parser)]
#[command(name = "meetpool-bench", about = "Benchmarks for meetpool")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Concurrent signed settlement notifications; throughput, latency, overlaps.
    Load(LoadArgs),
    /// Bulk-load paid, assigned, non-overlapping historical bookings.
    SeedHistory(SeedArgs),
    /// Single-client assignment latency, and EXPLAIN (ANALYZE) of the hot queries.
    Latency(LatencyArgs),
    /// Print one of the statements a paid notification runs on PostgreSQL, as
    /// the store sends it (`lock`, `candidates` or `write`), for bench/replay.sh.
    Sql { statement: String },
}

#[derive(Args, Clone)]
struct Api {
    /// Base URL of a running `meetpool serve`.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long, env = "MEETPOOL_ADMIN_TOKEN")]
    admin_token: String,
    #[arg(long, env = "MIDTRANS_SERVER_KEY")]
    server_key: String,
    /// Links to add to the pool before the run (0: use those already there).
    #[arg(long, default_value_t = 32)]
    links: u32,
    /// First day of the benchmark's bookings (use a different one per run on one database).
    #[arg(long, default_value = "2030-01-01")]
    start_date: Date,
    /// Bookings that share one hourly slot (keep it below --links so they fit).
    #[arg(long, default_value_t = 4)]
    per_slot: u32,
    /// Only odd hours (00:00-01:00 free, 01:00 used, ...): the gaps seed-history leaves.
    #[arg(long)]
    odd_hours: bool,
    /// Database of that server, for the checks afterwards (postgres://... or sqlite:...).
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// One JSON object on stdout (human-readable text goes to stderr).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct LoadArgs {
    #[command(flatten)]
    api: Api,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Bookings created (untimed), then paid by one notification each (timed).
    #[arg(long, default_value_t = 5000)]
    bookings: usize,
    /// PID of the `meetpool serve` under test: report its CPU time per notification.
    #[arg(long)]
    server_pid: Option<u32>,
    /// PID of the PostgreSQL postmaster: report the CPU time of all its
    /// processes per notification.
    #[arg(long)]
    postgres_pid: Option<u32>,
}

#[derive(Args)]
struct LatencyArgs {
    #[command(flatten)]
    api: Api,
    /// Timed notifications, sent one at a time.
    #[arg(long, default_value_t = 300)]
    notifications: usize,
    /// Untimed notifications first (connection set-up, statement caches).
    #[arg(long, default_value_t = 30)]
    warmup: usize,
    /// Skip the EXPLAIN output.
    #[arg(long)]
    no_explain: bool,
    /// A second `meetpool serve` (on its own database) to compare with: the
    /// two are measured in alternating turns, so that a machine getting
    /// slower or faster during the run affects both alike, and the ratio of
    /// the two p50s is printed.
    #[arg(long, requires = "baseline_database_url")]
    baseline_url: Option<String>,
    /// The baseline server's database.
    #[arg(long)]
    baseline_database_url: Option<String>,
    /// Notifications per turn when alternating with --baseline-url.
    #[arg(long, default_value_t = 10)]
    turn: usize,
}

#[derive(Args)]
struct SeedArgs {
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Historical bookings to add (on top of earlier seed-history runs).
    #[arg(long, default_value_t = 1_000_000)]
    bookings: i64,
    /// Enabled links the history is spread over (created if fewer exist).
    #[arg(long, default_value_t = 32)]
    links: i64,
    /// The history's first day (UTC); it fills the even hours of each link
    /// from there, leaving the odd hours for `latency --odd-hours`.
    #[arg(long, default_value = "2030-01-01")]
    from_date: Date,
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Load(a) => load(a).await,
        Cmd::SeedHistory(a) => seed_history(a).await,
        Cmd::Latency(a) => latency(a).await,
        Cmd::Sql { statement } => {
            use meetpool_store::postgres;
            let sql = match statement.as_str() {
                "lock" => postgres::notification_lock_sql(),
                "candidates" => postgres::CANDIDATES_SQL,
                "write" => postgres::write_sql(),
                other => bail!("unknown statement {other:?} (lock, candidates or write)"),
            };
            println!("{sql}");
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------
// HTTP set-up

struct Bench {
    http: reqwest::Client,
    api: Api,
    /// Distinguishes this run's rows from any earlier run's.
    tag: String,
}

impl Bench {
    fn new(api: Api, clients: usize) -> Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(clients.max(1))
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(60))
            .build()?;
        let tag = format!("B{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        Ok(Self { http, api, tag })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.api.url.trim_end_matches('/'), path)
    }

    async fn admin_post(&self, path: &str, body: Value) -> Result<Value> {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.api.admin_token)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = r.status();
        let text = r.text().await?;
        if !status.is_success() {
            bail!("POST {path}: {status}: {text}");
        }
        Ok(serde_json::from_str(&text)?)
    }

    /// A session type, the links asked for, and `n` pending bookings spread
    /// over hourly slots, `per_slot` to a slot. Returns the order ids.
    async fn setup(&self, n: usize, concurrency: usize) -> Result<Vec<String>> {
        let st = self
            .admin_post(
                "/api/session-types",
                json!({ "name": format!("bench {}", self.tag), "duration": DURATION_MIN, "price": PRICE }),
            )
            .await?;
        let st_id = st["id"]
            .as_str()
            .context("session type without id")?
            .to_owned();
        let links = self.api.links as usize;
        self.parallel(links, concurrency, |i| async move {
            self.admin_post(
                "/api/links",
                json!({ "meeting_link": format!("https://meet.example.com/{}-{i}", self.tag) }),
            )
            .await
            .map(|_| ())
        })
        .await?;
        let per_slot = self.api.per_slot.max(1) as usize;
        let slots = n.div_ceil(per_slot).max(1);
        let start = self.api.start_date;
        let st_id = &st_id;
        self.parallel(n, concurrency, |i| {
            let b = self;
            async move {
                // Consecutive bookings land in different slots, so concurrent
                // notifications rarely compete for the same hours.
                let slot = i % slots;
                let per_day = if b.api.odd_hours { 12 } else { 24 };
                let date = start.checked_add(((slot / per_day) as i64).days())?;
                let hour = if b.api.odd_hours {
                    2 * (slot % 12) + 1
                } else {
                    slot % 24
                };
                let body = json!({
                    "order_id": b.order_id(i),
                    "user_id": format!("user-{i}"),
                    "expert_id": format!("expert-{}", i % 97),
                    "session_type_id": st_id,
                    "booking_date": date.to_string(),
                    "booking_time": format!("{hour:02}:00"),
                    "price": PRICE,
                });
                b.admin_post("/api/bookings", body).await.map(|_| ())
            }
        })
        .await?;
        Ok((0..n).map(|i| self.order_id(i)).collect())
    }

    fn order_id(&self, i: usize) -> String {
        format!("{}-{i:07}", self.tag)
    }

    /// Runs `f(self, i)` for i in 0..n from `concurrency` tasks.
    async fn parallel<F, Fut>(&self, n: usize, concurrency: usize, f: F) -> Result<()>
    where
        F: Fn(usize) -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        let next = AtomicUsize::new(0);
        let worker = || async {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), anyhow::Error>(());
                }
                f(i).await?;
            }
        };
        let workers: Vec<_> = (0..concurrency.max(1)).map(|_| worker()).collect();
        for r in join_all(workers).await {
            r?;
        }
        Ok(())
    }

    fn notification(&self, order_id: &str) -> String {
        json!({
            "order_id": order_id,
            "status_code": "200",
            "gross_amount": GROSS_AMOUNT,
            "signature_key": signature(order_id, "200", GROSS_AMOUNT, &self.api.server_key),
            "transaction_status": "settlement",
            "transaction_id": uuid::Uuid::new_v4().to_string(),
            "fraud_status": "accept",
            "payment_type": "bank_transfer",
            "transaction_time": "2030-01-01 10:00:00",
            "currency": "IDR",
        })
        .to_string()
    }
}

/// Polls every future to completion on the current task (no spawn needed:
/// the work is network-bound).
async fn join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *o = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.expect("ready")).collect()
}

// ---------------------------------------------------------------------------
// Timed notifications

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    ok: usize,
    errors: usize,
    with_link: usize,
    first_error: Option<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.ok += other.ok;
        self.errors += other.errors;
        self.with_link += other.with_link;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

async fn send_all(b: &Bench, bodies: &[String], clients: usize) -> (Tally, Duration) {
    let url = b.url("/webhooks/midtrans");
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let worker = || async {
        let mut t = Tally::default();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(body) = bodies.get(i) else {
                return t;
            };
            let t0 = Instant::now();
            let sent = b
                .http
                .post(&url)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await;
            let answer = match sent {
                Ok(r) => {
                    let status = r.status();
                    r.bytes().await.map(|bytes| (status, bytes))
                }
                Err(e) => Err(e),
            };
            t.latencies.push(t0.elapsed());
            match answer {
                Ok((status, bytes)) if status.is_success() => {
                    t.ok += 1;
                    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                    if v["meetingLink"].is_string() {
                        t.with_link += 1;
                    }
                }
                Ok((status, bytes)) => {
                    t.errors += 1;
                    t.first_error.get_or_insert_with(|| {
                        format!("{status}: {}", String::from_utf8_lossy(&bytes))
                    });
                }
                Err(e) => {
                    t.errors += 1;
                    t.first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
    };
    let workers: Vec<_> = (0..clients.max(1)).map(|_| worker()).collect();
    let parts = join_all(workers).await;
    let elapsed = started.elapsed();
    let mut all = Tally::default();
    for p in parts {
        all.merge(p);
    }
    all.latencies.sort();
    (all, elapsed)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

fn say(json_mode: bool, line: impl AsRef<str>) {
    if json_mode {
        eprintln!("{}", line.as_ref());
    } else {
        println!("{}", line.as_ref());
    }
}

async fn load(a: LoadArgs) -> Result<()> {
    let b = Bench::new(a.api.clone(), a.clients)?;
    let j = a.api.json;
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
    let cpu_before = CpuSample::take(a.server_pid, a.postgres_pid);
    let (t, elapsed) = send_all(&b, &bodies, a.clients).await;
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

// ---------------------------------------------------------------------------
// CPU accounting, from /proc: steadier than rates on a shared machine, and it
// says which process the time goes to.

/// /proc reports CPU time in USER_HZ, which is 100 on Linux.
const TICKS_PER_SECOND: f64 = 100.0;

/// The numeric fields of /proc/PID/stat after the command name (which, in
/// parentheses, may hold spaces): index n - 3 holds field n, so 1 is the
/// parent's PID and 11-14 are utime, stime, cutime and cstime.
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

/// utime + stime of a process (all its threads), plus cutime + cstime (its
/// exited, reaped children) when `children`.
fn own_ticks(fields: &[u64], children: bool) -> Option<u64> {
    let own = fields.get(11)? + fields.get(12)?;
    Some(if children {
        own + fields.get(13)? + fields.get(14)?
    } else {
        own
    })
}

fn cpu_ticks(pid: u32, children: bool) -> Option<u64> {
    own_ticks(&stat_fields(pid)?, children)
}

/// CPU time of a process and of all its children, the exited ones included
/// (PostgreSQL's postmaster and its backends).
fn tree_ticks(root: u32) -> Option<u64> {
    let mut total = cpu_ticks(root, true)?;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Some(fields) = stat_fields(pid) else {
            continue;
        };
        if fields.get(1) == Some(&u64::from(root)) {
            total += own_ticks(&fields, false).unwrap_or(0);
        }
    }
    Some(total)
}

#[derive(Clone, Copy, Default)]
struct CpuSample {
    server: Option<f64>,
    postgres: Option<f64>,
    generator: Option<f64>,
}

impl CpuSample {
    fn take(server: Option<u32>, postgres: Option<u32>) -> Self {
        let ticks = |t: Option<u64>| t.map(|t| t as f64 / TICKS_PER_SECOND);
        Self {
            server: ticks(server.and_then(|p| cpu_ticks(p, true))),
            postgres: ticks(postgres.and_then(tree_ticks)),
            generator: ticks(cpu_ticks(std::process::id(), false)),
        }
    }

    /// Microseconds per unit of work between `before` and this sample.
    fn per_unit_since(&self, before: &Self, units: usize) -> Self {
        let per = |a: Option<f64>, b: Option<f64>| Some((a? - b?) * 1e6 / units.max(1) as f64);
        Self {
            server: per(self.server, before.server),
            postgres: per(self.postgres, before.postgres),
            generator: per(self.generator, before.generator),
        }
    }

    fn json(&self) -> Value {
        json!({ "server": self.server, "postgres": self.postgres, "generator": self.generator })
    }
}

impl std::fmt::Display for CpuSample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        for (name, v) in [
            ("database", self.postgres),
            ("meetpool serve", self.server),
            ("load generator", self.generator),
        ] {
            if let Some(us) = v {
                parts.push(format!("{name} {us:.0} µs"));
            }
        }
        if parts.is_empty() {
            parts.push("not measured (--server-pid, --postgres-pid)".into());
        }
        f.write_str(&parts.join(", "))
    }
}

// ---------------------------------------------------------------------------
// Checks with SQL

enum Db {
    Pg(PgPool),
    Lite(SqlitePool),
}

async fn connect(url: &str) -> Result<Db> {
    if url.starts_with("postgres") {
        Ok(Db::Pg(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(2)
                .connect(url)
                .await?,
        ))
    } else {
        Ok(Db::Lite(
            sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(
                    url.parse::<sqlx::sqlite::SqliteConnectOptions>()?
                        .busy_timeout(Duration::from_secs(30)),
                )
                .await?,
        ))
    }
}

struct Check {
    overlaps: i64,
    unguarded: i64,
    paid: i64,
    assigned: i64,
}

async fn check_db(url: &str, tag: &str) -> Result<Check> {
    let like = format!("{tag}-%");
    match connect(url).await? {
        Db::Pg(pool) => {
            // Every pair on one link whose busy ranges meet (the whole table,
            // not only this run), and any assigned booking whose range would
            // escape that check.
            let overlaps: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM bookings a JOIN bookings b \
                 ON a.meeting_link_id = b.meeting_link_id AND a.id < b.id AND a.busy && b.busy \
                 WHERE a.meeting_link_id IS NOT NULL",
            )
            .fetch_one(&pool)
            .await?;
            let unguarded: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM bookings WHERE meeting_link_id IS NOT NULL \
                 AND (busy IS NULL OR NOT busy @> tstzrange(starts_at, ends_at, '[)'))",
            )
            .fetch_one(&pool)
            .await?;
            let r = sqlx::query(
                "SELECT count(*) FILTER (WHERE payment_status = 'paid') AS paid, \
                 count(meeting_link_id) AS assigned FROM bookings WHERE order_id LIKE $1",
            )
            .bind(&like)
            .fetch_one(&pool)
            .await?;
            Ok(Check {
                overlaps,
                unguarded,
                paid: r.try_get("paid")?,
                assigned: r.try_get("assigned")?,
            })
        }
        Db::Lite(pool) => {
            let overlaps: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM bookings a JOIN bookings b \
                 ON a.meeting_link_id = b.meeting_link_id AND a.id < b.id \
                 AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at \
                 WHERE a.meeting_link_id IS NOT NULL",
            )
            .fetch_one(&pool)
            .await?;
            let r = sqlx::query(
                "SELECT coalesce(sum(payment_status = 'paid'), 0) AS paid, \
                 count(meeting_link_id) AS assigned FROM bookings WHERE order_id LIKE ?1",
            )
            .bind(&like)
            .fetch_one(&pool)
            .await?;
            Ok(Check {
                overlaps,
                unguarded: 0,
                paid: r.try_get("paid")?,
                assigned: r.try_get("assigned")?,
            })
        }
    }
}

// ---------------------------------------------------------------------------
// History

async fn seed_history(a: SeedArgs) -> Result<()> {
    let t0 = Instant::now();
    let links = a.links.max(1);
    let (from, total) = match connect(&a.database_url).await? {
        Db::Pg(pool) => seed_pg(&pool, a.bookings, links, a.from_date).await?,
        Db::Lite(pool) => seed_sqlite(&pool, a.bookings, links, a.from_date).await?,
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

async fn seed_pg(pool: &PgPool, n: i64, links: i64, from_date: Date) -> Result<(i64, i64)> {
    let mut tx = pool.begin().await?;
    let (tz, buffer): (String, i32) =
        sqlx::query_as("SELECT timezone, buffer_minutes FROM meetpool_settings WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
    let st: uuid::Uuid = match sqlx::query_scalar(
        "SELECT id FROM session_types WHERE name = 'history' AND duration = $1 LIMIT 1",
    )
    .bind(DURATION_MIN as i32)
    .fetch_optional(&mut *tx)
    .await?
    {
        Some(id) => id,
        None => {
            sqlx::query_scalar(
                "INSERT INTO session_types (name, duration, price) VALUES ('history', $1, $2) RETURNING id",
            )
            .bind(DURATION_MIN as i32)
            .bind(PRICE)
            .fetch_one(&mut *tx)
            .await?
        }
    };
    sqlx::query(
        "INSERT INTO meeting_links_pool (meeting_link) \
         SELECT 'https://meet.example.com/history-' || gen_random_uuid() \
         FROM generate_series(1, $1 - (SELECT count(*) FROM meeting_links_pool WHERE is_available))",
    )
    .bind(links)
    .execute(&mut *tx)
    .await?;
    let link_ids: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT id FROM meeting_links_pool WHERE is_available ORDER BY seq LIMIT $1",
    )
    .bind(links)
    .fetch_all(&mut *tx)
    .await?;
    let from: i64 =
        sqlx::query_scalar("SELECT count(*) FROM bookings WHERE order_id LIKE 'HIST-%'")
            .fetch_one(&mut *tx)
            .await?;
    // The derive trigger (a PL/pgSQL call per row) and the foreign-key
    // triggers are skipped for this one bulk insert, which sets every derived
    // column itself; the exclusion constraint is still checked. Needs a
    // superuser; without one the triggers simply run.
    let replica = sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .is_ok();
    if !replica {
        tx.rollback().await?;
        tx = pool.begin().await?;
    }
    let step = slot_hours(i64::from(buffer));
    sqlx::query(
        "INSERT INTO bookings (order_id, user_id, expert_id, session_type_id, booking_date, booking_time, \
           price, payment_status, status, meeting_link_id, starts_at, ends_at, busy, join_token, \
           payment_transaction_id, assigned_at, created_at, updated_at) \
         SELECT 'HIST-' || g, 'user-' || (g % 5000), 'expert-' || (g % 97), $1, \
           (s AT TIME ZONE $2)::date, (s AT TIME ZONE $2)::time, $3, 'paid', 'confirmed', \
           ($4::uuid[])[(1 + g % $5)::int], s, s + make_interval(mins => $6), \
           tstzrange(s, s + make_interval(mins => $6 + $7), '[)'), \
           md5('h' || g) || md5('t' || g), 'txn-' || g, s - interval '1 day', s - interval '2 days', s - interval '1 day' \
         FROM generate_series($8::bigint, $9::bigint) g \
         CROSS JOIN LATERAL (SELECT ($11::date)::timestamp AT TIME ZONE 'UTC' \
           + make_interval(hours => ((g / $5) * $10)::int) AS s) t",
    )
    .bind(st)
    .bind(&tz)
    .bind(PRICE)
    .bind(&link_ids)
    .bind(link_ids.len() as i64)
    .bind(DURATION_MIN as i32)
    .bind(buffer)
    .bind(from)
    .bind(from + n - 1)
    .bind(step)
    .bind(from_date.to_string())
    .execute(&mut *tx)
    .await
    .context("bulk insert")?;
    tx.commit().await?;
    // As autovacuum would have left an old table (this server may run with
    // it off): hint bits set, visibility map and statistics current, and the
    // bulk load's WAL checkpointed now rather than during the measurement.
    sqlx::query("VACUUM (ANALYZE) bookings")
        .execute(pool)
        .await?;
    if let Err(e) = sqlx::query("CHECKPOINT").execute(pool).await {
        eprintln!("seed-history: CHECKPOINT refused ({e}); carrying on");
    }
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings")
        .fetch_one(pool)
        .await?;
    Ok((from, total))
}

async fn seed_sqlite(pool: &SqlitePool, n: i64, links: i64, from_date: Date) -> Result<(i64, i64)> {
    let mut tx = pool.begin().await?;
    let buffer: i64 =
        sqlx::query_scalar("SELECT buffer_minutes FROM meetpool_settings WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
    let st: String = match sqlx::query_scalar(
        "SELECT id FROM session_types WHERE name = 'history' AND duration = ?1 LIMIT 1",
    )
    .bind(DURATION_MIN)
    .fetch_optional(&mut *tx)
    .await?
    {
        Some(id) => id,
        None => {
            let id = uuid::Uuid::new_v4().to_string();
            sqlx::query(
                "INSERT INTO session_types (id, name, duration, price) VALUES (?1, 'history', ?2, ?3)",
            )
            .bind(&id)
            .bind(DURATION_MIN)
            .bind(PRICE)
            .execute(&mut *tx)
            .await?;
            id
        }
    };
    let have: i64 =
        sqlx::query_scalar("SELECT count(*) FROM meeting_links_pool WHERE is_available = 1")
            .fetch_one(&mut *tx)
            .await?;
    for _ in have..links {
        let id = uuid::Uuid::new_v4();
        sqlx::query(
            "INSERT INTO meeting_links_pool (id, seq, meeting_link) \
             VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM meeting_links_pool), ?2)",
        )
        .bind(id.to_string())
        .bind(format!("https://meet.example.com/history-{id}"))
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("DROP TABLE IF EXISTS temp.hist_links")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "CREATE TEMP TABLE hist_links AS SELECT row_number() OVER (ORDER BY seq) - 1 AS n, id \
         FROM meeting_links_pool WHERE is_available = 1 ORDER BY seq LIMIT ?1",
    )
    .bind(links)
    .execute(&mut *tx)
    .await?;
    let used: i64 = sqlx::query_scalar("SELECT count(*) FROM temp.hist_links")
        .fetch_one(&mut *tx)
        .await?;
    let from: i64 =
        sqlx::query_scalar("SELECT count(*) FROM bookings WHERE order_id LIKE 'HIST-%'")
            .fetch_one(&mut *tx)
            .await?;
    // Times are UTC text; booking_date/booking_time are written as UTC too.
    sqlx::query(
        "INSERT INTO bookings (id, order_id, user_id, expert_id, session_type_id, booking_date, booking_time, \
           price, payment_status, status, meeting_link_id, starts_at, ends_at, join_token, \
           payment_transaction_id, assigned_at, created_at, updated_at) \
         WITH RECURSIVE s(g) AS (SELECT ?1 UNION ALL SELECT g + 1 FROM s WHERE g < ?2), \
           w AS (SELECT g, datetime(?8, '+' || ((g / ?3) * ?4) || ' hours') AS st FROM s) \
         SELECT printf('00000000-0000-4000-8000-%012x', w.g), 'HIST-' || w.g, 'user-' || (w.g % 5000), \
           'expert-' || (w.g % 97), ?5, date(w.st), strftime('%H:%M:%S', w.st), ?6, 'paid', 'confirmed', \
           l.id, w.st, datetime(w.st, '+' || ?7 || ' minutes'), printf('hist%060x', w.g), 'txn-' || w.g, \
           datetime(w.st, '-1 day'), datetime(w.st, '-2 days'), datetime(w.st, '-1 day') \
         FROM w JOIN temp.hist_links l ON l.n = w.g % ?3",
    )
    .bind(from)
    .bind(from + n - 1)
    .bind(used)
    .bind(slot_hours(buffer))
    .bind(&st)
    .bind(PRICE)
    .bind(DURATION_MIN)
    .bind(format!("{from_date} 00:00:00"))
    .execute(&mut *tx)
    .await
    .context("bulk insert")?;
    tx.commit().await?;
    sqlx::query("ANALYZE").execute(pool).await?;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(pool)
        .await?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings")
        .fetch_one(pool)
        .await?;
    Ok((from, total))
}

// ---------------------------------------------------------------------------
// Latency against history size

/// One server under the latency probe: its bookings, and what it answered.
struct Probe {
    bench: Bench,
    orders: Vec<String>,
    bodies: Vec<String>,
    warm: Tally,
    timed: Tally,
    elapsed: Duration,
    stored: Option<i64>,
}

impl Probe {
    async fn new(api: Api, count: usize) -> Result<Self> {
        let bench = Bench::new(api, 1)?;
        let orders = bench.setup(count, 8).await?;
        let bodies = orders.iter().map(|o| bench.notification(o)).collect();
        Ok(Self {
            bench,
            orders,
            bodies,
            warm: Tally::default(),
            timed: Tally::default(),
            elapsed: Duration::ZERO,
            stored: None,
        })
    }

    /// Sends bodies[range] one at a time, timed or not.
    async fn send(&mut self, range: std::ops::Range<usize>, timed: bool) {
        let (t, elapsed) = send_all(&self.bench, &self.bodies[range], 1).await;
        if timed {
            self.timed.merge(t);
            self.elapsed += elapsed;
        } else {
            self.warm.merge(t);
        }
    }

    fn errors(&self) -> usize {
        self.warm.errors + self.timed.errors
    }

    fn mean_ms(&self) -> f64 {
        self.elapsed.as_secs_f64() * 1000.0 / self.timed.latencies.len().max(1) as f64
    }

    fn report(&self, j: bool) {
        let t = &self.timed;
        say(
            j,
            format!(
                "latency at {}: {} notifications one at a time ({} warm-up) with {} bookings stored: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, mean {:.2} ms; {} errors, {} got a link",
                self.bench.api.url,
                t.latencies.len(),
                self.warm.latencies.len(),
                self.stored.map_or("?".into(), |n| n.to_string()),
                pct(&t.latencies, 50.0),
                pct(&t.latencies, 95.0),
                pct(&t.latencies, 99.0),
                self.mean_ms(),
                self.errors(),
                t.with_link,
            ),
        );
        if let Some(e) = t.first_error.as_ref().or(self.warm.first_error.as_ref()) {
            say(j, format!("first error: {e}"));
        }
    }

    fn json(&self) -> Value {
        let t = &self.timed;
        json!({
            "url": self.bench.api.url,
            "stored": self.stored,
            "notifications": t.latencies.len(),
            "p50_ms": pct(&t.latencies, 50.0),
            "p95_ms": pct(&t.latencies, 95.0),
            "p99_ms": pct(&t.latencies, 99.0),
            "mean_ms": self.mean_ms(),
            "errors": self.errors(),
            "with_link": t.with_link,
        })
    }
}

async fn latency(a: LatencyArgs) -> Result<()> {
    let j = a.api.json;
    let count = a.warmup + a.notifications;
    // The baseline first, so that every turn goes baseline, then measured.
    let mut probes = Vec::new();
    if let Some(url) = &a.baseline_url {
        let mut api = a.api.clone();
        api.url = url.clone();
        api.database_url = a.baseline_database_url.clone();
        probes.push(Probe::new(api, count).await?);
    }
    probes.push(Probe::new(a.api.clone(), count).await?);
    for p in &mut probes {
        p.send(0..a.warmup, false).await;
    }
    // Alternating turns; which server goes first alternates as well.
    let turn = a.turn.max(1);
    let mut from = a.warmup;
    let mut round = 0;
    while from < count {
        let to = (from + turn).min(count);
        let n = probes.len();
        for k in 0..n {
            let i = if round % 2 == 0 { k } else { n - 1 - k };
            probes[i].send(from..to, true).await;
        }
        from = to;
        round += 1;
    }
    for p in &mut probes {
        p.timed.latencies.sort();
        if let Some(url) = &p.bench.api.database_url {
            p.stored = Some(count_bookings(url).await?);
        }
        p.report(j);
    }
    let ratio = match probes.as_slice() {
        [base, measured] => {
            let r = pct(&measured.timed.latencies, 50.0) / pct(&base.timed.latencies, 50.0);
            say(
                j,
                format!(
                    "p50 ratio, {} stored against {} stored, measured in alternating turns of {turn}: {r:.2}x",
                    measured.stored.map_or("?".into(), |n| n.to_string()),
                    base.stored.map_or("?".into(), |n| n.to_string()),
                ),
            );
            Some(r)
        }
        _ => None,
    };
    let main = probes.last().expect("the measured server");
    if let (Some(url), false) = (&a.api.database_url, a.no_explain) {
        for line in explain(url, &main.orders[main.orders.len() / 2]).await? {
            say(j, line);
        }
    }
    if j {
        let mut out = main.json();
        out["baseline"] = probes
            .first()
            .filter(|_| probes.len() == 2)
            .map_or(Value::Null, Probe::json);
        out["p50_ratio"] = json!(ratio);
        println!("{out}");
    }
    let errors: usize = probes.iter().map(Probe::errors).sum();
    if errors > 0 {
        bail!("{errors} notifications failed");
    }
    Ok(())
}

async fn count_bookings(url: &str) -> Result<i64> {
    Ok(match connect(url).await? {
        Db::Pg(p) => {
            sqlx::query_scalar("SELECT count(*) FROM bookings")
                .fetch_one(&p)
                .await?
        }
        Db::Lite(p) => {
            sqlx::query_scalar("SELECT count(*) FROM bookings")
                .fetch_one(&p)
                .await?
        }
    })
}

/// The plans of the hot queries, as the store sends them, for a booking of
/// this run (its window in the middle of the busy period).
async fn explain(url: &str, order_id: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    match connect(url).await? {
        Db::Pg(pool) => {
            let mut tx = pool.begin().await?;
            let (id, starts, buffer): (uuid::Uuid, jiff_sqlx::Timestamp, i32) = sqlx::query_as(
                "SELECT b.id, b.starts_at, s.buffer_minutes FROM bookings b, meetpool_settings s \
                 WHERE b.order_id = $1 AND s.id = 1",
            )
            .bind(order_id)
            .fetch_one(&mut *tx)
            .await?;
            // The server's own statements, with the parameters it binds.
            let lock_sql = format!(
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {}",
                meetpool_store::postgres::notification_lock_sql()
            );
            out.push(
                "EXPLAIN the notifications' first statement (lock, de-duplicate, hour locks), for one:"
                    .into(),
            );
            let rows = sqlx::query(&lock_sql)
                .bind([order_id])
                .bind([format!("explain-{}", uuid::Uuid::new_v4())])
                .bind(buffer)
                .bind([true])
                .fetch_all(&mut *tx)
                .await?;
            for r in rows {
                out.push(format!("    {}", r.try_get::<String, _>(0)?));
            }
            let cand_sql = format!(
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {}",
                meetpool_store::postgres::CANDIDATES_SQL
            );
            out.push(
                "EXPLAIN candidates (nearest session on either side, per link), for one booking:"
                    .into(),
            );
            let rows = sqlx::query(&cand_sql)
                .bind([id])
                .bind([starts])
                .fetch_all(&mut *tx)
                .await?;
            for r in rows {
                out.push(format!("    {}", r.try_get::<String, _>(0)?));
            }
            tx.rollback().await?;
        }
        Db::Lite(pool) => {
            let queries = [
                (
                    "booking lookup by order_id",
                    "EXPLAIN QUERY PLAN SELECT b.id FROM bookings b \
                     LEFT JOIN meeting_links_pool l ON l.id = b.meeting_link_id WHERE b.order_id = ?1"
                        .to_owned(),
                ),
                ("candidates", format!("EXPLAIN QUERY PLAN {}", meetpool_store::sqlite::CANDIDATES_SQL)),
            ];
            for (title, q) in queries {
                out.push(format!("EXPLAIN QUERY PLAN {title}:"));
                let rows = sqlx::query(&q)
                    .bind(order_id)
                    .bind("2030-01-01 00:00:00")
                    .bind("2030-01-02 00:00:00")
                    .fetch_all(&pool)
                    .await?;
                for r in rows {
                    out.push(format!("    {}", r.try_get::<String, _>("detail")?));
                }
            }
        }
    }
    Ok(out)
}
