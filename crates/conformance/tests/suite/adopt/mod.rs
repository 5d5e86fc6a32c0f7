//! Adopting a platform's existing PostgreSQL database in place: the
//! platform's tables stay as they are, its own code keeps writing them, and
//! meetpool runs beside them (`fixtures/adopter.sql` is the platform's
//! database before: its own vocabulary, a text `booking_time`, a
//! `total_price`, row-level security on the pool, a double-booked pair, a
//! paid booking with no link, one with no session type, one whose time does
//! not parse).
//!
//! One theme a file:
//!
//! - `refusals`: the dry run changes nothing; what adoption refuses.
//! - `story`: the whole story: the platform keeps writing, meetpool assigns its links.
//! - `pooler`: two replicas through a real PgBouncer in transaction mode.
//! - `events`: the platform's own payment as outbound events.
//!
//! This module holds the fixtures they share.
mod events;
mod pooler;
mod refusals;
mod story;

use meetpool_conformance::PlatformDb;
use meetpool_store::postgres::adoption::{adopt, AdoptOptions, AdoptReport};
use meetpool_store::DbSettings;
use sqlx::PgPool;

const ZONE: &str = "Asia/Jakarta";
const LINK_1: &str = "00000000-0000-4000-d000-000000000001";
const LINK_3: &str = "00000000-0000-4000-d000-000000000003";
pub(crate) const USER: &str = "00000000-0000-4000-a000-000000000001";
pub(crate) const EXPERT: &str = "00000000-0000-4000-b000-000000000001";
pub(crate) const HOUR: &str = "00000000-0000-4000-c000-000000000060";

pub(crate) fn options(db: &PlatformDb, dry_run: bool) -> AdoptOptions {
    AdoptOptions {
        schema: "public".into(),
        payment_status_values: [
            ("pending", "waiting"),
            ("failed", "waiting"),
            ("cancelled", "waiting"),
            ("expired", "waiting"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect(),
        status_values: [
            ("paid", "confirmed"),
            ("failed", "cancelled"),
            ("expired", "cancelled"),
            ("refunded", "cancelled"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect(),
        default_duration: Some(60),
        role: db.role.clone(),
        role_password: Some(db.role_password.clone()),
        settings: DbSettings {
            timezone: ZONE.into(),
            buffer_minutes: 0,
        },
        change_settings: false,
        dry_run,
    }
}

/// The platform's zone, as `MEETPOOL_TIMEZONE` would set it.
pub(crate) fn in_zone(c: &mut meetpool_app::Config) {
    let key = c.midtrans_server_key.take();
    *c = meetpool_app::Config::new(ZONE).unwrap();
    c.midtrans_server_key = key;
}

pub(crate) async fn adopted(db: &PlatformDb, dry_run: bool) -> AdoptReport {
    adopt(&db.owner_url(), &options(db, dry_run), &|_| {})
        .await
        .expect("adopt")
}

/// The platform's row as its own pages read it: payment_status, status,
/// meeting_link_id, meeting_link, whether paid_at is set.
pub(crate) async fn platform_row(
    pool: &PgPool,
    order: &str,
) -> (String, String, Option<String>, Option<String>, bool) {
    sqlx::query_as(
        "SELECT payment_status, status, meeting_link_id::text, meeting_link, paid_at IS NOT NULL \
         FROM bookings WHERE order_id = $1",
    )
    .bind(order)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// The platform inserts a booking the way its checkout does: only its own
/// columns, the time as text.
pub(crate) async fn platform_books(pool: &PgPool, order: &str, day: i32, time: &str, price: i64) {
    sqlx::query(
        "INSERT INTO bookings (order_id, user_id, expert_id, session_type_id, booking_date, \
           booking_time, total_price) \
         VALUES ($1, $2::uuid, $3::uuid, $4::uuid, current_date + $5, $6, $7)",
    )
    .bind(order)
    .bind(USER)
    .bind(EXPERT)
    .bind(HOUR)
    .bind(day)
    .bind(time)
    .bind(price)
    .execute(pool)
    .await
    .expect("the platform's own insert");
}

async fn exec(pool: &PgPool, sql: &str) -> u64 {
    sqlx::query(sql)
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("the platform's statement {sql} failed: {e}"))
        .rows_affected()
}
