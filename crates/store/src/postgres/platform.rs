//! The running side of a platform's database adopted in place (see
//! [`adoption`](super::adoption) for adopting it): the platform's own
//! changes claimed and done, the rows meetpool could not take in, and
//! whether the platform's tables are still as adoption left them.
use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

use super::rows::ts;
use super::{adoption, PgStore, Statements};
use crate::{
    BookingId, ClaimedChange, LinkId, PlatformChange, PlatformChanges, PlatformProblem,
    ProblemReason, Result, SessionTypeId, StoreError, Wakeups,
};

#[async_trait]
impl PlatformChanges for PgStore {
    async fn adopted(&self) -> Result<bool> {
        Ok(self
            .query_scalar("SELECT to_regclass('platform_changes') IS NOT NULL")
            .fetch_one(&mut *self.session().await?)
            .await?)
    }

    async fn claim(&self, limit: u32) -> Result<Vec<ClaimedChange>> {
        let mut tx = self.pool.begin().await?;
        let rows = self.query(
            "UPDATE platform_changes SET claimed_until = now() + interval '1 minute' \
             WHERE id IN ( \
               SELECT id FROM platform_changes p \
               WHERE (claimed_until IS NULL OR claimed_until < now()) \
                 AND NOT EXISTS (SELECT 1 FROM platform_changes e WHERE e.booking_id = p.booking_id \
                                   AND e.id < p.id AND e.claimed_until >= now()) \
               ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) \
             RETURNING id, kind, booking_id, link_id, state, booking_date, booking_time, \
               session_type_id, enabled",
        )
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: i64 = r.try_get("id")?;
            let kind: String = r.try_get("kind")?;
            let booking = r.try_get::<Option<Uuid>, _>("booking_id")?.map(BookingId);
            let change = match (kind.as_str(), booking) {
                ("payment", Some(booking)) => {
                    let state: Option<String> = r.try_get("state")?;
                    match state.as_deref().map(str::parse) {
                        Some(Ok(state)) => PlatformChange::Payment { booking, state },
                        _ => continue,
                    }
                }
                ("schedule", Some(booking)) => PlatformChange::Schedule {
                    booking,
                    date: r.try_get::<jiff_sqlx::Date, _>("booking_date")?.to_jiff(),
                    time: r.try_get("booking_time")?,
                    session_type: r
                        .try_get::<Option<Uuid>, _>("session_type_id")?
                        .map(SessionTypeId),
                },
                ("link", _) => PlatformChange::Link {
                    link: LinkId(r.try_get("link_id")?),
                    enabled: r.try_get("enabled")?,
                },
                _ => PlatformChange::Backfill,
            };
            out.push(ClaimedChange { id, change });
        }
        out.sort_by_key(|c| c.id);
        Ok(out)
    }

    async fn done(&self, id: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        self.query("DELETE FROM platform_changes WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn problems(&self) -> Result<Vec<PlatformProblem>> {
        if !self.has_problems().await? {
            return Ok(Vec::new());
        }
        let rows = self
            .query(&format!(
                "SELECT {PROBLEM_COLUMNS} FROM platform_problems ORDER BY since, booking_id"
            ))
            .fetch_all(&mut *self.session().await?)
            .await?;
        rows.iter().map(problem_row).collect()
    }

    async fn claim_problems_to_alert(&self) -> Result<Vec<PlatformProblem>> {
        if !self.has_problems().await? {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await?;
        let rows = self
            .query(&format!(
                "UPDATE platform_problems SET alerted = true WHERE booking_id IN ( \
               SELECT booking_id FROM platform_problems WHERE NOT alerted \
               ORDER BY since LIMIT 100 FOR UPDATE SKIP LOCKED) \
             RETURNING {PROBLEM_COLUMNS}"
            ))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut out = rows.iter().map(problem_row).collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|p| p.since);
        Ok(out)
    }

    async fn note_problem(
        &self,
        booking: BookingId,
        reason: ProblemReason,
        detail: &str,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        self.query("SELECT meetpool.note_platform_problem($1, $2, $3)")
            .bind(booking.0)
            .bind(reason.as_str())
            .bind(detail)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn broken(&self) -> Result<Option<String>> {
        let row: Option<(String, bool, Vec<String>, Vec<String>)> = self.query_as(
            "SELECT a.platform_schema, to_regclass('platform_problems') IS NOT NULL, \
               array(SELECT t FROM unnest(ARRAY['bookings', 'meeting_links_pool', 'session_types']) t \
                     WHERE to_regclass(format('%I.%I', a.platform_schema, t)) IS NULL), \
               array(SELECT t FROM unnest(ARRAY['bookings', 'meeting_links_pool', 'session_types']) t \
                     WHERE to_regclass(format('%I.%I', a.platform_schema, t)) IS NOT NULL \
                       AND NOT EXISTS (SELECT 1 FROM pg_trigger g \
                         WHERE g.tgrelid = to_regclass(format('%I.%I', a.platform_schema, t)) \
                           AND g.tgname = 'meetpool_sync')) \
             FROM adoption a \
             WHERE to_regclass('adoption') IS NOT NULL",
        )
        .fetch_optional(&mut *self.session().await?)
        .await
        .or_else(|e| match StoreError::from(e) {
            // Not an adopted database: no adoption table.
            StoreError::Unavailable(sqlx::Error::Database(db))
                if db.code().as_deref() == Some("42P01") =>
            {
                Ok(None)
            }
            e => Err(e),
        })?;
        let Some((schema, up_to_date, gone, untracked)) = row else {
            return Ok(None);
        };
        Ok(if !gone.is_empty() {
            Some(format!(
                "the platform's table{} {} {} gone (dropped or renamed): its bookings cannot be \
                 written. Restore {}, then run `meetpool adopt` again as the tables' owner; \
                 meetpool's own tables are intact",
                if gone.len() > 1 { "s" } else { "" },
                gone.iter()
                    .map(|t| format!("{schema}.{t}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if gone.len() > 1 { "are" } else { "is" },
                if gone.len() > 1 { "them" } else { "it" },
            ))
        } else if !untracked.is_empty() {
            Some(format!(
                "meetpool's triggers are missing on {} (the table was re-created?): the \
                 platform's own changes would go unseen. Run `meetpool adopt` again as the \
                 tables' owner",
                untracked
                    .iter()
                    .map(|t| format!("{schema}.{t}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ))
        } else if !up_to_date {
            Some(
                "the adoption predates this version of meetpool: run `meetpool adopt` again as \
                 the tables' owner to bring it up to date"
                    .to_owned(),
            )
        } else {
            None
        })
    }

    async fn listener(&self) -> Result<Option<Box<dyn Wakeups>>> {
        let mut listener = match (&self.direct_url, self.prepared) {
            (Some(url), _) => sqlx::postgres::PgListener::connect(url).await?,
            (None, true) => sqlx::postgres::PgListener::connect_with(&self.pool).await?,
            (None, false) => return Ok(None),
        };
        listener.listen("meetpool_platform").await?;
        Ok(Some(Box::new(Listener(listener))))
    }
}

impl PgStore {
    /// Fails, saying how to connect, on a platform's database adopted in
    /// place when this connection's role does not see meetpool's schema
    /// (the platform's own `postgres`, say): its tables would look missing,
    /// and migrating would put meetpool's beside the platform's.
    pub(super) async fn not_adopted_elsewhere(&self) -> Result<()> {
        let (adopted, schema, user, path): (bool, Option<String>, String, String) = self
            .query_as(
                "SELECT to_regclass('meetpool.adoption') IS NOT NULL, current_schema(), \
                   current_user::text, current_setting('search_path')",
            )
            .fetch_one(&mut *self.session().await?)
            .await?;
        if !adopted || schema.as_deref() == Some(adoption::SCHEMA) {
            return Ok(());
        }
        Err(StoreError::Config(format!(
            "this is a platform's database adopted in place by `meetpool adopt`: meetpool's tables \
             are in the schema `{s}`, which the role {user} does not see (its search_path is \
             {path}). Connect as the role adoption created for the service (`meetpool` unless \
             --role named another; its search_path is `{s}`), or put `{s}` first in this role's \
             search_path (`?options=-csearch_path%3D{s}` in DATABASE_URL). To upgrade an adopted \
             database, run `meetpool adopt` again as the tables' owner rather than `meetpool migrate`",
            s = adoption::SCHEMA
        )))
    }

    /// Whether this adopted database has a problems table (an adoption by
    /// an earlier version has not).
    async fn has_problems(&self) -> Result<bool> {
        Ok(self
            .query_scalar("SELECT to_regclass('platform_problems') IS NOT NULL")
            .fetch_one(&mut *self.session().await?)
            .await?)
    }
}

/// A row of `platform_problems`, with whether meetpool holds the booking.
const PROBLEM_COLUMNS: &str = "booking_id, order_id, reason, detail, paid, since, \
     EXISTS (SELECT 1 FROM bookings m WHERE m.id = booking_id) AS mirrored";

fn problem_row(r: &PgRow) -> Result<PlatformProblem> {
    let reason: String = r.try_get("reason")?;
    let mirrored: bool = r.try_get("mirrored")?;
    Ok(PlatformProblem {
        booking_id: BookingId(r.try_get("booking_id")?),
        order_id: r.try_get("order_id")?,
        reason: ProblemReason::parse(&reason),
        detail: r.try_get("detail")?,
        paid: r.try_get("paid")?,
        without_link: r.try_get::<bool, _>("paid")? && !mirrored,
        since: ts(r, "since")?,
    })
}

struct Listener(sqlx::postgres::PgListener);

#[async_trait]
impl Wakeups for Listener {
    async fn next(&mut self) -> Result<()> {
        self.0.recv().await?;
        Ok(())
    }
}
