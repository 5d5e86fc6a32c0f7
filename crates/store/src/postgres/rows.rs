//! Rows read back into the domain's types: bookings, links, session
//! types, and the links with their busy windows that assignment weighs.
use std::collections::HashMap;

use jiff::Timestamp;
use jiff_sqlx::ToSqlx;
use meetpool_domain::{Booking, BookingId, LinkCandidate, LinkId, SessionTypeId, Window};
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

use crate::model::push_link_row;
use crate::{Link, Result, SessionType, StoreError};

/// The 0-based index of the input a row answers: its `WITH ORDINALITY`
/// number (1-based) in `col`, checked against the `len` inputs.
pub(super) fn ordinal(r: &PgRow, col: &str, len: usize) -> Result<usize> {
    let n: i64 = r.try_get(col)?;
    usize::try_from(n - 1)
        .ok()
        .filter(|&i| i < len)
        .ok_or_else(|| StoreError::corrupt(format!("{col} number {n} out of range")))
}

pub(super) fn ts(r: &PgRow, col: &str) -> Result<Timestamp> {
    Ok(r.try_get::<jiff_sqlx::Timestamp, _>(col)?.to_jiff())
}

pub(super) fn booking_row(r: &PgRow) -> Result<Booking> {
    let status: String = r.try_get("payment_status")?;
    Ok(Booking {
        id: BookingId(r.try_get("id")?),
        order_id: r.try_get("order_id")?,
        user_id: r.try_get("user_id")?,
        expert_id: r.try_get("expert_id")?,
        session_type_id: SessionTypeId(r.try_get("session_type_id")?),
        booking_date: r.try_get::<jiff_sqlx::Date, _>("booking_date")?.to_jiff(),
        booking_time: r.try_get::<jiff_sqlx::Time, _>("booking_time")?.to_jiff(),
        price: r.try_get("price")?,
        payment_status: status.parse().map_err(StoreError::corrupt)?,
        status: r.try_get("status")?,
        meeting_link_id: r.try_get::<Option<Uuid>, _>("meeting_link_id")?.map(LinkId),
        meeting_link: r.try_get("meeting_link")?,
        window: Window::new(ts(r, "starts_at")?, ts(r, "ends_at")?),
        join_token: r.try_get("join_token")?,
        payment_transaction_id: r.try_get("payment_transaction_id")?,
        reschedules: u32::try_from(r.try_get::<i32, _>("reschedules")?).unwrap_or_default(),
        hold_expires_at: r
            .try_get::<Option<jiff_sqlx::Timestamp>, _>("hold_expires_at")?
            .map(|t| t.to_jiff()),
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

pub(super) fn link_row(r: &PgRow) -> Result<Link> {
    Ok(Link {
        id: LinkId(r.try_get("id")?),
        meeting_link: r.try_get("meeting_link")?,
        notes: r.try_get("notes")?,
        is_available: r.try_get("is_available")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

pub(super) fn session_type_row(r: &PgRow) -> Result<SessionType> {
    Ok(SessionType {
        id: SessionTypeId(r.try_get("id")?),
        name: r.try_get("name")?,
        duration: r.try_get("duration")?,
        price: r.try_get("price")?,
        created_at: ts(r, "created_at")?,
    })
}

/// The rows of [`SESSIONS_DURING`] after the links' (and a duration's):
/// every enabled link in creation order with its sessions' busy windows,
/// and the duration if a row carried one.
pub(super) fn links_with_sessions(rows: &[PgRow]) -> Result<(Option<i32>, Vec<LinkCandidate>)> {
    let mut duration = None;
    let mut links: Vec<(i64, LinkCandidate)> = Vec::new();
    let mut sessions: Vec<(Uuid, Window)> = Vec::new();
    for r in rows {
        let Some(id) = r.try_get::<Option<Uuid>, _>("link_id")? else {
            duration = r.try_get("duration")?;
            continue;
        };
        match r.try_get::<Option<i64>, _>("seq")? {
            Some(seq) => links.push((
                seq,
                LinkCandidate {
                    id: LinkId(id),
                    busy: Vec::new(),
                },
            )),
            None => sessions.push((id, Window::new(ts(r, "starts_at")?, ts(r, "busy_end")?))),
        }
    }
    links.sort_by_key(|l| l.0);
    sessions.sort_by_key(|s| s.1.start);
    let at: HashMap<Uuid, usize> = links
        .iter()
        .enumerate()
        .map(|(i, l)| (l.1.id.0, i))
        .collect();
    for (link, window) in sessions {
        // A session on a disabled link is no one's candidate.
        if let Some(&i) = at.get(&link) {
            links[i].1.busy.push(window);
        }
    }
    Ok((duration, links.into_iter().map(|l| l.1).collect()))
}

/// [`CANDIDATES_SQL`]'s parameters for `wants`.
pub(super) fn candidate_params(
    wants: &[(Window, BookingId)],
) -> (Vec<Uuid>, Vec<jiff_sqlx::Timestamp>) {
    (
        wants.iter().map(|(_, id)| id.0).collect(),
        wants.iter().map(|(w, _)| w.start.to_sqlx()).collect(),
    )
}

/// [`CANDIDATES_SQL`]'s rows, for each of `n` wants in order.
pub(super) fn candidates_from(rows: &[PgRow], n: usize) -> Result<Vec<Vec<LinkCandidate>>> {
    let mut out: Vec<Vec<LinkCandidate>> = vec![Vec::new(); n];
    for r in rows {
        add_row(&mut out[ordinal(r, "want", n)?], r)?;
    }
    Ok(out)
}

/// A row of (`id`, `busy_start`, `busy_end`), rows ordered by link: the
/// link once, with each busy window its rows name.
pub(super) fn add_row(links: &mut Vec<LinkCandidate>, r: &PgRow) -> Result<()> {
    let id = LinkId(r.try_get("id")?);
    let start: Option<jiff_sqlx::Timestamp> = r.try_get("busy_start")?;
    let end: Option<jiff_sqlx::Timestamp> = r.try_get("busy_end")?;
    let busy = start
        .zip(end)
        .map(|(s, e)| Window::new(s.to_jiff(), e.to_jiff()));
    push_link_row(links, id, busy);
    Ok(())
}
