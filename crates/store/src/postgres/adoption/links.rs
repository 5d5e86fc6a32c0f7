//! Links, once the platform's rows are copied: overlapping bookings on a
//! link resolved (the one assigned first keeps it), links placed for the
//! bookings left without one, and the platform's link columns written back.

use jiff::Timestamp;
use jiff_sqlx::ToSqlx;
use meetpool_domain::{choose_link, Policy, Window};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::{AdoptOptions, AdoptReport, Move, Platform, SCHEMA};
use crate::postgres::rows::candidates_from;
use crate::postgres::CANDIDATES_SQL;
use crate::{Result, StoreError};

/// A booking holding a link, in the overlap check.
pub(super) struct Held {
    id: Uuid,
    link: Uuid,
    busy: Window,
    /// Already meetpool's (an earlier adoption): it keeps its link.
    kept: bool,
}

/// The bookings that lose their link to an overlapping one assigned
/// before them, with the booking that keeps it.
pub(super) async fn resolve_overlaps(
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
                ts(r, "starts_at")?.ok_or_else(|| {
                    StoreError::corrupt("a booking on a link to adopt has no start")
                })?,
                ts(r, "busy_end")?.ok_or_else(|| {
                    StoreError::corrupt("a booking on a link to adopt has no end")
                })?,
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

/// Gives each booking that lost its link, and each paid one that had none
/// and has not ended, a free link by best fit, in the order they were
/// assigned (or paid); those for which none is free join the queue. A
/// session that has ended only loses its link.
pub(super) async fn place(
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
pub(super) async fn write_back_links(
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
