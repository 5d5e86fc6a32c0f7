//! The history in one INSERT ... SELECT over generate_series, with the
//! per-row triggers off where the role allows it, since a history worth
//! measuring against runs to a million rows.
use anyhow::{Context, Result};
use jiff::civil::Date;
use sqlx::PgPool;

use super::slot_hours;
use crate::fixture::{DURATION_MIN, PRICE};

pub async fn seed(pool: &PgPool, n: i64, links: i64, from_date: Date) -> Result<(i64, i64)> {
    let mut tx = pool.begin().await?;
    let (tz, buffer): (String, i32) =
        sqlx::query_as("SELECT timezone, buffer_minutes FROM meetpool_settings WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
    let st: uuid::Uuid = match sqlx::query_scalar(
        "SELECT id FROM session_types WHERE name = 'history' AND duration = $1 LIMIT 1",
    )
    .bind(DURATION_MIN as i32)
    .fetch_optional(&mut *tx)
    .await?
    {
        Some(id) => id,
        None => {
            sqlx::query_scalar(
                "INSERT INTO session_types (name, duration, price) VALUES ('history', $1, $2) RETURNING id",
            )
            .bind(DURATION_MIN as i32)
            .bind(PRICE)
            .fetch_one(&mut *tx)
            .await?
        }
    };
    sqlx::query(
        "INSERT INTO meeting_links_pool (meeting_link) \
         SELECT 'https://meet.example.com/history-' || gen_random_uuid() \
         FROM generate_series(1, $1 - (SELECT count(*) FROM meeting_links_pool WHERE is_available))",
    )
    .bind(links)
    .execute(&mut *tx)
    .await?;
    let link_ids: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT id FROM meeting_links_pool WHERE is_available ORDER BY seq LIMIT $1",
    )
    .bind(links)
    .fetch_all(&mut *tx)
    .await?;
    let from: i64 =
        sqlx::query_scalar("SELECT count(*) FROM bookings WHERE order_id LIKE 'HIST-%'")
            .fetch_one(&mut *tx)
            .await?;
    // The derive trigger (a PL/pgSQL call per row) and the foreign-key
    // triggers are skipped for this one bulk insert, which sets every derived
    // column itself; the exclusion constraint is still checked. Needs a
    // superuser; without one the triggers simply run.
    let replica = sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .is_ok();
    if !replica {
        tx.rollback().await?;
        tx = pool.begin().await?;
    }
    let step = slot_hours(i64::from(buffer));
    // Replication role skips the trigger that counts paid sessions by
    // window (migration 0010), so the statement counts its own rows.
    let count = if replica {
        "INSERT INTO paid_window_deltas (starts_at, ends_at, sessions, unlinked, folded) \
         SELECT starts_at, ends_at, count(*), count(*) FILTER (WHERE meeting_link_id IS NULL), true \
         FROM added WHERE payment_status = 'paid' GROUP BY starts_at, ends_at \
         ORDER BY starts_at, ends_at"
    } else {
        "SELECT 1"
    };
    sqlx::query(&format!(
        "WITH added AS (INSERT INTO bookings (order_id, user_id, expert_id, session_type_id, booking_date, booking_time, \
           price, payment_status, status, meeting_link_id, starts_at, ends_at, busy, join_token, \
           payment_transaction_id, assigned_at, created_at, updated_at) \
         SELECT 'HIST-' || g, 'user-' || (g % 5000), 'expert-' || (g % 97), $1, \
           (s AT TIME ZONE $2)::date, (s AT TIME ZONE $2)::time, $3, 'paid', 'confirmed', \
           ($4::uuid[])[(1 + g % $5)::int], s, s + make_interval(mins => $6), \
           tstzrange(s, s + make_interval(mins => $6 + $7), '[)'), \
           md5('h' || g) || md5('t' || g), 'txn-' || g, s - interval '1 day', s - interval '2 days', s - interval '1 day' \
         FROM generate_series($8::bigint, $9::bigint) g \
         CROSS JOIN LATERAL (SELECT ($11::date)::timestamp AT TIME ZONE 'UTC' \
           + make_interval(hours => ((g / $5) * $10)::int) AS s) t \
         RETURNING starts_at, ends_at, meeting_link_id, payment_status) {count}"
    ))
    .bind(st)
    .bind(&tz)
    .bind(PRICE)
    .bind(&link_ids)
    .bind(link_ids.len() as i64)
    .bind(DURATION_MIN as i32)
    .bind(buffer)
    .bind(from)
    .bind(from + n - 1)
    .bind(step)
    .bind(from_date.to_string())
    .execute(&mut *tx)
    .await
    .context("bulk insert")?;
    // The longest busy range (migration 0012), kept by a trigger that
    // replication role skipped: every seeded session has the same one.
    sqlx::query(
        "UPDATE meetpool_settings SET longest_busy = greatest(longest_busy, make_interval(mins => $1 + $2)) \
         WHERE id = 1",
    )
    .bind(DURATION_MIN as i32)
    .bind(buffer)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    // As autovacuum would have left an old table (this server may run with
    // it off): hint bits set, visibility map and statistics current, and the
    // bulk load's WAL checkpointed now rather than during the measurement.
    sqlx::query("VACUUM (ANALYZE) bookings, paid_window_deltas")
        .execute(pool)
        .await?;
    if let Err(e) = sqlx::query("CHECKPOINT").execute(pool).await {
        eprintln!("seed-history: CHECKPOINT refused ({e}); carrying on");
    }
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings")
        .fetch_one(pool)
        .await?;
    Ok((from, total))
}
