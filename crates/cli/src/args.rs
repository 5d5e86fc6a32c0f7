//! The flags, environment variables and commands, as clap reads them.
use clap::{Parser, Subcommand, ValueEnum};
use secrecy::SecretString;

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
    Events(crate::commands::events::EventsCommand),
    /// An adopted platform's database seen from meetpool.
    #[command(subcommand)]
    Platform(crate::commands::platform::PlatformCommand),
    /// Payments: reconciliation with Midtrans.
    #[command(subcommand)]
    Payments(crate::commands::payments::PaymentsCommand),
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}
