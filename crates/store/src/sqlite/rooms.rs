//! The provider actions' queue on SQLite: one writer, so a claim is one
//! UPDATE that leases the rows it takes.
use jiff::{SignedDuration, Timestamp};
use meetpool_domain::{BookingId, LinkId};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::rows::{ts_in, ts_out, uuid_in};
use super::SqliteStore;
use crate::{
    ActionKind, ActionResult, EndedSession, NewAction, ProviderAction, ProviderActions, Result,
    StoreError,
};

const COLUMNS: &str = "id, kind, provider, link_id, booking_id, due_at, attempts, last_error, \
    outcome, detail, done_at, created_at";

fn ms(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

fn action_row(r: &SqliteRow) -> Result<ProviderAction> {
    let kind: String = r.try_get("kind")?;
    let link: Option<String> = r.try_get("link_id")?;
    let booking: Option<String> = r.try_get("booking_id")?;
    let detail: String = r.try_get("detail")?;
    let done: Option<String> = r.try_get("done_at")?;
    Ok(ProviderAction {
        id: r.try_get("id")?,
        kind: kind.parse().map_err(StoreError::corrupt)?,
        provider: r.try_get("provider")?,
        link_id: link.as_deref().map(uuid_in).transpose()?,
        booking_id: booking.as_deref().map(uuid_in).transpose()?,
        due_at: ts_in(r.try_get("due_at")?)?,
        attempts: u32::try_from(r.try_get::<i64, _>("attempts")?).map_err(StoreError::corrupt)?,
        last_error: r.try_get("last_error")?,
        outcome: r.try_get("outcome")?,
        detail: serde_json::from_str(&detail).map_err(StoreError::corrupt)?,
        done_at: done.as_deref().map(ts_in).transpose()?,
        created_at: ts_in(r.try_get("created_at")?)?,
    })
}

#[async_trait::async_trait]
impl ProviderActions for SqliteStore {
    async fn ended_sessions(
        &self,
        from: Timestamp,
        to: Timestamp,
        links: &[&str],
        limit: u32,
    ) -> Result<Vec<EndedSession>> {
        let (Some(first), second) = (links.first(), links.get(1)) else {
            return Ok(Vec::new());
        };
        // Sessions last at most a day: those ending in [from, to) start
        // after `from` less a day, which the link's index finds.
        let rows = sqlx::query(
            "SELECT b.id, b.meeting_link_id, l.meeting_link, b.starts_at, b.ends_at \
             FROM meeting_links_pool l JOIN bookings b ON b.meeting_link_id = l.id \
             WHERE b.starts_at >= ?1 AND b.starts_at < ?2 AND b.ends_at >= ?3 AND b.ends_at < ?2 \
               AND b.payment_status = 'paid' \
               AND (l.meeting_link LIKE ?5 OR l.meeting_link LIKE ?6) \
               AND NOT EXISTS (SELECT 1 FROM provider_actions a \
                 WHERE a.booking_id = b.id AND a.kind = 'end') \
             ORDER BY b.ends_at LIMIT ?4",
        )
        .bind(ts_out(from - SignedDuration::from_hours(25)))
        .bind(ts_out(to))
        .bind(ts_out(from))
        .bind(i64::from(limit))
        .bind(*first)
        .bind(*second.unwrap_or(first))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(EndedSession {
                    booking: uuid_in(r.try_get("id")?)?,
                    link: uuid_in(r.try_get("meeting_link_id")?)?,
                    meeting_link: r.try_get("meeting_link")?,
                    starts_at: ts_in(r.try_get("starts_at")?)?,
                    ends_at: ts_in(r.try_get("ends_at")?)?,
                })
            })
            .collect()
    }

    async fn enqueue(&self, action: &NewAction) -> Result<bool> {
        let _guard = self.write_lock.lock().await;
        let done = sqlx::query(
            "INSERT OR IGNORE INTO provider_actions \
               (kind, provider, link_id, booking_id, dedup_key, due_at) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE NOT (?1 = 'end' AND EXISTS ( \
               SELECT 1 FROM provider_actions WHERE booking_id = ?4 AND kind = 'end'))",
        )
        .bind(action.kind.as_str())
        .bind(&action.provider)
        .bind(action.link.map(|l| l.to_string()))
        .bind(action.booking.map(|b| b.to_string()))
        .bind(&action.dedup_key)
        .bind(ms(action.due_at))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn claim(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
        kind: Option<ActionKind>,
        provider: Option<&str>,
    ) -> Result<Vec<ProviderAction>> {
        let _guard = self.write_lock.lock().await;
        let rows = sqlx::query(&format!(
            "UPDATE provider_actions SET attempts = attempts + 1, leased_until = ?2 \
             WHERE id IN (SELECT id FROM provider_actions \
               WHERE done_at IS NULL AND due_at <= ?1 \
                 AND (leased_until IS NULL OR leased_until <= ?1) \
                 AND (?4 IS NULL OR kind = ?4) AND (?5 IS NULL OR provider = ?5) \
               ORDER BY due_at, id LIMIT ?3) \
             RETURNING {COLUMNS}"
        ))
        .bind(ms(now))
        .bind(ms(lease_until))
        .bind(i64::from(limit))
        .bind(kind.map(ActionKind::as_str))
        .bind(provider)
        .fetch_all(&self.pool)
        .await?;
        let mut actions = rows.iter().map(action_row).collect::<Result<Vec<_>>>()?;
        actions.sort_by_key(|a| (a.due_at, a.id));
        Ok(actions)
    }

    async fn record(&self, id: i64, attempts: u32, result: &ActionResult) -> Result<()> {
        let (outcome, link, error, next, detail, done) = match result {
            ActionResult::Done { outcome, link, at } => (
                Some(outcome.as_str()),
                link.map(|l| l.to_string()),
                None,
                None,
                None,
                Some(ms(*at)),
            ),
            ActionResult::RetryAt {
                error,
                next,
                detail,
            } => (
                None,
                None,
                Some(error.as_str()),
                Some(ms(*next)),
                Some(detail.to_string()),
                None,
            ),
            ActionResult::GaveUp { error, at } => (
                Some("failed"),
                None,
                Some(error.as_str()),
                None,
                None,
                Some(ms(*at)),
            ),
        };
        let _guard = self.write_lock.lock().await;
        sqlx::query(
            "UPDATE provider_actions SET outcome = ?3, link_id = COALESCE(?4, link_id), \
               last_error = COALESCE(?5, last_error), due_at = COALESCE(?6, due_at), \
               detail = COALESCE(?7, detail), done_at = ?8, leased_until = NULL \
             WHERE id = ?1 AND attempts = ?2 AND done_at IS NULL",
        )
        .bind(id)
        .bind(i64::from(attempts))
        .bind(outcome)
        .bind(link)
        .bind(error)
        .bind(next)
        .bind(detail)
        .bind(done)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn actions(
        &self,
        link: Option<LinkId>,
        booking: Option<BookingId>,
        limit: u32,
    ) -> Result<Vec<ProviderAction>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM provider_actions \
             WHERE (?1 IS NULL OR link_id = ?1) AND (?2 IS NULL OR booking_id = ?2) \
             ORDER BY id DESC LIMIT ?3"
        ))
        .bind(link.map(|l| l.to_string()))
        .bind(booking.map(|b| b.to_string()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(action_row).collect()
    }

    async fn rooms_created(&self) -> Result<u32> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM provider_actions WHERE kind = 'create' \
               AND (done_at IS NULL OR outcome = 'created')",
        )
        .fetch_one(&self.pool)
        .await?;
        u32::try_from(n).map_err(StoreError::corrupt)
    }

    async fn next_session_began(
        &self,
        link: LinkId,
        booking: BookingId,
        from: Timestamp,
        now: Timestamp,
    ) -> Result<bool> {
        let began: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM bookings WHERE meeting_link_id = ?1 AND id <> ?2 \
               AND starts_at >= ?3 AND starts_at <= ?4 LIMIT 1",
        )
        .bind(link.to_string())
        .bind(booking.to_string())
        .bind(ts_out(from))
        .bind(ts_out(now))
        .fetch_optional(&self.pool)
        .await?;
        Ok(began.is_some())
    }

    async fn last_checks(&self) -> Result<Vec<(LinkId, Timestamp, String)>> {
        let rows = sqlx::query(
            "SELECT a.link_id, a.done_at, a.outcome FROM provider_actions a \
             WHERE a.kind = 'check' AND a.done_at IS NOT NULL AND a.id = ( \
               SELECT max(p.id) FROM provider_actions p WHERE p.link_id = a.link_id \
                 AND p.kind = 'check' AND p.done_at IS NOT NULL)",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    uuid_in(r.try_get("link_id")?)?,
                    ts_in(r.try_get("done_at")?)?,
                    r.try_get::<Option<String>, _>("outcome")?
                        .unwrap_or_default(),
                ))
            })
            .collect()
    }
}
