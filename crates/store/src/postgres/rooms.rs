//! The provider actions' queue on PostgreSQL, for any number of replicas:
//! a claim takes due rows with `FOR UPDATE SKIP LOCKED` and leases them, so
//! that two replicas never take one row, and a replica that dies mid-call
//! leaves its rows to the next claim once the lease runs out.
use jiff::{SignedDuration, Timestamp};
use jiff_sqlx::ToSqlx;
use meetpool_domain::{BookingId, LinkId};
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

use super::rows::ts;
use super::{PgStore, Statements};
use crate::{
    ActionKind, ActionResult, EndedSession, NewAction, ProviderAction, ProviderActions, Result,
    StoreError,
};

const COLUMNS: &str = "id, kind, provider, link_id, booking_id, due_at, attempts, last_error, \
    outcome, detail, done_at, created_at";

fn action_row(r: &PgRow) -> Result<ProviderAction> {
    let kind: String = r.try_get("kind")?;
    let done: Option<jiff_sqlx::Timestamp> = r.try_get("done_at")?;
    Ok(ProviderAction {
        id: r.try_get("id")?,
        kind: kind.parse().map_err(StoreError::corrupt)?,
        provider: r.try_get("provider")?,
        link_id: r.try_get::<Option<Uuid>, _>("link_id")?.map(LinkId),
        booking_id: r.try_get::<Option<Uuid>, _>("booking_id")?.map(BookingId),
        due_at: ts(r, "due_at")?,
        attempts: u32::try_from(r.try_get::<i32, _>("attempts")?).map_err(StoreError::corrupt)?,
        last_error: r.try_get("last_error")?,
        outcome: r.try_get("outcome")?,
        detail: r.try_get("detail")?,
        done_at: done.map(|t| t.to_jiff()),
        created_at: ts(r, "created_at")?,
    })
}

#[async_trait::async_trait]
impl ProviderActions for PgStore {
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
        let rows = self
            .query(
                "SELECT b.id, b.meeting_link_id, l.meeting_link, b.starts_at, b.ends_at \
             FROM meeting_links_pool l JOIN bookings b ON b.meeting_link_id = l.id \
             WHERE b.starts_at >= $1 AND b.starts_at < $2 AND b.ends_at >= $3 AND b.ends_at < $2 \
               AND b.payment_status = 'paid' \
               AND (l.meeting_link LIKE $5 OR l.meeting_link LIKE $6) \
               AND NOT EXISTS (SELECT 1 FROM provider_actions a \
                 WHERE a.booking_id = b.id AND a.kind = 'end') \
             ORDER BY b.ends_at LIMIT $4",
            )
            .bind((from - SignedDuration::from_hours(25)).to_sqlx())
            .bind(to.to_sqlx())
            .bind(from.to_sqlx())
            .bind(i64::from(limit))
            .bind(*first)
            .bind(*second.unwrap_or(first))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(EndedSession {
                    booking: BookingId(r.try_get("id")?),
                    link: LinkId(r.try_get("meeting_link_id")?),
                    meeting_link: r.try_get("meeting_link")?,
                    starts_at: ts(r, "starts_at")?,
                    ends_at: ts(r, "ends_at")?,
                })
            })
            .collect()
    }

    async fn enqueue(&self, action: &NewAction) -> Result<bool> {
        let done = self.query(
            "INSERT INTO provider_actions (kind, provider, link_id, booking_id, dedup_key, due_at) \
             SELECT $1::text, $2::text, $3::uuid, $4::uuid, $5::text, $6::timestamptz \
             WHERE NOT ($1::text = 'end' AND EXISTS (SELECT 1 FROM provider_actions \
               WHERE booking_id = $4::uuid AND kind = 'end')) \
             ON CONFLICT DO NOTHING",
        )
        .bind(action.kind.as_str())
        .bind(&action.provider)
        .bind(action.link.map(|l| l.0))
        .bind(action.booking.map(|b| b.0))
        .bind(&action.dedup_key)
        .bind(action.due_at.to_sqlx())
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
        let rows = self
            .query(&format!(
                "UPDATE provider_actions SET attempts = attempts + 1, leased_until = $2 \
             WHERE id IN (SELECT id FROM provider_actions \
               WHERE done_at IS NULL AND due_at <= $1 \
                 AND (leased_until IS NULL OR leased_until <= $1) \
                 AND ($4::text IS NULL OR kind = $4) AND ($5::text IS NULL OR provider = $5) \
               ORDER BY due_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING {COLUMNS}"
            ))
            .bind(now.to_sqlx())
            .bind(lease_until.to_sqlx())
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
                link.map(|l| l.0),
                None,
                None,
                None,
                Some(at.to_sqlx()),
            ),
            ActionResult::RetryAt {
                error,
                next,
                detail,
            } => (
                None,
                None,
                Some(error.as_str()),
                Some(next.to_sqlx()),
                Some(detail.clone()),
                None,
            ),
            ActionResult::GaveUp { error, at } => (
                Some("failed"),
                None,
                Some(error.as_str()),
                None,
                None,
                Some(at.to_sqlx()),
            ),
        };
        self.query(
            "UPDATE provider_actions SET outcome = $3, link_id = COALESCE($4, link_id), \
               last_error = COALESCE($5, last_error), due_at = COALESCE($6, due_at), \
               detail = COALESCE($7, detail), done_at = $8, leased_until = NULL \
             WHERE id = $1 AND attempts = $2 AND done_at IS NULL",
        )
        .bind(id)
        .bind(i32::try_from(attempts).unwrap_or(i32::MAX))
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
        let rows = self
            .query(&format!(
                "SELECT {COLUMNS} FROM provider_actions \
             WHERE ($1::uuid IS NULL OR link_id = $1) AND ($2::uuid IS NULL OR booking_id = $2) \
             ORDER BY id DESC LIMIT $3"
            ))
            .bind(link.map(|l| l.0))
            .bind(booking.map(|b| b.0))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(action_row).collect()
    }

    async fn rooms_created(&self) -> Result<u32> {
        let n: i64 = self
            .query_scalar(
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
        let began: Option<i32> = self
            .query_scalar(
                "SELECT 1 FROM bookings WHERE meeting_link_id = $1 AND id <> $2 \
               AND starts_at >= $3 AND starts_at <= $4 LIMIT 1",
            )
            .bind(link.0)
            .bind(booking.0)
            .bind(from.to_sqlx())
            .bind(now.to_sqlx())
            .fetch_optional(&self.pool)
            .await?;
        Ok(began.is_some())
    }

    async fn last_checks(&self) -> Result<Vec<(LinkId, Timestamp, String)>> {
        let rows = self
            .query(
                "SELECT DISTINCT ON (link_id) link_id, done_at, outcome FROM provider_actions \
             WHERE kind = 'check' AND done_at IS NOT NULL AND link_id IS NOT NULL \
             ORDER BY link_id, id DESC",
            )
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    LinkId(r.try_get("link_id")?),
                    ts(r, "done_at")?,
                    r.try_get::<Option<String>, _>("outcome")?
                        .unwrap_or_default(),
                ))
            })
            .collect()
    }
}
