//! What adoption finds: the platform's tables and columns, the values its
//! CHECK constraints allow, and what it should look at.
use std::collections::BTreeMap;

use meetpool_domain::payment::ALL_STATUSES;
use meetpool_domain::PaymentStatus;
use sqlx::{PgConnection, Row};

use super::{state_names, AdoptOptions, AdoptReport, Platform, Vocabulary, SCHEMA};
use crate::Result;

pub(super) async fn columns(
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
pub(super) async fn allowed_values(
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

pub(super) async fn inspect(
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
    let Some(duration) = duration else {
        return Ok(None);
    };
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
        duration: duration.to_owned(),
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
pub(super) async fn look_at(
    tx: &mut PgConnection,
    p: &str,
    report: &mut AdoptReport,
) -> Result<()> {
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
pub(super) fn vocabulary(platform: &Platform, options: &AdoptOptions, report: &mut AdoptReport) {
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

pub(super) async fn platform_has(
    tx: &mut PgConnection,
    schema: &str,
    table: &str,
    column: &str,
) -> Result<bool> {
    Ok(columns(tx, schema, table).await?.contains_key(column))
}
