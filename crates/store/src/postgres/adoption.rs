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

use meetpool_domain::payment::ALL_STATUSES;
use serde::Serialize;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::{DbSettings, Result, StoreError};

mod copy;
mod inspect;
mod links;
mod sql;

use copy::{
    copy_bookings, copy_types_and_links, grant, install_schema, note_problems, stage_bookings,
};
use inspect::{inspect, vocabulary};
use links::{place, resolve_overlaps, write_back_links};
use sql::sync_sql;

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
    /// Change settings the database already holds (and move its coming
    /// sessions with them); without it, different settings are refused.
    pub change_settings: bool,
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
    if !report.refused.is_empty() {
        return Ok(report);
    }
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
    note_problems(&mut tx, p).await?;
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

fn state_names() -> String {
    ALL_STATUSES
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
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

/// The settings an adopted database holds (`None` before adoption), read
/// as the tables' owner: what adopt keeps when not told otherwise.
pub async fn stored_settings(url: &str) -> Result<Option<DbSettings>> {
    let mut conn = PgConnection::connect(url).await?;
    let row: Option<(String, i32)> = sqlx::query_as(
        "SELECT timezone, buffer_minutes FROM meetpool.meetpool_settings \
         WHERE to_regclass('meetpool.meetpool_settings') IS NOT NULL AND id = 1 AND chosen",
    )
    .fetch_optional(&mut conn)
    .await
    .or_else(|e| match StoreError::from(e) {
        StoreError::Unavailable(sqlx::Error::Database(db))
            if db.code().as_deref() == Some("42P01") || db.code().as_deref() == Some("3F000") =>
        {
            Ok(None)
        }
        e => Err(e),
    })?;
    row.map(|(timezone, buffer)| {
        Ok(DbSettings {
            timezone,
            buffer_minutes: u32::try_from(buffer).map_err(StoreError::corrupt)?,
        })
    })
    .transpose()
}
