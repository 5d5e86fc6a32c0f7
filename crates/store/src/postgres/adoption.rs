//! Adopting a platform's existing PostgreSQL database in place.
//!
//! The platform keeps its tables (`bookings`, `session_types`,
//! `meeting_links_pool`) exactly as they are, and its own code keeps
//! reading and writing them. meetpool's own schema is installed beside them
//! in the schema `meetpool`, by the same migrations as on a fresh database,
//! and holds a mirror of the platform's rows with the same ids: there the
//! exclusion constraint holds, the use cases run unchanged, and meetpool
//! keeps its finer payment states. Triggers keep the two sides in step:
//!
//! - the platform's inserts, and its edits of plain fields, are mirrored at
//!   once; its payment-status changes, reschedules, deletions and link
//!   enabling/disabling become rows of `meetpool.platform_changes` (and a
//!   `NOTIFY`), which the service carries out with its use cases, as if an
//!   operator had asked. So the platform's statement never fails because of
//!   meetpool's constraint, and each change follows meetpool's rules;
//! - meetpool's writes are written back to the platform's rows in the
//!   platform's vocabulary (`payment_status`, `status`, `paid_at`,
//!   `meeting_link_id` and the URL in `meeting_link`).
//!
//! A transaction-local setting (`meetpool.sync`) marks a write that is
//! itself one side's echo of the other, so nothing is echoed back. The
//! link columns of the platform's rows are meetpool's to write: the
//! platform's own writes to them are ignored, since two writers of one
//! link is what double-booked rooms before.
//!
//! Rolling back is `DROP SCHEMA meetpool CASCADE` (its trigger functions
//! go with it, and so do the triggers on the platform's tables) and
//! `DROP ROLE meetpool`: nothing of the platform's was changed but the
//! values of its link columns.
use std::collections::BTreeMap;
use std::fmt::Write as _;

use jiff::Timestamp;
use jiff_sqlx::ToSqlx;
use meetpool_domain::payment::ALL_STATUSES;
use meetpool_domain::{choose_link, PaymentStatus, Policy, Window};
use serde::Serialize;
use sqlx::{Connection, PgConnection, Row};
use uuid::Uuid;

use super::{candidates_from, CANDIDATES_SQL, MIGRATOR};
use crate::{DbSettings, Result, StoreError};

/// The schema meetpool's own tables live in.
pub const SCHEMA: &str = "meetpool";

/// The session type of bookings that name none, with `--default-duration`.
const DEFAULT_TYPE: &str = "6d706f6f-6c00-4000-8000-00000000d3f7";

/// What `meetpool adopt` is asked to do.
#[derive(Clone, Debug)]
pub struct AdoptOptions {
    /// The schema of the platform's tables.
    pub schema: String,
    /// meetpool's payment state → the value written to `payment_status`.
    pub payment_status_values: BTreeMap<String, String>,
    /// meetpool's payment state → the value written to `status`.
    pub status_values: BTreeMap<String, String>,
    /// Minutes of a booking whose session type is unknown.
    pub default_duration: Option<u32>,
    /// The login role meetpool's service connects as.
    pub role: String,
    pub role_password: Option<String>,
    pub settings: DbSettings,
    pub dry_run: bool,
}

