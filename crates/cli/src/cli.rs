//! Flags, environment variables and the commands.
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use meetpool_app::views::{BookingView, LinkView, PoolStatusView, SessionTypeView};
use meetpool_app::{
    App, AssignOutcome, BookingQuery, Config, LinkInput, MidtransVerify, SessionTypeInput,
};
use meetpool_domain::{BookingId, LinkId, Policy};
use meetpool_http::HttpSettings;
use meetpool_store::{ConnectOptions, Coordination, DbSettings, Link};
use secrecy::{ExposeSecret, SecretString};
use tracing::{info, warn};

use crate::output::{json, table};

// No `Debug` on the argument structs: DATABASE_URL may carry a password.
#[derive(Parser)]
#[command(
    name = "meetpool",
    version,
    about = "Meeting links from a pool for paid bookings, never double-booked."
)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArgs,

    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Args)]
pub struct ConfigArgs {
    /// sqlite:PATH (embedded) or postgres://... (replicas).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite:meetpool.db",
        global = true
    )]
    pub database_url: String,
    /// IANA zone of booking_date/booking_time (default: the database's,
    /// UTC on a fresh one).
    #[arg(long, env = "MEETPOOL_TIMEZONE", global = true)]
    pub timezone: Option<String>,
    /// Minutes a link stays idle after each session, 0..=1440 (default: the
    /// database's, 0 on a fresh one).
    #[arg(long, env = "MEETPOOL_BUFFER_MINUTES", global = true,
          value_parser = clap::value_parser!(u32).range(0..=1440))]
    pub buffer_minutes: Option<u32>,
    /// best-fit or first-fit.
    #[arg(
        long,
        env = "MEETPOOL_ALLOCATION",
        default_value = "best-fit",
        global = true
    )]
    pub allocation: String,
    /// Address `serve` listens on.
    #[arg(
        long,
        env = "MEETPOOL_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: String,
    /// Bearer token of the admin API (generated and printed by `serve` when unset).
    #[arg(
        long,
        env = "MEETPOOL_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub admin_token: Option<SecretString>,
    /// Midtrans server key (sandbox SB-Mid-server-... or production).
    #[arg(
        long,
        env = "MIDTRANS_SERVER_KEY",
        hide_env_values = true,
        global = true
    )]
    pub midtrans_server_key: Option<SecretString>,
    /// signature, or status: also confirm each notification with Midtrans' GET status.
    #[arg(
        long,
        env = "MEETPOOL_MIDTRANS_VERIFY",
        default_value = "signature",
        global = true
    )]
    pub midtrans_verify: VerifyArg,
    /// Midtrans API base for the status check.
    #[arg(
        long,
        env = "MIDTRANS_API_BASE",
        default_value = "https://api.sandbox.midtrans.com",
        global = true
    )]
    pub midtrans_api_base: String,
    /// Refuse a settlement whose gross_amount is not the booking's price
    /// (`off` for platforms that charge fees on top).
    #[arg(
        long,
        env = "MEETPOOL_MIDTRANS_AMOUNT_CHECK",
        value_enum,
        default_value = "on",
        global = true
    )]
    pub midtrans_amount_check: Switch,
    /// Reconciliation: the waits between asking Midtrans' status API about
    /// a pending payment (the first from the booking's creation, the last
    /// repeated until the session starts), or `off`. Runs when a server key
    /// is set.
    #[arg(
        long,
        env = "MEETPOOL_MIDTRANS_RECONCILE",
        default_value = meetpool_app::DEFAULT_RECONCILE_SCHEDULE,
        global = true
    )]
    pub midtrans_reconcile: String,
    /// Public base URL of this service, for join URLs.
    #[arg(long, env = "MEETPOOL_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// Repacking: when no link is free, move booked sessions that start more
    /// than this many minutes from now to make room (off when unset).
    #[arg(long, env = "MEETPOOL_REPACK_FREEZE_MINUTES", global = true)]
    pub repack_freeze_minutes: Option<u32>,
    /// Minutes a checkout hold keeps its link for the unpaid booking.
    #[arg(long, env = "MEETPOOL_HOLD_MINUTES", default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..=1440), global = true)]
    pub hold_minutes: u32,
    /// Minutes between the starts availability is reported for.
    #[arg(long, env = "MEETPOOL_SLOT_MINUTES", default_value_t = 30, value_parser = clap::value_parser!(u32).range(5..=1440), global = true)]
    pub slot_minutes: u32,
    /// Minutes before a session starts from which its join URL leads to
    /// the meeting.
    #[arg(
        long,
        env = "MEETPOOL_JOIN_OPENS_MINUTES",
        default_value_t = 15,
        global = true
    )]
    pub join_opens_minutes: u32,
    /// Database connections per process.
    #[arg(
        long,
        env = "MEETPOOL_DB_MAX_CONNECTIONS",
        default_value_t = 16,
        global = true
    )]
    pub db_max_connections: u32,
    /// Seconds a statement waits for a free database connection before the
    /// request answers 503.
    #[arg(
        long,
        env = "MEETPOOL_DB_ACQUIRE_TIMEOUT_SECS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=300),
        global = true
    )]
    pub db_acquire_timeout_secs: u64,
    /// PostgreSQL: `transaction` when DATABASE_URL goes through a
    /// transaction-mode pooler (PgBouncer, Supavisor on port 6543).
    #[arg(
        long,
        env = "MEETPOOL_DB_POOLER",
        value_enum,
        default_value = "none",
        global = true
    )]
    pub db_pooler: PoolerArg,
    /// PostgreSQL: a connection that bypasses the pooler, for migrations
    /// and for listening to an adopted database's changes.
    #[arg(
        long,
        env = "MEETPOOL_DIRECT_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub direct_database_url: Option<String>,
    /// PostgreSQL: hour-locks (default) or constraint-only.
    #[arg(
        long,
        env = "MEETPOOL_PG_COORDINATION",
        default_value = "hour-locks",
        global = true,
        hide = true
    )]
    pub pg_coordination: CoordinationArg,
    /// Seconds a client has to send a request's headers.
    #[arg(long, env = "MEETPOOL_HEADER_TIMEOUT_SECS", default_value_t = 10, global = true,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout_secs: u64,
    /// Seconds an idle keep-alive connection is kept open.
    #[arg(long, env = "MEETPOOL_IDLE_TIMEOUT_SECS", default_value_t = 60, global = true,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout_secs: u64,
    /// Seconds a request may take, its body included (then 503 request_timeout).
    #[arg(long, env = "MEETPOOL_REQUEST_TIMEOUT_SECS", default_value_t = 30, global = true,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_secs: u64,
    /// Connections served at once; more wait to be accepted.
    #[arg(long, env = "MEETPOOL_MAX_CONNECTIONS", default_value_t = 10_000, global = true,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,
    /// Bytes of a request body (then 413 payload_too_large).
    #[arg(long, env = "MEETPOOL_MAX_BODY_BYTES", default_value_t = 1024 * 1024, global = true,
          value_parser = clap::value_parser!(u64).range(1..=64 * 1024 * 1024))]
    pub max_body_bytes: u64,
    /// Comma-separated browser origins allowed to call the previous system's
    /// routes (https://app.example.com); none: no CORS headers.
    #[arg(
        long,
        env = "MEETPOOL_CORS_ORIGINS",
        value_delimiter = ',',
        global = true
    )]
    pub cors_origins: Vec<String>,
    /// Where outbound events are POSTed (Standard Webhooks); none: no events.
    #[arg(long, env = "MEETPOOL_EVENTS_URL", global = true)]
    pub events_url: Option<String>,
    /// The events' signing secret, whsec_ followed by base64.
    #[arg(
        long,
        env = "MEETPOOL_EVENTS_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub events_secret: Option<SecretString>,
    /// The waits after each failed delivery (250ms, 5s, 30m, 2h, 1d);
    /// once spent, the event has failed for good.
    #[arg(long, env = "MEETPOOL_EVENTS_RETRY", default_value = meetpool_app::DEFAULT_RETRY_SCHEDULE, global = true)]
    pub events_retry: String,
    /// The most one delivery attempt may take, the answer included.
    #[arg(long, env = "MEETPOOL_EVENTS_TIMEOUT", default_value = meetpool_app::DEFAULT_TIMEOUT, global = true)]
    pub events_timeout: String,
    /// How long delivered events stay in the log (failed and pending ones
    /// stay until delivered).
    #[arg(long, env = "MEETPOOL_EVENTS_KEEP", default_value = meetpool_app::DEFAULT_KEEP, global = true)]
    pub events_keep: String,
    /// The most delivery attempts under way at once, per process (1-1024).
    #[arg(long, env = "MEETPOOL_EVENTS_CONCURRENCY", default_value_t = meetpool_app::DEFAULT_CONCURRENCY as u32,
        value_parser = clap::value_parser!(u32).range(1..=1024), global = true)]
    pub events_concurrency: u32,
    /// Google Meet: the OAuth client's id (rooms at Google Meet).
    #[arg(long, env = "MEETPOOL_GOOGLE_CLIENT_ID", global = true)]
    pub google_client_id: Option<String>,
    /// Google Meet: the OAuth client's secret.
    #[arg(
        long,
        env = "MEETPOOL_GOOGLE_CLIENT_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub google_client_secret: Option<SecretString>,
    /// Google Meet: a refresh token of the account that owns the rooms.
    #[arg(
        long,
        env = "MEETPOOL_GOOGLE_REFRESH_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub google_refresh_token: Option<SecretString>,
    /// Google's OAuth token endpoint.
    #[arg(
        long,
        env = "MEETPOOL_GOOGLE_TOKEN_URL",
        default_value = "https://oauth2.googleapis.com/token",
        global = true
    )]
    pub google_token_url: String,
    /// The Meet REST API's base.
    #[arg(
        long,
        env = "MEETPOOL_GOOGLE_MEET_API",
        default_value = "https://meet.googleapis.com",
        global = true
    )]
    pub google_meet_api: String,
    /// Zoom: the Server-to-Server OAuth app's account id (rooms at Zoom).
    #[arg(long, env = "MEETPOOL_ZOOM_ACCOUNT_ID", global = true)]
    pub zoom_account_id: Option<String>,
    /// Zoom: the app's client id.
    #[arg(long, env = "MEETPOOL_ZOOM_CLIENT_ID", global = true)]
    pub zoom_client_id: Option<String>,
    /// Zoom: the app's client secret.
    #[arg(
        long,
        env = "MEETPOOL_ZOOM_CLIENT_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub zoom_client_secret: Option<SecretString>,
    /// Zoom's REST API base.
    #[arg(
        long,
        env = "MEETPOOL_ZOOM_API",
        default_value = "https://api.zoom.us",
        global = true
    )]
    pub zoom_api: String,
    /// Zoom's OAuth token endpoint.
    #[arg(
        long,
        env = "MEETPOOL_ZOOM_TOKEN_URL",
        default_value = "https://zoom.us/oauth/token",
        global = true
    )]
    pub zoom_token_url: String,
    /// How long after a session ends its conference is ended (`off`: never).
    #[arg(
        long,
        env = "MEETPOOL_ROOM_END_GRACE",
        default_value = "10m",
        global = true
    )]
    pub room_end_grace: String,
    /// Google Meet: how long after a session's end its conference record
    /// is read for who attended (`off`: never).
    #[arg(
        long,
        env = "MEETPOOL_ROOM_ATTENDANCE",
        default_value = "2m",
        global = true
    )]
    pub room_attendance: String,
    /// How often each pooled room is checked at its provider (`off`: only
    /// by `meetpool links check`).
    #[arg(long, env = "MEETPOOL_ROOM_CHECK", default_value = "1d", global = true)]
    pub room_check: String,
    /// The most rooms meetpool creates when the pool runs out (0: never).
    #[arg(
        long,
        env = "MEETPOOL_POOL_GROW_MAX",
        default_value_t = 0,
        global = true
    )]
    pub pool_grow_max: u32,
    /// Where rooms are created: google-meet or zoom (default: the one configured).
    #[arg(long, env = "MEETPOOL_POOL_GROW_PROVIDER", global = true)]
    pub pool_grow_provider: Option<String>,
    /// The waits after each failed provider action; once spent, it failed for good.
    #[arg(long, env = "MEETPOOL_ROOMS_RETRY", default_value = meetpool_app::DEFAULT_ROOMS_RETRY, global = true)]
    pub rooms_retry: String,
    /// text or json.
    #[arg(
        long,
        env = "MEETPOOL_LOG_FORMAT",
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum VerifyArg {
    Signature,
    Status,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolerArg {
    None,
    Transaction,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum CoordinationArg {
    HourLocks,
    ConstraintOnly,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the HTTP service (migrates the database first).
    Serve {
        /// Do not apply migrations (another replica or a deploy step does).
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply the database migrations and exit.
    Migrate {
        /// Change the time zone or buffer the database holds to the ones
        /// given, moving coming sessions with them (otherwise different
        /// settings are refused).
        #[arg(long)]
        change_settings: bool,
    },
    /// Manage the pool of meeting links.
    #[command(subcommand)]
    Links(LinksCommand),
    /// Manage session types.
    #[command(subcommand, name = "session-types")]
    SessionTypes(SessionTypesCommand),
    /// List bookings.
    #[command(subcommand)]
    Bookings(BookingsCommand),
    /// Give a paid booking a link now.
    Assign { booking: String },
    /// The pool at a glance.
    Status,
    /// Run meetpool on a platform's existing PostgreSQL database, in place
    /// (DATABASE_URL as the tables' owner).
    Adopt(AdoptArgs),
    /// The outbound event log.
    #[command(subcommand)]
    Events(crate::events::EventsCommand),
    /// An adopted platform's database seen from meetpool.
    #[command(subcommand)]
    Platform(crate::platform::PlatformCommand),
    /// Payments: reconciliation with Midtrans.
    #[command(subcommand)]
    Payments(crate::payments::PaymentsCommand),
    /// Per day: the peak of paid sessions against the enabled links.
    Capacity {
        /// The first local day, YYYY-MM-DD (default: today).
        #[arg(long)]
        from: Option<String>,
        /// The last local day (default: 29 days after --from).
        #[arg(long)]
        to: Option<String>,
    },
}

#[derive(clap::Args)]
pub struct AdoptArgs {
    /// Report what would change, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The value of bookings.payment_status for each of meetpool's states
    /// that the column's CHECK does not allow by name:
    /// pending=waiting,failed=waiting,...
    #[arg(long, default_value = "")]
    pub payment_status_values: String,
    /// The same for bookings.status: paid=confirmed,refunded=cancelled,...
    #[arg(long, default_value = "")]
    pub status_values: String,
    /// Minutes of bookings whose session type is unknown (else they are
    /// reported and left out).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1440))]
    pub default_duration: Option<u32>,
    /// The schema of the platform's tables.
    #[arg(long, default_value = "public")]
    pub schema: String,
    /// The login role `meetpool serve` connects as (created when missing).
    #[arg(long, default_value = "meetpool")]
    pub role: String,
    /// Sets the role's password.
    #[arg(long, env = "MEETPOOL_ROLE_PASSWORD", hide_env_values = true)]
    pub role_password: Option<SecretString>,
    /// Change the time zone or buffer an adopted database already holds
    /// (otherwise different settings are refused).
    #[arg(long)]
    pub change_settings: bool,
}

#[derive(Subcommand, Debug)]
pub enum LinksCommand {
    /// Add a link (an https URL) to the pool.
    Add {
        url: String,
        #[arg(long)]
        notes: Option<String>,
    },
    List,
    /// Stop giving out a link; its coming sessions move to other links.
    Disable {
        link: String,
    },
    Enable {
        link: String,
    },
    /// Check every pooled room at its provider now: a room the provider
    /// no longer knows is disabled and its coming sessions move.
    Check,
}

#[derive(Subcommand, Debug)]
pub enum SessionTypesCommand {
    Add {
        #[arg(long)]
        name: String,
        /// Minutes, 1..=1440.
        #[arg(long)]
        duration: i64,
        #[arg(long, default_value_t = 0)]
        price: i64,
    },
    List,
}

#[derive(Subcommand, Debug)]
pub enum BookingsCommand {
    List {
        /// Only paid bookings still waiting for a link.
        #[arg(long)]
        unassigned: bool,
        #[arg(long)]
        payment_status: Option<String>,
        /// YYYY-MM-DD
        #[arg(long)]
        date: Option<String>,
        /// At most this many (a page; at most 1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Every booking that matches, page after page (--limit at a time).
        #[arg(long)]
        all: bool,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == LogFormat::Json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

impl ConfigArgs {
    /// The settings to run with: each one given, else the database's
    /// (`stored`), else the default. Settings belong to the install: a
    /// command run without them never changes them.
    pub fn settings(&self, stored: Option<DbSettings>) -> DbSettings {
        DbSettings {
            timezone: self
                .timezone
                .clone()
                .or_else(|| stored.as_ref().map(|s| s.timezone.clone()))
                .unwrap_or_else(|| "UTC".to_owned()),
            buffer_minutes: self
                .buffer_minutes
                .or(stored.map(|s| s.buffer_minutes))
                .unwrap_or(0),
        }
    }

    fn app_config(&self, settings: &DbSettings) -> anyhow::Result<Config> {
        let mut config = Config::new(&settings.timezone).map_err(anyhow::Error::msg)?;
        config.buffer_minutes = settings.buffer_minutes;
        config.policy = self
            .allocation
            .parse::<Policy>()
            .map_err(anyhow::Error::msg)?;
        config.midtrans_server_key = self.midtrans_server_key.clone();
        config.midtrans_verify = match self.midtrans_verify {
            VerifyArg::Signature => MidtransVerify::Signature,
            VerifyArg::Status => MidtransVerify::Status,
        };
        config
            .set_midtrans_api_base(&self.midtrans_api_base)
            .map_err(anyhow::Error::msg)?;
        config.midtrans_amount_check = self.midtrans_amount_check == Switch::On;
        config.midtrans_reconcile =
            meetpool_app::parse_reconcile_schedule(&self.midtrans_reconcile)
                .map_err(|e| anyhow::anyhow!("MEETPOOL_MIDTRANS_RECONCILE: {e}"))?;
        config.join_opens_minutes = self.join_opens_minutes;
        config.slot_minutes = self.slot_minutes;
        config.hold_minutes = self.hold_minutes;
        config.repack_freeze_minutes = self.repack_freeze_minutes;
        config.public_url = self
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen));
        config.events = crate::events::config(self)?;
        config.rooms = crate::rooms::config(self)?;
        Ok(config)
    }

    fn http_settings(&self) -> anyhow::Result<HttpSettings> {
        let mut http = HttpSettings {
            header_timeout: Duration::from_secs(self.header_timeout_secs),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            request_timeout: Duration::from_secs(self.request_timeout_secs),
            max_connections: usize::try_from(self.max_connections)?,
            max_body_bytes: usize::try_from(self.max_body_bytes)?,
            cors_origins: Vec::new(),
        };
        http.allow_origins(self.cors_origins.iter().map(String::as_str))
            .map_err(|e| anyhow::anyhow!("MEETPOOL_CORS_ORIGINS: {e}"))?;
        Ok(http)
    }

    async fn app(&self) -> anyhow::Result<App> {
        let options = ConnectOptions {
            max_connections: self.db_max_connections,
            acquire_timeout: Duration::from_secs(self.db_acquire_timeout_secs),
            coordination: match self.pg_coordination {
                CoordinationArg::HourLocks => Coordination::HourLocks,
                CoordinationArg::ConstraintOnly => Coordination::ConstraintOnly,
            },
            create_if_missing: true,
            pooler: self.db_pooler == PoolerArg::Transaction,
            direct_url: self.direct_database_url.clone(),
        };
        let store = meetpool_store::connect(&self.database_url, &options)
            .await
            .with_context(|| {
                format!(
                    "cannot open the database ({})",
                    redact_url(&self.database_url)
                )
            })?;
        // A database not migrated yet has no settings of its own.
        let stored = store.stored_settings().await.unwrap_or(None);
        let settings = self.settings(stored);
        Ok(App::new(Arc::from(store), self.app_config(&settings)?))
    }
}

/// The database URL without its password, for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    init_logging(args.config.log_format);
    if let Command::Adopt(adopt) = &args.command {
        return crate::adopt::run(&args.config, adopt, args.json).await;
    }
    let app = args.config.app().await?;
    if !matches!(
        args.command,
        Command::Serve { .. } | Command::Migrate { .. }
    ) {
        app.check_migrated().await?;
    }
    let as_json = args.json;
    match args.command {
        Command::Serve { no_migrate } => serve(&args.config, app, no_migrate).await,
        Command::Migrate { change_settings } => {
            let migrated = app.prepare_database(change_settings).await?;
            println!("database migrated ({})", app.backend().as_str());
            if !migrated.disabled_unsafe.is_empty() {
                println!(
                    "disabled {} pool link(s) that are not an https:// URL naming a host \
                     (a browser must never be sent there); their coming sessions moved to other \
                     links or to the unassigned queue:",
                    migrated.disabled_unsafe.len()
                );
                for link in &migrated.disabled_unsafe {
                    // Debug-quoted: the text came from the database and may
                    // hold anything, terminal escapes included.
                    println!("  link {}  {:?}", link.link_id, link.meeting_link);
                }
            }
            Ok(())
        }
        Command::Adopt(_) => unreachable!("adopt runs without the service's store"),
        Command::Links(cmd) => links(&app, cmd, as_json).await,
        Command::SessionTypes(cmd) => session_types(&app, cmd, as_json).await,
        Command::Bookings(BookingsCommand::List {
            unassigned,
            payment_status,
            date,
            limit,
            all,
        }) => {
            let mut query = BookingQuery {
                payment_status,
                unassigned,
                date,
                limit: Some(limit),
                after: None,
            };
            let mut bookings = Vec::new();
            loop {
                let page = app.list_bookings(&query).await?;
                bookings.extend(page.bookings);
                match page.next {
                    Some(next) if all => query.after = Some(next),
                    _ => break,
                }
            }
            let views: Vec<BookingView> = bookings.iter().map(|b| app.booking_view(b)).collect();
            if as_json {
                return json(&views);
            }
            let rows: Vec<Vec<String>> = views
                .iter()
                .map(|b| {
                    vec![
                        b.id.clone(),
                        b.order_id.clone(),
                        format!("{} {}", b.booking_date, b.booking_time),
                        b.payment_status.to_owned(),
                        b.meeting_link.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            table(&["ID", "ORDER", "WHEN (LOCAL)", "PAYMENT", "LINK"], &rows);
            Ok(())
        }
        Command::Assign { booking } => {
            let id: BookingId = booking
                .parse()
                .context("booking must be a booking id (UUID)")?;
            match app.assign(id).await? {
                AssignOutcome::Assigned { booking, already } => {
                    if as_json {
                        return json(&app.booking_view(&booking));
                    }
                    let link = booking.meeting_link.unwrap_or_default();
                    println!(
                        "{} {link}",
                        if already {
                            "already assigned:"
                        } else {
                            "assigned:"
                        }
                    );
                    Ok(())
                }
                AssignOutcome::Exhausted { .. } => {
                    bail!("no meeting link is free for this booking's time: add links, or free one")
                }
            }
        }
        Command::Events(cmd) => crate::events::run(&app, cmd, as_json).await,
        Command::Platform(cmd) => crate::platform::run(&app, cmd, as_json).await,
        Command::Payments(cmd) => crate::payments::run(&app, cmd, as_json).await,
        Command::Capacity { from, to } => capacity(&app, from, to, as_json).await,
        Command::Status => {
            let status = app.pool_status().await?;
            let view = PoolStatusView::from(&status);
            if as_json {
                return json(&view);
            }
            table(
                &["TOTAL LINKS", "AVAILABLE", "IN USE NOW", "UNASSIGNED PAID"],
                &[vec![
                    view.total_links.to_string(),
                    view.available_links.to_string(),
                    view.in_use_now.to_string(),
                    view.unassigned_paid_bookings.to_string(),
                ]],
            );
            Ok(())
        }
    }
}

async fn capacity(
    app: &App,
    from: Option<String>,
    to: Option<String>,
    as_json: bool,
) -> anyhow::Result<()> {
    let days = app.capacity(from.as_deref(), to.as_deref()).await?;
    if as_json {
        return json(&days);
    }
    let rows: Vec<Vec<String>> = days
        .iter()
        .map(|d| {
            vec![
                d.date.clone(),
                d.peak_sessions.to_string(),
                d.enabled_links.to_string(),
                d.headroom.to_string(),
                d.unassigned.to_string(),
                if d.warning {
                    "peak reaches the pool"
                } else {
                    ""
                }
                .to_owned(),
            ]
        })
        .collect();
    table(
        &["DATE", "PEAK", "LINKS", "HEADROOM", "UNASSIGNED", "WARNING"],
        &rows,
    );
    Ok(())
}

/// The shortest admin token `serve` accepts: one that guessing, even at
/// the rate the sign-in limit allows from countless addresses, never finds.
const ADMIN_TOKEN_MIN_CHARS: usize = 16;

async fn serve(config: &ConfigArgs, app: App, no_migrate: bool) -> anyhow::Result<()> {
    if let Some(token) = &config.admin_token {
        let chars = token.expose_secret().trim().chars().count();
        if chars < ADMIN_TOKEN_MIN_CHARS {
            anyhow::bail!(
                "MEETPOOL_ADMIN_TOKEN is {chars} characters long; it must be at least \
                 {ADMIN_TOKEN_MIN_CHARS}, and random. Make one with `openssl rand -hex 32`, or leave \
                 it unset and meetpool serve generates one and prints it"
            );
        }
    }
    let http = config.http_settings()?;
    app.start_database(!no_migrate).await?;
    let admin_token = match &config.admin_token {
        Some(t) => t.clone(),
        None => {
            let token = format!("mp_{}", uuid::Uuid::new_v4().simple());
            eprintln!(
                "No MEETPOOL_ADMIN_TOKEN set; generated one for this run (set MEETPOOL_ADMIN_TOKEN to keep it):\n  {token}"
            );
            SecretString::from(token)
        }
    };
    if config.midtrans_server_key.is_none() {
        warn!("MIDTRANS_SERVER_KEY is not set: the Midtrans webhook answers 503 not_configured");
    }
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    info!(
        address = %listener.local_addr()?,
        database = app.backend().as_str(),
        allocation = app.config().policy.as_str(),
        "meetpool is listening"
    );
    let (stop_sweeper, stopped) = tokio::sync::oneshot::channel::<()>();
    let sweeper = {
        let app = app.clone();
        tokio::spawn(async move {
            app.run_sweeper(SWEEP_PERIOD, async {
                let _ = stopped.await;
            })
            .await
        })
    };
    // On an adopted database, the platform's own writes are carried out as
    // they come.
    let (stop_sync, sync_stopped) = tokio::sync::oneshot::channel::<()>();
    let sync = if app.store().adopted().await? {
        info!("adopted database: carrying out the platform's own changes");
        let app = app.clone();
        Some(tokio::spawn(async move {
            app.run_platform_sync(async {
                let _ = sync_stopped.await;
            })
            .await
        }))
    } else {
        None
    };
    let (stop_rooms, rooms_stopped) = tokio::sync::oneshot::channel::<()>();
    let rooms = {
        let app = app.clone();
        tokio::spawn(async move {
            app.run_rooms(async {
                let _ = rooms_stopped.await;
            })
            .await
        })
    };
    let (stop_deliverer, deliverer_stopped) = tokio::sync::oneshot::channel::<()>();
    let deliverer = {
        let app = app.clone();
        tokio::spawn(async move {
            app.run_deliverer(async {
                let _ = deliverer_stopped.await;
            })
            .await
        })
    };
    // Payments whose notification never arrived, asked about at Midtrans.
    let (stop_reconciler, reconciler_stopped) = tokio::sync::oneshot::channel::<()>();
    if app.config().midtrans_server_key.is_some() {
        if let Some(schedule) = &app.config().midtrans_reconcile {
            info!(schedule = ?schedule, "reconciling pending payments with Midtrans' status API");
        }
    }
    let reconciler = {
        let app = app.clone();
        tokio::spawn(async move {
            app.run_reconciler(async {
                let _ = reconciler_stopped.await;
            })
            .await
        })
    };
    let router = meetpool_http::router_with(app, admin_token, &http);
    let served = meetpool_http::launch_with(listener, router, &http, shutdown_signal()).await;
    let _ = stop_sweeper.send(());
    let _ = stop_sync.send(());
    let _ = stop_deliverer.send(());
    let _ = stop_rooms.send(());
    let _ = stop_reconciler.send(());
    let _ = reconciler.await;
    let _ = sweeper.await;
    let _ = rooms.await;
    if let Some(sync) = sync {
        let _ = sync.await;
    }
    let _ = deliverer.await;
    served?;
    info!("meetpool stopped");
    Ok(())
}

/// How often waiting bookings are offered links that no request noticed.
const SWEEP_PERIOD: Duration = Duration::from_secs(60);

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// A link by its id, by its URL as stored, or else by its room (any
/// spelling of it) when exactly one link has that room.
async fn find_link(app: &App, key: &str) -> anyhow::Result<Link> {
    let links = app.links().await?;
    let id: Option<LinkId> = key.parse().ok();
    if let Some(found) = links
        .iter()
        .find(|l| Some(l.id) == id || l.meeting_link == key)
    {
        return Ok(found.clone());
    }
    // The room the database holds unique (a Zoom link with or without its
    // passcode, say), read from the links as stored.
    let wanted = meetpool_domain::MeetingUrl::parse(key)
        .with_context(|| format!("no link {key} in the pool"))?
        .room();
    let mut same_room = links
        .iter()
        .filter(|l| meetpool_domain::room::room_of(&l.meeting_link) == wanted);
    match (same_room.next(), same_room.next()) {
        (Some(only), None) => Ok(only.clone()),
        (Some(_), Some(_)) => bail!("several links are the room {wanted}: name one by its id"),
        (None, _) => bail!("no link {key} in the pool"),
    }
}

async fn links(app: &App, cmd: LinksCommand, as_json: bool) -> anyhow::Result<()> {
    let changed = match cmd {
        LinksCommand::Add { url, notes } => {
            app.add_link(LinkInput {
                meeting_link: Some(url),
                notes: Some(notes),
                is_available: Some(true),
            })
            .await?
        }
        LinksCommand::Disable { link } => {
            let id = find_link(app, &link).await?.id;
            app.update_link(
                id,
                LinkInput {
                    is_available: Some(false),
                    ..Default::default()
                },
            )
            .await?
        }
        LinksCommand::Enable { link } => {
            let id = find_link(app, &link).await?.id;
            app.update_link(
                id,
                LinkInput {
                    is_available: Some(true),
                    ..Default::default()
                },
            )
            .await?
        }
        LinksCommand::Check => return crate::rooms::check(app, as_json).await,
        LinksCommand::List => {
            let links = app.links().await?;
            let views: Vec<LinkView> = links.iter().map(Into::into).collect();
            if as_json {
                return json(&views);
            }
            let rows: Vec<Vec<String>> = views
                .iter()
                .map(|l| {
                    vec![
                        l.id.clone(),
                        l.meeting_link.clone(),
                        if l.is_available {
                            "enabled"
                        } else {
                            "disabled"
                        }
                        .to_owned(),
                        l.notes.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            table(&["ID", "LINK", "STATE", "NOTES"], &rows);
            return Ok(());
        }
    };
    if as_json {
        return json(&LinkView::from(&changed));
    }
    println!(
        "{} {} ({})",
        changed.id,
        changed.meeting_link,
        if changed.is_available {
            "enabled"
        } else {
            "disabled"
        }
    );
    Ok(())
}

async fn session_types(app: &App, cmd: SessionTypesCommand, as_json: bool) -> anyhow::Result<()> {
    match cmd {
        SessionTypesCommand::Add {
            name,
            duration,
            price,
        } => {
            let st = app
                .create_session_type(SessionTypeInput {
                    name: Some(name),
                    duration: Some(duration),
                    price: Some(price),
                })
                .await?;
            if as_json {
                return json(&SessionTypeView::from(&st));
            }
            println!("{} {} ({} min)", st.id, st.name, st.duration);
        }
        SessionTypesCommand::List => {
            let all = app.session_types().await?;
            let views: Vec<SessionTypeView> = all.iter().map(Into::into).collect();
            if as_json {
                return json(&views);
            }
            let rows: Vec<Vec<String>> = views
                .iter()
                .map(|s| {
                    vec![
                        s.id.clone(),
                        s.name.clone(),
                        s.duration.to_string(),
                        s.price.to_string(),
                    ]
                })
                .collect();
            table(&["ID", "NAME", "MINUTES", "PRICE"], &rows);
        }
    }
    Ok(())
}
