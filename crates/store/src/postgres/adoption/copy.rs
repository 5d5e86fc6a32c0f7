//! What adoption does, step by step, inside its one transaction: meetpool's
//! schema, the copy of the platform's rows and the service's role (the
//! links are placed in [`links`](super::links)).
use std::fmt::Write as _;

use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::inspect::platform_has;
use super::sql::helpers_sql;
use super::{lit, AdoptOptions, AdoptReport, NotAdopted, Platform, DEFAULT_TYPE, SCHEMA};
use crate::postgres::MIGRATOR;
use crate::Result;

pub(super) async fn install_schema(
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
    // The settings belong to the install: adopting again keeps them unless
    // told to change them, and then moves the coming sessions with them.
    let stored: Option<(String, i32)> = sqlx::query_as(
        "SELECT timezone, buffer_minutes FROM meetpool_settings WHERE id = 1 AND chosen",
    )
    .fetch_optional(&mut *tx)
    .await?;
    let wanted = (
        options.settings.timezone.clone(),
        i32::try_from(options.settings.buffer_minutes).unwrap_or(0),
    );
    match stored {
        Some(stored) if stored == wanted => {}
        Some((zone, buffer)) if !options.change_settings => {
            let coming: i64 =
                sqlx::query_scalar("SELECT count(*) FROM bookings WHERE ends_at > now()")
                    .fetch_one(&mut *tx)
                    .await?;
            report.refused.push(format!(
                "meetpool's settings here are time zone {zone} and buffer {buffer} minutes, not {} \
                 and {}: {coming} coming bookings would move. Run adopt without \
                 MEETPOOL_TIMEZONE/MEETPOOL_BUFFER_MINUTES to keep them, or with --change-settings \
                 to change them for every replica",
                wanted.0, wanted.1
            ));
            return Ok(());
        }
        stored => {
            sqlx::query(
                "UPDATE meetpool_settings SET timezone = $1, buffer_minutes = $2, chosen = true \
                 WHERE id = 1",
            )
            .bind(&wanted.0)
            .bind(wanted.1)
            .execute(&mut *tx)
            .await?;
            if stored.is_some() {
                let moved = sqlx::query(
                    "UPDATE bookings SET \
                       starts_at = meetpool_local_instant(booking_date + booking_time, $1), \
                       ends_at = meetpool_local_instant(booking_date + booking_time, $1) \
                         + (ends_at - starts_at), \
                       busy = 'empty' \
                     WHERE ends_at > now()",
                )
                .bind(&wanted.0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                report.changes.push(format!(
                    "recompute the times of {moved} coming bookings in the new settings"
                ));
            }
            report.changes.push(format!(
                "set meetpool's settings: time zone {}, buffer {} minutes",
                options.settings.timezone, options.settings.buffer_minutes
            ));
        }
    }
    sqlx::raw_sql(&helpers_sql(platform, report))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

pub(super) async fn copy_types_and_links(
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
    // The pool holds no enabled link a participant must not be sent to
    // (migration 0017): the platform's are reported, never changed.
    let unsafe_links: Vec<(String, String)> = sqlx::query_as(&format!(
        "SELECT id::text, meeting_link::text FROM {p}.meeting_links_pool \
         WHERE coalesce(is_available, false) \
           AND NOT coalesce(meetpool_safe_link(meeting_link::text), false) ORDER BY 1",
    ))
    .fetch_all(&mut *tx)
    .await?;
    for (id, link) in unsafe_links {
        report.refused.push(format!(
            "the enabled link {id} {link:?} is not an https:// URL naming a host, where no \
             participant may be sent. Correct it or disable it \
             (UPDATE {p}.meeting_links_pool SET is_available = false WHERE id = '{id}')"
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

/// Reads the platform's bookings that meetpool does not hold yet into a
/// temporary table, with meetpool's reading of each.
pub(super) async fn stage_bookings(
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

pub(super) async fn copy_bookings(
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
    // The paid-session counts by window (migration 0010) come from a
    // trigger disabled above: the copied rows are counted here.
    sqlx::raw_sql(
        "INSERT INTO meetpool.paid_window_deltas (starts_at, ends_at, sessions, unlinked) \
         SELECT starts_at, ends_at, count(*), count(*) FILTER (WHERE link IS NULL) \
         FROM meetpool_adopt WHERE ends_at IS NOT NULL AND state = 'paid' \
         GROUP BY starts_at, ends_at",
    )
    .execute(&mut *tx)
    .await?;
    // So does the longest busy range (migration 0012).
    sqlx::raw_sql(
        "UPDATE meetpool.meetpool_settings SET longest_busy = greatest(longest_busy, \
           (SELECT max(upper(busy) - lower(busy)) FROM meetpool.bookings WHERE busy IS NOT NULL)) \
         WHERE id = 1",
    )
    .execute(&mut *tx)
    .await?;
    for statement in rebuild {
        progress(&format!("building: {statement}"));
        sqlx::raw_sql(&statement).execute(&mut *tx).await?;
    }
    sqlx::raw_sql("ALTER TABLE meetpool.bookings ENABLE TRIGGER USER")
        .execute(&mut *tx)
        .await?;
    Ok(copied)
}

pub(super) async fn grant(tx: &mut PgConnection, options: &AdoptOptions) -> Result<()> {
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

/// Notes the platform's rows left out as open problems (the service
/// alerts each once and lists them until the platform fixes the row), and
/// forgets those of rows now adopted or gone.
pub(super) async fn note_problems(tx: &mut PgConnection, p: &str) -> Result<()> {
    sqlx::raw_sql(&format!(
        "INSERT INTO meetpool.platform_problems (booking_id, order_id, reason, paid) \
         SELECT id, platform_order, CASE WHEN booking_time IS NULL THEN 'unreadable_time' \
           WHEN duration IS NULL THEN 'unknown_duration' ELSE 'nonexistent_time' END, state = 'paid' \
         FROM meetpool_adopt WHERE ends_at IS NULL \
         ON CONFLICT (booking_id) DO UPDATE SET order_id = excluded.order_id, \
           reason = excluded.reason, paid = excluded.paid, \
           alerted = platform_problems.alerted AND platform_problems.reason = excluded.reason; \
         DELETE FROM meetpool.platform_problems r \
         WHERE EXISTS (SELECT 1 FROM meetpool.bookings m WHERE m.id = r.booking_id) \
            OR NOT EXISTS (SELECT 1 FROM {p}.bookings b WHERE b.id = r.booking_id)"
    ))
    .execute(&mut *tx)
    .await?;
    Ok(())
}