/// What adoption found and did (or, on a dry run, would do).
#[derive(Clone, Debug, Default, Serialize)]
pub struct AdoptReport {
    pub dry_run: bool,
    pub schema: String,
    /// meetpool's schema was there already: this run only brings it up to
    /// date.
    pub already_adopted: bool,
    pub found: Found,
    /// Each of meetpool's payment states, as written to the platform's
    /// `payment_status` and `status`.
    pub vocabulary: Vec<Vocabulary>,
    pub changes: Vec<String>,
    /// Bookings whose link adoption changed: overlaps the previous flow left,
    /// paid bookings that had none.
    pub moves: Vec<Move>,
    /// Bookings left out, and why; the platform's rows stay as they are.
    pub not_adopted: Vec<NotAdopted>,
    pub not_adopted_total: u64,
    /// What adoption does not change but someone should look at.
    pub look_at: Vec<String>,
    /// Why adoption cannot go ahead; empty when it can.
    pub refused: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Found {
    pub bookings: i64,
    pub paid_bookings: i64,
    pub paid_without_link: i64,
    pub links: i64,
    pub enabled_links: i64,
    pub session_types: i64,
    /// The platform's name for each column meetpool reads, where it has one.
    pub columns: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Vocabulary {
    pub state: String,
    pub payment_status: String,
    pub status: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Move {
    pub booking_id: Uuid,
    pub order_id: String,
    pub from_link: Option<Uuid>,
    pub to_link: Option<Uuid>,
    pub why: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct NotAdopted {
    pub booking_id: Uuid,
    pub order_id: Option<String>,
    pub why: String,
}

/// How the platform's tables are shaped, as far as meetpool cares.
struct Platform {
    schema: String,
    price: Option<String>,
    status: Option<Vec<String>>,
    payment_status: Vec<String>,
    meeting_link: bool,
    paid_at: bool,
    time_is_text: bool,
    /// The types of columns meetpool stores as text, for writing back.
    order_type: String,
    user_type: String,
    expert_type: String,
    duration: String,
    type_price: Option<String>,
    link_notes: bool,
    assigned_at: String,
}

fn ident_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A SQL string literal.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Adopts (or, on a dry run, rehearses adopting) the database at `url`, in
/// one transaction. `progress` is told each step as it starts.
pub async fn adopt(
    url: &str,
    options: &AdoptOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<AdoptReport> {
    if !ident_ok(&options.schema) || !ident_ok(&options.role) {
        return Err(StoreError::Config(
            "--schema and --role must be plain lower-case SQL names".into(),
        ));
    }
    let mut conn = PgConnection::connect(url).await?;
    let mut tx = conn.begin().await?;
    let mut report = AdoptReport {
        dry_run: options.dry_run,
        schema: options.schema.clone(),
        ..AdoptReport::default()
    };
    let p = &options.schema;
    if !options.dry_run {
        // The platform's writes wait until adoption commits, then fire the
        // new triggers: none is missed between the copy and the triggers.
        progress("locking the platform's tables against writes");
        sqlx::raw_sql(&format!(
            "SET LOCAL lock_timeout = '60s'; \
             LOCK TABLE {p}.bookings, {p}.meeting_links_pool, {p}.session_types \
             IN SHARE ROW EXCLUSIVE MODE"
        ))
        .execute(&mut *tx)
        .await?;
    }
    progress("inspecting the platform's tables");
    let Some(platform) = inspect(&mut tx, options, &mut report).await? else {
        return Ok(report);
    };
    vocabulary(&platform, options, &mut report);
    if !report.refused.is_empty() {
        return Ok(report);
    }

    progress("installing meetpool's schema and migrations");
    install_schema(&mut tx, &platform, options, &mut report).await?;
    progress("copying session types and links");
    copy_types_and_links(&mut tx, &platform, options, &mut report).await?;
    if !report.refused.is_empty() {
        return Ok(report);
    }
    progress(&format!("reading {} bookings", report.found.bookings));
    stage_bookings(&mut tx, &platform, options, &mut report).await?;
    if !report.refused.is_empty() {
        return Ok(report);
    }
    progress("resolving overlapping bookings");
    let losers = resolve_overlaps(&mut tx, options).await?;
    progress("copying bookings");
    let copied = copy_bookings(&mut tx, options, progress).await?;
    if copied > 0 {
        report
            .changes
            .push(format!("copy {copied} bookings into {SCHEMA}.bookings"));
    }
    progress("placing moved and unassigned paid bookings");
    place(&mut tx, &losers, &mut report).await?;
    progress("writing links back to the platform's bookings");
    write_back_links(&mut tx, &platform, options, &mut report).await?;
    if options.dry_run {
        tx.rollback().await?;
        return Ok(report);
    }
    progress("installing the triggers");
    sqlx::raw_sql(&sync_sql(&platform, options))
        .execute(&mut *tx)
        .await?;
    grant(&mut tx, options).await?;
    sqlx::query(
        "INSERT INTO meetpool.adoption (id, platform_schema, adopted_at) VALUES (1, $1, now()) \
         ON CONFLICT (id) DO UPDATE SET platform_schema = $1",
    )
    .bind(p)
    .execute(&mut *tx)
    .await?;
    progress("committing");
    tx.commit().await?;
    Ok(report)
}

async fn columns(
    tx: &mut PgConnection,
    schema: &str,
    table: &str,
) -> Result<BTreeMap<String, String>> {
    let rows = sqlx::query(
        "SELECT column_name::text, udt_name::text FROM information_schema.columns \
         WHERE table_schema = $1 AND table_name = $2",
    )
    .bind(schema)
    .bind(table)
    .fetch_all(&mut *tx)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// The values a single-column CHECK constraint allows, when it lists them.
async fn allowed_values(
    tx: &mut PgConnection,
    schema: &str,
    column: &str,
) -> Result<Option<Vec<String>>> {
    let defs: Vec<String> = sqlx::query_scalar(
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c \
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] \
         WHERE c.conrelid = to_regclass($1) AND c.contype = 'c' \
           AND array_length(c.conkey, 1) = 1 AND a.attname = $2",
    )
    .bind(format!("{schema}.bookings"))
    .bind(column)
    .fetch_all(&mut *tx)
    .await?;
    let mut values: Option<Vec<String>> = None;
    for def in defs {
        let mut found = Vec::new();
        let mut rest = def.as_str();
        while let Some(start) = rest.find('\'') {
            let after = &rest[start + 1..];
            let Some(end) = after.find('\'') else { break };
            found.push(after[..end].to_owned());
            rest = &after[end + 1..];
        }
        if !found.is_empty() {
            values = Some(match values {
                None => found,
                Some(v) => v.into_iter().filter(|x| found.contains(x)).collect(),
            });
        }
    }
    Ok(values)
}

async fn inspect(
    tx: &mut PgConnection,
    options: &AdoptOptions,
    report: &mut AdoptReport,
) -> Result<Option<Platform>> {
    let p = &options.schema;
    let bookings = columns(tx, p, "bookings").await?;
    let links = columns(tx, p, "meeting_links_pool").await?;
    let types = columns(tx, p, "session_types").await?;
    for (name, cols) in [
        ("bookings", &bookings),
        ("meeting_links_pool", &links),
        ("session_types", &types),
    ] {
        if cols.is_empty() {
            report.refused.push(format!("no table {p}.{name}"));
        }
    }
    if !report.refused.is_empty() {
        return Ok(None);
    }
    let need =
        |cols: &BTreeMap<String, String>, table: &str, col: &str, report: &mut AdoptReport| {
            if !cols.contains_key(col) {
                report
                    .refused
                    .push(format!("{p}.{table} has no column {col}"));
            }
        };
    for col in [
        "id",
        "order_id",
        "user_id",
        "expert_id",
        "session_type_id",
        "booking_date",
        "booking_time",
        "payment_status",
        "meeting_link_id",
    ] {
        need(&bookings, "bookings", col, report);
    }
    for col in ["id", "meeting_link", "is_available"] {
        need(&links, "meeting_links_pool", col, report);
    }
    for col in ["id", "name"] {
        need(&types, "session_types", col, report);
    }
    for (table, cols) in [
        ("bookings", &bookings),
        ("meeting_links_pool", &links),
        ("session_types", &types),
    ] {
        if cols.get("id").is_some_and(|t| t != "uuid") {
            report
                .refused
                .push(format!("{p}.{table}.id is {}, not uuid", cols["id"]));
        }
    }
    let duration = ["duration", "duration_minutes"]
        .into_iter()
        .find(|c| types.contains_key(*c));
    if duration.is_none() {
        report.refused.push(format!(
            "{p}.session_types has no duration (minutes) column"
        ));
    }
    if !report.refused.is_empty() {
        return Ok(None);
    }
    let price = ["price", "total_price", "amount"]
        .into_iter()
        .find(|c| bookings.contains_key(*c))
        .map(str::to_owned);
    let has_status = bookings.contains_key("status");
    let payment_status = allowed_values(tx, p, "payment_status")
        .await?
        .unwrap_or_else(|| ALL_STATUSES.iter().map(|s| s.as_str().to_owned()).collect());
    let status = if has_status {
        Some(
            allowed_values(tx, p, "status")
                .await?
                .unwrap_or_else(|| ALL_STATUSES.iter().map(|s| s.as_str().to_owned()).collect()),
        )
    } else {
        None
    };
    let platform = Platform {
        schema: p.clone(),
        price: price.clone(),
        status,
        payment_status,
        meeting_link: bookings.contains_key("meeting_link"),
        paid_at: bookings.contains_key("paid_at"),
        time_is_text: bookings["booking_time"] != "time",
        order_type: bookings["order_id"].clone(),
        user_type: bookings["user_id"].clone(),
        expert_type: bookings["expert_id"].clone(),
        duration: duration.expect("checked above").to_owned(),
        type_price: ["price", "base_price"]
            .into_iter()
            .find(|c| types.contains_key(*c))
            .map(str::to_owned),
        link_notes: links.contains_key("notes"),
        assigned_at: ["paid_at", "updated_at", "created_at"]
            .into_iter()
            .filter(|c| bookings.contains_key(*c))
            .map(|c| format!("b.{c}"))
            .chain(["NULL::timestamptz".to_owned()])
            .collect::<Vec<_>>()
            .join(", "),
    };
    let cols = &mut report.found.columns;
    cols.insert("booking_time".into(), bookings["booking_time"].clone());
    cols.insert("price".into(), price.unwrap_or_else(|| "(none: 0)".into()));
    for c in ["status", "meeting_link", "paid_at"] {
        cols.insert(
            c.into(),
            if bookings.contains_key(c) {
                c.into()
            } else {
                "(none)".into()
            },
        );
    }
    cols.insert("session_types.duration".into(), platform.duration.clone());

    let counts = sqlx::query(&format!(
        "SELECT (SELECT count(*) FROM {p}.bookings), \
                (SELECT count(*) FROM {p}.meeting_links_pool), \
                (SELECT count(*) FROM {p}.meeting_links_pool WHERE is_available), \
                (SELECT count(*) FROM {p}.session_types), \
                to_regclass('meetpool._sqlx_migrations') IS NOT NULL"
    ))
    .fetch_one(&mut *tx)
    .await?;
    report.found.bookings = counts.try_get(0)?;
    report.found.links = counts.try_get(1)?;
    report.found.enabled_links = counts.try_get(2)?;
    report.found.session_types = counts.try_get(3)?;
    report.already_adopted = counts.try_get(4)?;

    look_at(tx, p, report).await?;
    Ok(Some(platform))
}

/// What adoption leaves alone but an operator should look at.
async fn look_at(tx: &mut PgConnection, p: &str, report: &mut AdoptReport) -> Result<()> {
    let rls: Option<bool> =
        sqlx::query_scalar("SELECT relrowsecurity FROM pg_class WHERE oid = to_regclass($1)")
            .bind(format!("{p}.meeting_links_pool"))
            .fetch_optional(&mut *tx)
            .await?;
    let open: Vec<(String, String)> = sqlx::query_as(
        "SELECT policyname::text, array_to_string(roles, ', ') FROM pg_policies \
         WHERE schemaname = $1 AND tablename = 'meeting_links_pool' AND cmd IN ('SELECT', 'ALL') \
           AND coalesce(btrim(qual), 'true') = 'true' \
           AND roles && ARRAY['authenticated', 'anon', 'public']::name[]",
    )
    .bind(p)
    .fetch_all(&mut *tx)
    .await?;
    for (policy, roles) in open {
        report.look_at.push(format!(
            "{p}.meeting_links_pool: policy \"{policy}\" lets {roles} read every pooled link; \
             participants now get join URLs (/j/...), so the raw links need not be readable: \
             consider dropping it"
        ));
    }
    if rls == Some(false) {
        report.look_at.push(format!(
            "{p}.meeting_links_pool has row-level security off: any role granted SELECT reads \
             every pooled link"
        ));
    }
    let functions: Vec<String> = sqlx::query_scalar(
        "SELECT p.proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname = $1 AND p.proname ILIKE '%meeting_link%' ORDER BY 1",
    )
    .bind(p)
    .fetch_all(&mut *tx)
    .await?;
    for f in functions {
        report.look_at.push(format!(
            "{p}.{f}() looks like the previous assignment: once adopted, meetpool alone writes \
             bookings.meeting_link_id (the platform's own writes to it are ignored); retire it \
             and the edge function that calls it"
        ));
    }
    let logs: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(format!("{p}.payment_logs"))
        .fetch_one(&mut *tx)
        .await?;
    if logs {
        report.look_at.push(format!(
            "{p}.payment_logs is kept as it is; meetpool records the notifications it settles \
             in {SCHEMA}.payment_notifications and each booking's trail in {SCHEMA}.booking_events"
        ));
    }
    Ok(())
}

/// Each of meetpool's states as a value of the platform's columns: a value
/// that the column allows by the state's own name, else the one given.
fn vocabulary(platform: &Platform, options: &AdoptOptions, report: &mut AdoptReport) {
    for (flag, given) in [
        ("--payment-status-values", &options.payment_status_values),
        ("--status-values", &options.status_values),
    ] {
        for state in given.keys() {
            if state.parse::<PaymentStatus>().is_err() {
                report.refused.push(format!(
                    "{flag}: {state} is not one of meetpool's states ({})",
                    state_names()
                ));
            }
        }
    }
    let map = |allowed: &[String],
               given: &BTreeMap<String, String>,
               column: &str,
               flag: &str,
               report: &mut AdoptReport| {
        let mut out = BTreeMap::new();
        for state in ALL_STATUSES {
            let name = state.as_str();
            let value = given
                .get(name)
                .cloned()
                .or_else(|| allowed.iter().any(|v| v == name).then(|| name.to_owned()));
            match value {
                Some(v) if allowed.contains(&v) => {
                    out.insert(name.to_owned(), v);
                }
                Some(v) => report.refused.push(format!(
                    "{flag}: {name}={v}, but {column} allows only {}",
                    allowed.join(", ")
                )),
                None => report.refused.push(format!(
                    "meetpool's state {name} has no value in {column} (which allows {}): \
                     say which with {flag} {name}=VALUE",
                    allowed.join(", ")
                )),
            }
        }
        out
    };
    let payment = map(
        &platform.payment_status,
        &options.payment_status_values,
        "bookings.payment_status",
        "--payment-status-values",
        report,
    );
    let status = platform.status.as_ref().map(|allowed| {
        map(
            allowed,
            &options.status_values,
            "bookings.status",
            "--status-values",
            report,
        )
    });
    if report.refused.is_empty() {
        report.vocabulary = ALL_STATUSES
            .iter()
            .map(|s| Vocabulary {
                state: s.as_str().to_owned(),
                payment_status: payment[s.as_str()].clone(),
                status: status.as_ref().map(|m| m[s.as_str()].clone()),
            })
            .collect();
    }
}

fn state_names() -> String {
    ALL_STATUSES
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

async fn install_schema(
    tx: &mut PgConnection,
    platform: &Platform,
    options: &AdoptOptions,
    report: &mut AdoptReport,
) -> Result<()> {
    let extensions: bool = sqlx::query_scalar("SELECT to_regnamespace('extensions') IS NOT NULL")
        .fetch_one(&mut *tx)
        .await?;
    let gist: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'btree_gist')",
    )
    .fetch_one(&mut *tx)
    .await?;
    let home = if extensions { "extensions" } else { SCHEMA };
    sqlx::raw_sql(&format!(
        "CREATE SCHEMA IF NOT EXISTS {SCHEMA}; \
         CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA {home}; \
         SET LOCAL search_path = {SCHEMA}{}",
        if extensions { ", extensions" } else { "" }
    ))
    .execute(&mut *tx)
    .await?;
    if !gist {
        report.changes.push(format!(
            "create the extension btree_gist in the schema {home}"
        ));
    }
    let applied: Vec<i64> = if report.already_adopted {
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(&mut *tx)
            .await?
    } else {
        report.changes.push(format!(
            "create the schema {SCHEMA} for meetpool's own tables"
        ));
        Vec::new()
    };
    let pending = MIGRATOR
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .count();
    // Inside this transaction: each migration in a savepoint of its own.
    MIGRATOR.run_direct(&mut *tx).await?;
    if pending > 0 {
        report.changes.push(format!(
            "apply {pending} of meetpool's migrations in {SCHEMA}"
        ));
    }
    let settings_changed = sqlx::query(
        "UPDATE meetpool_settings SET timezone = $1, buffer_minutes = $2, chosen = true \
         WHERE id = 1 AND (timezone, buffer_minutes, chosen) IS DISTINCT FROM ($1, $2, true)",
    )
    .bind(&options.settings.timezone)
    .bind(i32::try_from(options.settings.buffer_minutes).unwrap_or(0))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if settings_changed > 0 {
        report.changes.push(format!(
            "set meetpool's settings: time zone {}, buffer {} minutes",
            options.settings.timezone, options.settings.buffer_minutes
        ));
    }
    sqlx::raw_sql(&helpers_sql(platform, report))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// The tables and functions adoption adds beside the migrations'.
fn helpers_sql(platform: &Platform, report: &AdoptReport) -> String {
    let to_state = |column: &str, values: &dyn Fn(&Vocabulary) -> Option<String>| {
        // A platform value names the state of the same name if there is one,
        // else the first of those mapped to it in this order.
        let order = [
            "pending",
            "paid",
            "refunded",
            "cancelled",
            "expired",
            "failed",
        ];
        let mut by_value: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for v in &report.vocabulary {
            if let Some(value) = values(v) {
                by_value.entry(value).or_default().push(&v.state);
            }
        }
        let mut case = format!("CASE {column}");
        for (value, states) in by_value {
            let state = if states.contains(&value.as_str()) {
                value.clone()
            } else {
                order
                    .iter()
                    .find(|s| states.contains(s))
                    .map(|s| (*s).to_owned())
                    .unwrap_or_default()
            };
            let _ = write!(case, " WHEN {} THEN {}", lit(&value), lit(&state));
        }
        case.push_str(" END");
        case
    };
    let from_state = |values: &dyn Fn(&Vocabulary) -> Option<String>| {
        let mut case = "CASE state".to_owned();
        for v in &report.vocabulary {
            if let Some(value) = values(v) {
                let _ = write!(case, " WHEN {} THEN {}", lit(&v.state), lit(&value));
            }
        }
        case.push_str(" END");
        case
    };
    let ps_state = to_state("ps", &|v| Some(v.payment_status.clone()));
    let st_state = if platform.status.is_some() {
        to_state("st", &|v| v.status.clone())
    } else {
        "NULL::text".to_owned()
    };
    let ps_value = from_state(&|v| Some(v.payment_status.clone()));
    let st_value = from_state(&|v| v.status.clone());
    format!(
        r#"
CREATE TABLE IF NOT EXISTS meetpool.adoption (
    id integer PRIMARY KEY CHECK (id = 1),
    platform_schema text NOT NULL,
    adopted_at timestamptz NOT NULL
);
-- The platform's changes, for the service to carry out with its use cases.
CREATE TABLE IF NOT EXISTS meetpool.platform_changes (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('payment', 'schedule', 'backfill', 'link')),
    booking_id uuid,
    link_id uuid,
    state text,
    booking_date date,
    booking_time text,
    session_type_id uuid,
    enabled boolean,
    claimed_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS platform_changes_booking ON meetpool.platform_changes (booking_id, id);
-- Platform rows meetpool could not mirror (a time that does not parse, an
-- unknown duration, an order id used twice).
CREATE TABLE IF NOT EXISTS meetpool.adoption_problems (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    booking_id uuid,
    problem text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- A platform's wall-clock time of day, or NULL when it is not one.
CREATE OR REPLACE FUNCTION meetpool.adopt_time(t text) RETURNS time
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN btrim(t) ~ '^([01]?[0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$'
        THEN btrim(t)::time END
$$;

CREATE OR REPLACE FUNCTION meetpool.adopt_earliest(local timestamp, tz text,
    a timestamptz, b timestamptz, c timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT least(CASE WHEN (a AT TIME ZONE tz) = local THEN a END,
                 CASE WHEN (b AT TIME ZONE tz) = local THEN b END,
                 CASE WHEN (c AT TIME ZONE tz) = local THEN c END)
$$;

-- meetpool_local_instant's rule without its error: NULL in a DST gap.
-- The candidates are the local time read with the offsets in force a day
-- either side and with PostgreSQL's own reading; those that read back as
-- the same local time are valid and the earliest wins. One expression,
-- so that the planner inlines it into a bulk copy.
CREATE OR REPLACE FUNCTION meetpool.adopt_instant(local timestamp, tz text) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT meetpool.adopt_earliest(local, tz,
        (local - ((((local AT TIME ZONE tz) - interval '24 hours') AT TIME ZONE tz)
                  - (((local AT TIME ZONE tz) - interval '24 hours') AT TIME ZONE 'UTC'))) AT TIME ZONE 'UTC',
        (local - ((((local AT TIME ZONE tz) + interval '24 hours') AT TIME ZONE tz)
                  - (((local AT TIME ZONE tz) + interval '24 hours') AT TIME ZONE 'UTC'))) AT TIME ZONE 'UTC',
        local AT TIME ZONE tz)
$$;

-- meetpool's state for the platform's payment_status and status.
CREATE OR REPLACE FUNCTION meetpool.platform_state(ps text, st text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN 'refunded' IN ({ps_state}, {st_state}) THEN 'refunded'
        WHEN {st_state} IN ('cancelled', 'expired', 'failed') THEN {st_state}
        WHEN {ps_state} IN ('cancelled', 'expired', 'failed') THEN {ps_state}
        WHEN 'paid' IN ({ps_state}, {st_state}) THEN 'paid'
        ELSE 'pending' END
$$;

CREATE OR REPLACE FUNCTION meetpool.platform_payment_status(state text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT {ps_value} $$;

CREATE OR REPLACE FUNCTION meetpool.platform_status(state text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT {st_value} $$;
"#
    )
}

async fn copy_types_and_links(
    tx: &mut PgConnection,
    platform: &Platform,
    options: &AdoptOptions,
    report: &mut AdoptReport,
) -> Result<()> {
    let p = &platform.schema;
    let dur = &platform.duration;
    let price = platform.type_price.as_ref().map_or("0".to_owned(), |c| {
        format!("round(coalesce(t.{c}, 0))::bigint")
    });
    let types = sqlx::query(&format!(
        "INSERT INTO meetpool.session_types (id, name, duration, price) \
         SELECT t.id, coalesce(t.name::text, ''), t.{dur}, {price} FROM {p}.session_types t \
         WHERE t.{dur} BETWEEN 1 AND 1440 \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, duration = excluded.duration \
         WHERE (session_types.name, session_types.duration) IS DISTINCT FROM (excluded.name, excluded.duration)"
    ))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if types > 0 {
        report.changes.push(format!(
            "copy {types} session types into {SCHEMA}.session_types"
        ));
    }
    if let Some(minutes) = options.default_duration {
        let added = sqlx::query(
            "INSERT INTO meetpool.session_types (id, name, duration) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET duration = excluded.duration, name = excluded.name \
             WHERE session_types.duration <> excluded.duration",
        )
        .bind(Uuid::parse_str(DEFAULT_TYPE).expect("a UUID"))
        .bind(format!("Unspecified ({minutes} min)"))
        .bind(i32::try_from(minutes).unwrap_or(60))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if added > 0 {
            report.changes.push(format!(
                "bookings with no session type last {minutes} minutes (--default-duration)"
            ));
        }
    }
    let duplicates: Vec<(String, String)> = sqlx::query_as(&format!(
        "SELECT meetpool_room(meeting_link), string_agg(id::text || ' ' || meeting_link, ', ' ORDER BY created_at, id) \
         FROM {p}.meeting_links_pool WHERE is_available GROUP BY 1 HAVING count(*) > 1",
    ))
    .fetch_all(&mut *tx)
    .await?;
    for (room, links) in duplicates {
        report.refused.push(format!(
            "the meeting room {room} is in the pool more than once, enabled: {links}. \
             Disable all but one (UPDATE {p}.meeting_links_pool SET is_available = false WHERE id = ...)"
        ));
    }
    if !report.refused.is_empty() {
        return Ok(());
    }
    let notes = if platform.link_notes {
        "l.notes::text"
    } else {
        "NULL"
    };
    let order = if platform_has(tx, p, "meeting_links_pool", "created_at").await? {
        "l.created_at, l.id"
    } else {
        "l.id"
    };
    let links = sqlx::query(&format!(
        "INSERT INTO meetpool.meeting_links_pool (id, meeting_link, notes, is_available) \
         SELECT l.id, l.meeting_link, {notes}, coalesce(l.is_available, false) \
         FROM {p}.meeting_links_pool l ORDER BY {order} \
         ON CONFLICT (id) DO NOTHING"
    ))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if links > 0 {
        report.changes.push(format!(
            "copy {links} links into {SCHEMA}.meeting_links_pool"
        ));
    }
    Ok(())
}

async fn platform_has(
    tx: &mut PgConnection,
    schema: &str,
    table: &str,
    column: &str,
) -> Result<bool> {
    Ok(columns(tx, schema, table).await?.contains_key(column))
}

/// Reads the platform's bookings that meetpool does not hold yet into a
/// temporary table, with meetpool's reading of each.
async fn stage_bookings(
    tx: &mut PgConnection,
    platform: &Platform,
    options: &AdoptOptions,
    report: &mut AdoptReport,
) -> Result<()> {
    let p = &platform.schema;
    let price = platform.price.as_ref().map_or("0::bigint".to_owned(), |c| {
        format!("round(coalesce(b.{c}, 0))::bigint")
    });
    let status = if platform.status.is_some() {
        "b.status::text"
    } else {
        "NULL::text"
    };
    let default_type = if options.default_duration.is_some() {
        format!("{}::uuid", lit(DEFAULT_TYPE))
    } else {
        "NULL::uuid".to_owned()
    };
    let assigned = &platform.assigned_at;
    // Reading a wall-clock time in a zone costs more than the rest of a
    // row: it is done once per distinct time (`i`), not per booking.
    sqlx::raw_sql(&format!(
        "CREATE TEMP TABLE meetpool_adopt ON COMMIT DROP AS \
         WITH s AS MATERIALIZED ( \
           SELECT b.id, b.order_id::text AS platform_order, coalesce(b.order_id::text, b.id::text) AS order_id, \
                  coalesce(b.user_id::text, '') AS user_id, coalesce(b.expert_id::text, '') AS expert_id, \
                  t.id AS session_type_id, t.duration, b.booking_date, \
                  meetpool.adopt_time(b.booking_time::text) AS booking_time, {price} AS price, \
                  meetpool.platform_state(b.payment_status::text, {status}) AS state, \
                  coalesce({status}, 'pending') AS status, \
                  CASE WHEN meetpool.platform_state(b.payment_status::text, {status}) = 'paid' \
                       THEN l.id END AS link, \
                  b.meeting_link_id AS platform_link, \
                  coalesce({assigned}) AS assigned_at \
           FROM {p}.bookings b \
           LEFT JOIN meetpool.session_types t ON t.id = coalesce(b.session_type_id, {default_type}) \
           LEFT JOIN meetpool.meeting_links_pool l ON l.id = b.meeting_link_id \
           WHERE NOT EXISTS (SELECT 1 FROM meetpool.bookings m WHERE m.id = b.id)), \
         i AS (SELECT l, meetpool.adopt_instant(l, {tz}) AS starts_at FROM ( \
           SELECT DISTINCT booking_date + booking_time AS l FROM s WHERE booking_time IS NOT NULL) d) \
         SELECT s.*, i.starts_at, i.starts_at + make_interval(mins => s.duration) AS ends_at, \
                NULL::uuid AS moved_from \
         FROM s LEFT JOIN i ON i.l = s.booking_date + s.booking_time; \
         CREATE INDEX ON meetpool_adopt (id); \
         ANALYZE meetpool_adopt",
        tz = lit(&options.settings.timezone),
    ))
    .execute(&mut *tx)
    .await?;
    let (paid, unlinked): (i64, i64) = sqlx::query_as(&format!(
        "SELECT count(*), count(*) FILTER (WHERE meeting_link_id IS NULL) FROM {p}.bookings b \
         WHERE meetpool.platform_state(b.payment_status::text, {status}) = 'paid'"
    ))
    .fetch_one(&mut *tx)
    .await?;
    report.found.paid_bookings = paid;
    report.found.paid_without_link = unlinked;
    let (total,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM meetpool_adopt WHERE ends_at IS NULL")
            .fetch_one(&mut *tx)
            .await?;
    report.not_adopted_total = u64::try_from(total).unwrap_or_default();
    let rows = sqlx::query(
        "SELECT id, platform_order, CASE \
           WHEN booking_time IS NULL THEN 'booking_time does not read as HH:MM' \
           WHEN duration IS NULL THEN 'its session type is unknown or has no duration (see --default-duration)' \
           ELSE 'its time does not exist on that day (a daylight-saving gap)' END \
         FROM meetpool_adopt WHERE ends_at IS NULL ORDER BY booking_date, id LIMIT 100",
    )
    .fetch_all(&mut *tx)
    .await?;
    for r in rows {
        report.not_adopted.push(NotAdopted {
            booking_id: r.try_get(0)?,
            order_id: r.try_get(1)?,
            why: r.try_get(2)?,
        });
    }
    let dupes: Vec<(String, i64)> = sqlx::query_as(
        "SELECT order_id, count(*) FROM ( \
           SELECT order_id FROM meetpool_adopt WHERE ends_at IS NOT NULL \
           UNION ALL SELECT order_id FROM meetpool.bookings) o \
         GROUP BY order_id HAVING count(*) > 1 ORDER BY order_id LIMIT 20",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (order, n) in dupes {
        report.refused.push(format!(
            "the order id {order} is on {n} bookings; Midtrans reports payments by order id, \
             so each booking needs its own: give the others new ones"
        ));
    }
    Ok(())
}

/// A booking holding a link, in the overlap check.
struct Held {
    id: Uuid,
    link: Uuid,
    busy: Window,
    /// Already meetpool's (an earlier adoption): it keeps its link.
    kept: bool,
}

/// The bookings that lose their link to an overlapping one assigned
/// before them, with the booking that keeps it.
async fn resolve_overlaps(
    tx: &mut PgConnection,
    options: &AdoptOptions,
) -> Result<Vec<(Uuid, Uuid, Uuid)>> {
    let buffer = i32::try_from(options.settings.buffer_minutes).unwrap_or(0);
    // Per link in order of start, a running maximum of the ends before
    // each row starts a new cluster whenever it is not past the row's
    // start; only clusters of more than one row overlap.
    let rows = sqlx::query(
        "WITH r AS ( \
           SELECT id, link, starts_at, ends_at + make_interval(mins => $1) AS busy_end, false AS kept, assigned_at \
             FROM meetpool_adopt WHERE link IS NOT NULL AND ends_at IS NOT NULL \
           UNION ALL \
           SELECT id, meeting_link_id, lower(busy), upper(busy), true, assigned_at FROM meetpool.bookings \
             WHERE meeting_link_id IN (SELECT link FROM meetpool_adopt WHERE link IS NOT NULL)), \
         o AS (SELECT *, max(busy_end) OVER (PARTITION BY link ORDER BY starts_at, id \
                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before_end FROM r), \
         c AS (SELECT *, count(*) FILTER (WHERE before_end IS NULL OR before_end <= starts_at) \
                 OVER (PARTITION BY link ORDER BY starts_at, id) AS cluster FROM o), \
         s AS (SELECT *, count(*) OVER (PARTITION BY link, cluster) AS size FROM c) \
         SELECT id, link, starts_at, busy_end, kept FROM s WHERE size > 1 \
         ORDER BY link, kept DESC, assigned_at NULLS LAST, id",
    )
    .bind(buffer)
    .fetch_all(&mut *tx)
    .await?;
    let ts = |r: &sqlx::postgres::PgRow, c: &str| -> Result<Option<Timestamp>> {
        Ok(r.try_get::<Option<jiff_sqlx::Timestamp>, _>(c)?
            .map(|t| t.to_jiff()))
    };
    let mut held = Vec::with_capacity(rows.len());
    for r in &rows {
        held.push(Held {
            id: r.try_get("id")?,
            link: r.try_get("link")?,
            busy: Window::new(
                ts(r, "starts_at")?.expect("a start"),
                ts(r, "busy_end")?.expect("an end"),
            ),
            kept: r.try_get("kept")?,
        });
    }
    // Rows come per link, those assigned first first: each keeps the link
    // unless it overlaps one that kept it.
    let mut losers = Vec::new();
    let mut keeping: Vec<&Held> = Vec::new();
    for h in &held {
        if keeping.first().is_some_and(|k| k.link != h.link) {
            keeping.clear();
        }
        match keeping.iter().find(|k| k.busy.overlaps(&h.busy)) {
            Some(winner) if !h.kept => losers.push((h.id, h.link, winner.id)),
            _ => keeping.push(h),
        }
    }
    if !losers.is_empty() {
        let ids: Vec<Uuid> = losers.iter().map(|l| l.0).collect();
        sqlx::query("UPDATE meetpool_adopt SET moved_from = link, link = NULL WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
    }
    Ok(losers)
}

async fn copy_bookings(
    tx: &mut PgConnection,
    options: &AdoptOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<u64> {
    let buffer = i32::try_from(options.settings.buffer_minutes).unwrap_or(0);
    // The derived columns are computed here for all rows at once rather
    // than by bookings_derive() row by row; the copy is not an event the
    // other triggers should see either.
    sqlx::raw_sql("ALTER TABLE meetpool.bookings DISABLE TRIGGER USER")
        .execute(&mut *tx)
        .await?;
    // Into an empty table (a first adoption), the indexes and constraints
    // are built once over all the rows, as the migrations define them,
    // rather than row by row: several times faster.
    let empty: bool = sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM meetpool.bookings)")
        .fetch_one(&mut *tx)
        .await?;
    let mut rebuild: Vec<String> = Vec::new();
    if empty {
        let constraints: Vec<(String, String)> = sqlx::query_as(
            "SELECT quote_ident(conname), pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE conrelid = 'meetpool.bookings'::regclass AND contype IN ('u', 'x', 'f') ORDER BY oid",
        )
        .fetch_all(&mut *tx)
        .await?;
        let indexes: Vec<(String, String)> = sqlx::query_as(
            "SELECT quote_ident(c.relname), pg_get_indexdef(i.indexrelid) FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE i.indrelid = 'meetpool.bookings'::regclass AND NOT i.indisprimary \
               AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) \
             ORDER BY i.indexrelid",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut drop = String::new();
        for (name, def) in &constraints {
            let _ = write!(
                drop,
                "ALTER TABLE meetpool.bookings DROP CONSTRAINT {name};"
            );
            rebuild.push(format!(
                "ALTER TABLE meetpool.bookings ADD CONSTRAINT {name} {def}"
            ));
        }
        for (name, def) in &indexes {
            let _ = write!(drop, "DROP INDEX meetpool.{name};");
            rebuild.push(def.clone());
        }
        sqlx::raw_sql(&drop).execute(&mut *tx).await?;
    }
    let copied = sqlx::query(
        "INSERT INTO meetpool.bookings (id, order_id, user_id, expert_id, session_type_id, \
           booking_date, booking_time, price, payment_status, status, meeting_link_id, \
           starts_at, ends_at, busy, assigned_at) \
         SELECT id, order_id, user_id, expert_id, session_type_id, booking_date, booking_time, \
           price, state, status, link, starts_at, ends_at, \
           CASE WHEN link IS NOT NULL THEN tstzrange(starts_at, ends_at + make_interval(mins => $1), '[)') END, \
           CASE WHEN link IS NOT NULL THEN coalesce(assigned_at, now()) END \
         FROM meetpool_adopt WHERE ends_at IS NOT NULL",
    )
    .bind(buffer)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    for statement in rebuild {
        progress(&format!("building: {statement}"));
        sqlx::raw_sql(&statement).execute(&mut *tx).await?;
    }
    sqlx::raw_sql("ALTER TABLE meetpool.bookings ENABLE TRIGGER USER")
        .execute(&mut *tx)
        .await?;
    Ok(copied)
}

/// Gives each booking that lost its link, and each paid one that had none
/// and has not ended, a free link by best fit, in the order they were
/// assigned (or paid); those for which none is free join the queue. A
/// session that has ended only loses its link.
async fn place(
    tx: &mut PgConnection,
    losers: &[(Uuid, Uuid, Uuid)],
    report: &mut AdoptReport,
) -> Result<()> {
    let rows = sqlx::query(
        "SELECT a.id, a.order_id, a.moved_from, a.ends_at > now() AS coming, \
                a.starts_at, \
                a.ends_at + make_interval(mins => s.buffer_minutes) AS busy_end \
         FROM meetpool_adopt a JOIN meetpool.bookings b USING (id) CROSS JOIN meetpool_settings s \
         WHERE a.ends_at IS NOT NULL AND a.link IS NULL \
           AND (a.moved_from IS NOT NULL OR (a.state = 'paid' AND a.ends_at > now())) \
         ORDER BY a.assigned_at NULLS LAST, a.id",
    )
    .fetch_all(&mut *tx)
    .await?;
    for r in rows {
        let id: Uuid = r.try_get("id")?;
        let order_id: String = r.try_get("order_id")?;
        let from: Option<Uuid> = r.try_get("moved_from")?;
        let coming: bool = r.try_get("coming")?;
        let overlapped = losers.iter().find(|l| l.0 == id).map(|l| {
            format!(
                "it overlapped booking {} on that link, assigned before it",
                l.2
            )
        });
        let start = r.try_get::<jiff_sqlx::Timestamp, _>("starts_at")?.to_jiff();
        let end = r.try_get::<jiff_sqlx::Timestamp, _>("busy_end")?.to_jiff();
        let want = Window::new(start, end);
        let mut to = None;
        if coming {
            let found = sqlx::query(CANDIDATES_SQL)
                .bind(vec![id])
                .bind(vec![start.to_sqlx()])
                .fetch_all(&mut *tx)
                .await?;
            let candidates = candidates_from(&found, 1)?.pop().unwrap_or_default();
            to = choose_link(Policy::BestFit, &want, &candidates).map(|l| l.0);
        }
        if let Some(link) = to {
            sqlx::query(
                "UPDATE meetpool.bookings SET meeting_link_id = $2, assigned_at = now() WHERE id = $1",
            )
            .bind(id)
            .bind(link)
            .execute(&mut *tx)
            .await?;
        }
        let why = match (&overlapped, to, coming) {
            (Some(o), Some(_), _) => format!("moved: {o}"),
            (Some(o), None, true) => format!("queued, no link free: {o}"),
            (Some(o), None, false) => format!("link released (the session has ended): {o}"),
            (None, Some(_), _) => "paid without a link: given a free one".to_owned(),
            (None, None, _) => "paid without a link: queued, no link free".to_owned(),
        };
        let kind = match (from, to) {
            (Some(_), Some(_)) => "link_changed",
            (Some(_), None) => "released",
            (None, Some(_)) => "assigned",
            (None, None) => "pool_exhausted",
        };
        sqlx::query(
            "INSERT INTO meetpool.booking_events (booking_id, kind, meeting_link_id, detail) \
             VALUES ($1, $2, $3, jsonb_build_object('source', 'adopt', 'from', $4::text, 'why', $5::text))",
        )
        .bind(id)
        .bind(kind)
        .bind(to.or(from))
        .bind(from.map(|f| f.to_string()))
        .bind(&why)
        .execute(&mut *tx)
        .await?;
        report.moves.push(Move {
            booking_id: id,
            order_id,
            from_link: from,
            to_link: to,
            why,
        });
    }
    Ok(())
}

/// Makes each platform booking's link columns say what meetpool holds.
async fn write_back_links(
    tx: &mut PgConnection,
    platform: &Platform,
    options: &AdoptOptions,
    report: &mut AdoptReport,
) -> Result<()> {
    let p = &platform.schema;
    let differs = if platform.meeting_link {
        "(p.meeting_link_id, p.meeting_link) IS DISTINCT FROM (m.meeting_link_id, l.meeting_link)"
    } else {
        "p.meeting_link_id IS DISTINCT FROM m.meeting_link_id"
    };
    let from = format!(
        "FROM meetpool.bookings m LEFT JOIN meetpool.meeting_links_pool l ON l.id = m.meeting_link_id \
         WHERE p.id = m.id AND {differs}"
    );
    let n = if options.dry_run {
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {p}.bookings p, {}",
            &from[5..]
        ))
        .fetch_one(&mut *tx)
        .await?;
        u64::try_from(n).unwrap_or_default()
    } else {
        let set_url = if platform.meeting_link {
            ", meeting_link = l.meeting_link"
        } else {
            ""
        };
        sqlx::query(&format!(
            "UPDATE {p}.bookings p SET meeting_link_id = m.meeting_link_id{set_url} {from}"
        ))
        .execute(&mut *tx)
        .await?
        .rows_affected()
    };
    if n > 0 {
        report.changes.push(format!(
            "set meeting_link_id{} on {n} of the platform's bookings to the link meetpool holds \
             for them (the moves above, and unpaid or cancelled bookings that kept a link)",
            if platform.meeting_link {
                " and meeting_link"
            } else {
                ""
            }
        ));
    }
    if !report.already_adopted {
        report.changes.push(format!(
            "add triggers to {p}.bookings, {p}.meeting_links_pool and {p}.session_types that \
             keep meetpool's copy in step (the tables themselves are not altered)"
        ));
        report.changes.push(format!(
            "let the role {} use the schema {SCHEMA}, where its search_path points",
            options.role
        ));
    }
    Ok(())
}

async fn grant(tx: &mut PgConnection, options: &AdoptOptions) -> Result<()> {
    let role = &options.role;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(role)
            .fetch_one(&mut *tx)
            .await?;
    if !exists {
        sqlx::raw_sql(&format!("CREATE ROLE {role} LOGIN"))
            .execute(&mut *tx)
            .await?;
    }
    if let Some(password) = &options.role_password {
        sqlx::raw_sql(&format!("ALTER ROLE {role} PASSWORD {}", lit(password)))
            .execute(&mut *tx)
            .await?;
    }
    let db: String = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(&mut *tx)
        .await?;
    let ext: bool = sqlx::query_scalar("SELECT to_regnamespace('extensions') IS NOT NULL")
        .fetch_one(&mut *tx)
        .await?;
    sqlx::raw_sql(&format!(
        "GRANT USAGE ON SCHEMA {SCHEMA} TO {role}; \
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {SCHEMA} TO {role}; \
         GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {SCHEMA} TO {role}; \
         GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {SCHEMA} TO {role}; \
         ALTER ROLE {role} IN DATABASE \"{}\" SET search_path = {SCHEMA}{}",
        db.replace('"', "\"\""),
        if ext { ", extensions" } else { "" }
    ))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The triggers that keep the two sides in step (see the module's doc).
fn sync_sql(platform: &Platform, options: &AdoptOptions) -> String {
    let p = &platform.schema;
    let price = |r: &str| {
        platform.price.as_ref().map_or("0::bigint".to_owned(), |c| {
            format!("round(coalesce({r}.{c}, 0))::bigint")
        })
    };
    let status = |r: &str| {
        if platform.status.is_some() {
            format!("{r}.status::text")
        } else {
            "NULL::text".to_owned()
        }
    };
    let state = |r: &str| {
        format!(
            "meetpool.platform_state({r}.payment_status::text, {})",
            status(r)
        )
    };
    let default_type = if options.default_duration.is_some() {
        format!("{}::uuid", lit(DEFAULT_TYPE))
    } else {
        "NULL::uuid".to_owned()
    };
    let time_out = |e: &str| {
        if platform.time_is_text {
            format!("to_char({e}, 'HH24:MI')")
        } else {
            e.to_owned()
        }
    };
    let price_col = platform.price.clone();
    let url_insert = if platform.meeting_link {
        ", meeting_link"
    } else {
        ""
    };
    let url_value = if platform.meeting_link { ", url" } else { "" };
    let url_set = if platform.meeting_link {
        "meeting_link = url,"
    } else {
        ""
    };
    let url_keep = if platform.meeting_link {
        "NEW.meeting_link := OLD.meeting_link;"
    } else {
        ""
    };
    let url_clear = if platform.meeting_link {
        "NEW.meeting_link := NULL;"
    } else {
        ""
    };
    let paid_at = if platform.paid_at {
        "paid_at = CASE WHEN NEW.payment_status = 'paid' AND OLD.payment_status IS DISTINCT FROM 'paid' \
                        THEN coalesce(paid_at, now()) ELSE paid_at END,"
    } else {
        ""
    };
    let status_set = if platform.status.is_some() {
        "status = CASE WHEN NEW.payment_status IS DISTINCT FROM OLD.payment_status \
                       THEN meetpool.platform_status(NEW.payment_status) ELSE status END,"
    } else {
        ""
    };
    let status_insert = if platform.status.is_some() {
        ", status"
    } else {
        ""
    };
    let status_value = if platform.status.is_some() {
        ", meetpool.platform_status(NEW.payment_status)"
    } else {
        ""
    };
    let (price_insert, price_value) = match &price_col {
        Some(c) => (format!(", {c}"), ", NEW.price".to_owned()),
        None => (String::new(), String::new()),
    };
    let cast = |e: &str, t: &str| format!("({e})::{t}");
    let notes = if platform.link_notes { ", notes" } else { "" };
    let notes_value = if platform.link_notes {
        ", NEW.notes"
    } else {
        ""
    };
    let notes_set = if platform.link_notes {
        ", notes = excluded.notes"
    } else {
        ""
    };
    let notes_mirror = if platform.link_notes {
        "notes = NEW.notes::text,"
    } else {
        ""
    };
    let dur = &platform.duration;
    let order_t = &platform.order_type;
    let user_t = &platform.user_type;
    let expert_t = &platform.expert_type;
    let user_cast = cast("NEW.user_id", user_t);
    let expert_cast = cast("NEW.expert_id", expert_t);
    let order_cast = cast("NEW.order_id", order_t);
    let time_value = time_out("NEW.booking_time");
    let new_price = price("NEW");
    let new_state = state("NEW");
    let old_state = state("OLD");
    let b_price = price("b");
    let b_status = status("b");
    let b_state = state("b");
    format!(
        r#"
-- Marks a write that is one side's echo of the other, for this transaction.
CREATE OR REPLACE FUNCTION meetpool.syncing() RETURNS boolean
LANGUAGE sql STABLE AS $$ SELECT coalesce(current_setting('meetpool.sync', true), '') = 'on' $$;

-- A platform booking that meetpool does not hold yet: mirrored now, or
-- noted as a problem (the platform's statement goes on either way).
CREATE OR REPLACE FUNCTION meetpool.mirror_platform_booking(booking uuid) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = meetpool, pg_catalog AS $$
DECLARE
    s text;
BEGIN
    SELECT {b_state} INTO s FROM {p}.bookings b WHERE b.id = booking;
    BEGIN
        INSERT INTO meetpool.bookings (id, order_id, user_id, expert_id, session_type_id,
            booking_date, booking_time, price, payment_status, status)
        SELECT b.id, coalesce(b.order_id::text, b.id::text), coalesce(b.user_id::text, ''),
            coalesce(b.expert_id::text, ''), t.id, b.booking_date,
            meetpool.adopt_time(b.booking_time::text), {b_price},
            CASE WHEN s = 'paid' THEN 'pending' ELSE s END, coalesce({b_status}, 'pending')
        FROM {p}.bookings b
        JOIN meetpool.session_types t ON t.id = coalesce(b.session_type_id, {default_type})
        WHERE b.id = booking AND meetpool.adopt_time(b.booking_time::text) IS NOT NULL;
        IF NOT FOUND THEN
            INSERT INTO meetpool.adoption_problems (booking_id, problem) VALUES (booking,
                'not mirrored: booking_time does not read as HH:MM, or the session type is unknown');
            RETURN;
        END IF;
    EXCEPTION WHEN unique_violation OR datetime_field_overflow OR foreign_key_violation THEN
        INSERT INTO meetpool.adoption_problems (booking_id, problem)
        VALUES (booking, 'not mirrored: ' || SQLERRM);
        RETURN;
    END;
    IF s = 'paid' THEN
        INSERT INTO meetpool.platform_changes (kind, booking_id, state) VALUES ('payment', booking, 'paid');
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION meetpool.from_platform_booking() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = meetpool, pg_catalog AS $$
BEGIN
    IF meetpool.syncing() THEN RETURN NULL; END IF;
    PERFORM set_config('meetpool.sync', 'on', true);
    IF TG_OP = 'DELETE' THEN
        DELETE FROM meetpool.bookings WHERE id = OLD.id;
        INSERT INTO meetpool.platform_changes (kind) VALUES ('backfill');
    ELSIF NOT EXISTS (SELECT 1 FROM meetpool.bookings WHERE id = NEW.id) THEN
        PERFORM meetpool.mirror_platform_booking(NEW.id);
    ELSE
        BEGIN
            UPDATE meetpool.bookings SET order_id = coalesce(NEW.order_id::text, NEW.id::text),
                user_id = coalesce(NEW.user_id::text, ''), expert_id = coalesce(NEW.expert_id::text, ''),
                price = {new_price}
            WHERE id = NEW.id AND (order_id, user_id, expert_id, price) IS DISTINCT FROM
                (coalesce(NEW.order_id::text, NEW.id::text), coalesce(NEW.user_id::text, ''),
                 coalesce(NEW.expert_id::text, ''), {new_price});
        EXCEPTION WHEN unique_violation THEN
            INSERT INTO meetpool.adoption_problems (booking_id, problem)
            VALUES (NEW.id, 'order id not mirrored: ' || SQLERRM);
        END;
        IF (NEW.booking_date, NEW.booking_time::text, NEW.session_type_id)
           IS DISTINCT FROM (OLD.booking_date, OLD.booking_time::text, OLD.session_type_id) THEN
            INSERT INTO meetpool.platform_changes (kind, booking_id, booking_date, booking_time, session_type_id)
            VALUES ('schedule', NEW.id, NEW.booking_date, NEW.booking_time::text,
                    coalesce(NEW.session_type_id, {default_type}));
        END IF;
        IF {new_state} IS DISTINCT FROM {old_state} THEN
            INSERT INTO meetpool.platform_changes (kind, booking_id, state)
            VALUES ('payment', NEW.id, {new_state});
        END IF;
    END IF;
    PERFORM set_config('meetpool.sync', '', true);
    PERFORM pg_notify('meetpool_platform', '');
    RETURN NULL;
END
$$;

-- meetpool alone writes the link columns: the platform's writes to them
-- keep what meetpool wrote.
CREATE OR REPLACE FUNCTION meetpool.keep_platform_link() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = meetpool, pg_catalog AS $$
BEGIN
    IF meetpool.syncing() THEN RETURN NEW; END IF;
    IF TG_OP = 'INSERT' THEN
        NEW.meeting_link_id := NULL; {url_clear}
    ELSE
        NEW.meeting_link_id := OLD.meeting_link_id; {url_keep}
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION meetpool.to_platform_booking() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = meetpool, pg_catalog AS $$
DECLARE
    url text;
BEGIN
    IF meetpool.syncing() THEN RETURN NULL; END IF;
    SELECT meeting_link INTO url FROM meetpool.meeting_links_pool WHERE id = NEW.meeting_link_id;
    PERFORM set_config('meetpool.sync', 'on', true);
    IF TG_OP = 'INSERT' THEN
        INSERT INTO {p}.bookings (id, order_id, user_id, expert_id, session_type_id, booking_date,
            booking_time{price_insert}, payment_status{status_insert}, meeting_link_id{url_insert})
        VALUES (NEW.id, {order_cast}, {user_cast}, {expert_cast},
            NULLIF(NEW.session_type_id, {default_type}), NEW.booking_date, {time_value}{price_value},
            meetpool.platform_payment_status(NEW.payment_status){status_value}, NEW.meeting_link_id{url_value})
        ON CONFLICT (id) DO NOTHING;
    ELSE
        UPDATE {p}.bookings SET
            payment_status = CASE WHEN NEW.payment_status IS DISTINCT FROM OLD.payment_status
                THEN meetpool.platform_payment_status(NEW.payment_status) ELSE payment_status END,
            {status_set}
            {paid_at}
            {url_set}
            meeting_link_id = NEW.meeting_link_id,
            booking_date = CASE WHEN NEW.booking_date IS DISTINCT FROM OLD.booking_date
                THEN NEW.booking_date ELSE booking_date END,
            booking_time = CASE WHEN NEW.booking_time IS DISTINCT FROM OLD.booking_time
                THEN {time_value} ELSE booking_time END
        WHERE id = NEW.id;
    END IF;
    PERFORM set_config('meetpool.sync', '', true);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION meetpool.from_platform_link() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = meetpool, pg_catalog AS $$
BEGIN
    IF meetpool.syncing() THEN RETURN NULL; END IF;
    PERFORM set_config('meetpool.sync', 'on', true);
    IF TG_OP = 'INSERT' THEN
        INSERT INTO meetpool.meeting_links_pool (id, meeting_link, is_available{notes})
        VALUES (NEW.id, NEW.meeting_link, coalesce(NEW.is_available, false){notes_value});
        INSERT INTO meetpool.platform_changes (kind) VALUES ('backfill');
    ELSIF TG_OP = 'DELETE' THEN
        DELETE FROM meetpool.meeting_links_pool WHERE id = OLD.id;
    ELSE
        UPDATE meetpool.meeting_links_pool SET {notes_mirror} meeting_link = NEW.meeting_link
        WHERE id = NEW.id;
        IF NEW.is_available IS DISTINCT FROM OLD.is_available THEN
            INSERT INTO meetpool.platform_changes (kind, link_id, enabled)
            VALUES ('link', NEW.id, coalesce(NEW.is_available, false));
        END IF;
    END IF;
    PERFORM set_config('meetpool.sync', '', true);
    PERFORM pg_notify('meetpool_platform', '');
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION meetpool.to_platform_link() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = meetpool, pg_catalog AS $$
BEGIN
    IF meetpool.syncing() THEN RETURN NULL; END IF;
    PERFORM set_config('meetpool.sync', 'on', true);
    INSERT INTO {p}.meeting_links_pool (id, meeting_link, is_available{notes})
    VALUES (NEW.id, NEW.meeting_link, NEW.is_available{notes_value})
    ON CONFLICT (id) DO UPDATE SET meeting_link = excluded.meeting_link,
        is_available = excluded.is_available{notes_set};
    PERFORM set_config('meetpool.sync', '', true);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION meetpool.from_platform_session_type() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = meetpool, pg_catalog AS $$
BEGIN
    IF meetpool.syncing() THEN RETURN NULL; END IF;
    PERFORM set_config('meetpool.sync', 'on', true);
    IF NEW.{dur} BETWEEN 1 AND 1440 THEN
        INSERT INTO meetpool.session_types (id, name, duration) VALUES (NEW.id, coalesce(NEW.name::text, ''), NEW.{dur})
        ON CONFLICT (id) DO UPDATE SET name = excluded.name, duration = excluded.duration;
    END IF;
    PERFORM set_config('meetpool.sync', '', true);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION meetpool.to_platform_session_type() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = meetpool, pg_catalog AS $$
BEGIN
    IF meetpool.syncing() THEN RETURN NULL; END IF;
    PERFORM set_config('meetpool.sync', 'on', true);
    INSERT INTO {p}.session_types (id, name, {dur}) VALUES (NEW.id, NEW.name, NEW.duration)
    ON CONFLICT (id) DO UPDATE SET name = excluded.name, {dur} = excluded.{dur};
    PERFORM set_config('meetpool.sync', '', true);
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER meetpool_keep_link BEFORE INSERT OR UPDATE ON {p}.bookings
    FOR EACH ROW EXECUTE FUNCTION meetpool.keep_platform_link();
CREATE OR REPLACE TRIGGER meetpool_sync AFTER INSERT OR UPDATE OR DELETE ON {p}.bookings
    FOR EACH ROW EXECUTE FUNCTION meetpool.from_platform_booking();
CREATE OR REPLACE TRIGGER meetpool_sync AFTER INSERT OR UPDATE OR DELETE ON {p}.meeting_links_pool
    FOR EACH ROW EXECUTE FUNCTION meetpool.from_platform_link();
CREATE OR REPLACE TRIGGER meetpool_sync AFTER INSERT OR UPDATE ON {p}.session_types
    FOR EACH ROW EXECUTE FUNCTION meetpool.from_platform_session_type();
CREATE OR REPLACE TRIGGER meetpool_to_platform AFTER INSERT OR UPDATE ON meetpool.bookings
    FOR EACH ROW EXECUTE FUNCTION meetpool.to_platform_booking();
CREATE OR REPLACE TRIGGER meetpool_to_platform AFTER INSERT OR UPDATE ON meetpool.meeting_links_pool
    FOR EACH ROW EXECUTE FUNCTION meetpool.to_platform_link();
CREATE OR REPLACE TRIGGER meetpool_to_platform AFTER INSERT OR UPDATE ON meetpool.session_types
    FOR EACH ROW EXECUTE FUNCTION meetpool.to_platform_session_type();
"#
    )
}

/// meetpool's state names, for `--payment-status-values` and
/// `--status-values`: `state=value,...`.
pub fn parse_values(flag: &str, raw: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((state, value)) = pair.split_once('=') else {
            return Err(StoreError::Config(format!(
                "{flag}: {pair} is not state=value (states: {})",
                state_names()
            )));
        };
        out.insert(state.trim().to_owned(), value.trim().to_owned());
    }
    Ok(out)
}
