//! Rows read back into the domain's types. SQLite keeps instants as
//! `YYYY-MM-DD HH:MM:SS` text in UTC and ids as text.
use std::str::FromStr;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use meetpool_domain::{Booking, LinkCandidate, LinkId, Window};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use crate::model::push_link_row;
use crate::{Link, Result, SessionType, StoreError};

pub(crate) fn ts_out(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

pub(crate) fn ts_in(s: &str) -> Result<Timestamp> {
    let dt =
        DateTime::from_str(s).map_err(|e| StoreError::corrupt(format!("instant {s:?}: {e}")))?;
    dt.to_zoned(TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(|e| StoreError::corrupt(format!("instant {s:?}: {e}")))
}

pub(crate) fn uuid_in<T: FromStr>(s: &str) -> Result<T> {
    s.parse()
        .map_err(|_| StoreError::corrupt(format!("id {s:?}")))
}

pub(super) fn booking_row(r: &SqliteRow) -> Result<Booking> {
    let link: Option<String> = r.try_get("meeting_link_id")?;
    let date: String = r.try_get("booking_date")?;
    let time: String = r.try_get("booking_time")?;
    let status: String = r.try_get("payment_status")?;
    Ok(Booking {
        id: uuid_in(r.try_get::<&str, _>("id")?)?,
        order_id: r.try_get("order_id")?,
        user_id: r.try_get("user_id")?,
        expert_id: r.try_get("expert_id")?,
        session_type_id: uuid_in(r.try_get::<&str, _>("session_type_id")?)?,
        booking_date: Date::from_str(&date)
            .map_err(|_| StoreError::corrupt(format!("date {date:?}")))?,
        booking_time: Time::from_str(&time)
            .map_err(|_| StoreError::corrupt(format!("time {time:?}")))?,
        price: r.try_get("price")?,
        payment_status: status.parse().map_err(StoreError::corrupt)?,
        status: r.try_get("status")?,
        meeting_link_id: link.as_deref().map(uuid_in).transpose()?,
        meeting_link: r.try_get("meeting_link")?,
        window: Window::new(
            ts_in(r.try_get::<&str, _>("starts_at")?)?,
            ts_in(r.try_get::<&str, _>("ends_at")?)?,
        ),
        join_token: r.try_get("join_token")?,
        payment_transaction_id: r.try_get("payment_transaction_id")?,
        reschedules: u32::try_from(r.try_get::<i64, _>("reschedules")?).unwrap_or_default(),
        hold_expires_at: r
            .try_get::<Option<String>, _>("hold_expires_at")?
            .map(|t| ts_in(&t))
            .transpose()?,
        created_at: ts_in(r.try_get::<&str, _>("created_at")?)?,
        updated_at: ts_in(r.try_get::<&str, _>("updated_at")?)?,
    })
}

pub(super) fn link_row(r: &SqliteRow) -> Result<Link> {
    Ok(Link {
        id: uuid_in(r.try_get::<&str, _>("id")?)?,
        meeting_link: r.try_get("meeting_link")?,
        notes: r.try_get("notes")?,
        is_available: r.try_get("is_available")?,
        created_at: ts_in(r.try_get::<&str, _>("created_at")?)?,
        updated_at: ts_in(r.try_get::<&str, _>("updated_at")?)?,
    })
}

pub(super) fn session_type_row(r: &SqliteRow) -> Result<SessionType> {
    Ok(SessionType {
        id: uuid_in(r.try_get::<&str, _>("id")?)?,
        name: r.try_get("name")?,
        duration: r.try_get("duration")?,
        price: r.try_get("price")?,
        created_at: ts_in(r.try_get::<&str, _>("created_at")?)?,
    })
}

/// Rows of (`id`, `starts_at`, `busy_end`), ordered by link: each link once,
/// with the busy windows its rows name.
pub(super) fn links_from(rows: &[SqliteRow]) -> Result<Vec<LinkCandidate>> {
    let mut out: Vec<LinkCandidate> = Vec::new();
    for r in rows {
        let id: LinkId = uuid_in(r.try_get::<&str, _>("id")?)?;
        let start: Option<String> = r.try_get("starts_at")?;
        let end: Option<String> = r.try_get("busy_end")?;
        let busy = match (start, end) {
            (Some(s), Some(e)) => Some(Window::new(ts_in(&s)?, ts_in(&e)?)),
            _ => None,
        };
        push_link_row(&mut out, id, busy);
    }
    Ok(out)
}
