//! Adopting a platform's existing PostgreSQL database in place: the
//! platform's tables stay as they are, its own code keeps writing them, and
//! meetpool runs beside them (`fixtures/adopter.sql` is the platform's
//! database before: its own vocabulary, a text `booking_time`, a
//! `total_price`, row-level security on the pool, a double-booked pair, a
//! paid booking with no link, one with no session type, one whose time does
//! not parse).
use std::time::Duration;

use meetpool_conformance::{eventually, test_events, PgBouncer, PlatformDb, Receiver, TestApp};
use meetpool_store::postgres::adoption::{adopt, AdoptOptions, AdoptReport};
use meetpool_store::{ConnectOptions, DbSettings};
use sqlx::PgPool;

use crate::midtrans::{refund_of, settlement_of};

on_postgres!(
    a_dry_run_reports_what_adoption_would_do_and_changes_nothing,
    adoption_refuses_a_state_with_no_value_in_the_platforms_columns,
    adoption_refuses_an_unsafe_link_in_the_platforms_pool,
    the_platform_keeps_working_and_meetpool_assigns_its_links,
    two_replicas_behind_a_transaction_pooler_race_without_overlap,
    the_platforms_own_payment_reaches_the_events_endpoint,
);

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

async fn a_dry_run_reports_what_adoption_would_do_and_changes_nothing(db: PlatformDb) {
    let before = db.fingerprint().await;
    let report = adopted(&db, true).await;
    assert_eq!(
        db.fingerprint().await,
        before,
        "the dry run changed the database"
    );
    assert!(report.refused.is_empty(), "{:?}", report.refused);

    // What it found, in the platform's vocabulary.
    assert_eq!(report.found.bookings, 9);
    assert_eq!(report.found.paid_without_link, 1);
    assert_eq!(report.found.columns["price"], "total_price");
    assert_eq!(report.found.columns["booking_time"], "text");
    let paid = report
        .vocabulary
        .iter()
        .find(|v| v.state == "paid")
        .unwrap();
    assert_eq!(
        (paid.payment_status.as_str(), paid.status.as_deref()),
        ("paid", Some("confirmed"))
    );

    // The double-booked pair: the one paid first keeps the first link, the
    // other moves to a free link; the past pair only loses its link; the
    // paid booking with no link gets one.
    let moved = |order: &str| report.moves.iter().find(|m| m.order_id == order).cloned();
    let a2 = moved("ORDER-A2").expect("ORDER-A2 moves");
    assert_eq!(a2.from_link.unwrap().to_string(), LINK_1);
    assert!(a2.to_link.is_some() && a2.why.contains("00000000-0000-4000-e000-000000000001"));
    assert!(moved("ORDER-A1").is_none());
    let a9 = moved("ORDER-A9").expect("ORDER-A9 loses its link");
    assert_eq!(a9.to_link, None);
    assert!(moved("ORDER-A3").unwrap().to_link.is_some());
    // Reported, not guessed.
    assert_eq!(report.not_adopted_total, 1);
    assert_eq!(report.not_adopted[0].order_id.as_deref(), Some("ORDER-A7"));
    // What it leaves alone but names.
    assert!(
        report
            .look_at
            .iter()
            .any(|l| l.contains("lets authenticated read every pooled link")),
        "{:?}",
        report.look_at
    );
    assert!(report
        .look_at
        .iter()
        .any(|l| l.contains("assign_meeting_link")));
    assert!(report.changes.iter().any(|c| c.contains("copy 8 bookings")));
}

async fn adoption_refuses_a_state_with_no_value_in_the_platforms_columns(db: PlatformDb) {
    let before = db.fingerprint().await;
    let mut o = options(&db, false);
    o.status_values.remove("refunded");
    let report = adopt(&db.owner_url(), &o, &|_| {}).await.unwrap();
    assert_eq!(report.refused.len(), 1, "{:?}", report.refused);
    assert!(
        report.refused[0].contains("refunded") && report.refused[0].contains("--status-values"),
        "{}",
        report.refused[0]
    );
    o.payment_status_values
        .insert("pending".into(), "unpaid".into());
    let report = adopt(&db.owner_url(), &o, &|_| {}).await.unwrap();
    assert!(
        report
            .refused
            .iter()
            .any(|r| r.contains("pending=unpaid") && r.contains("waiting, paid, refunded")),
        "{:?}",
        report.refused
    );
    assert_eq!(
        db.fingerprint().await,
        before,
        "a refused adoption changed the database"
    );
}

async fn adoption_refuses_an_unsafe_link_in_the_platforms_pool(db: PlatformDb) {
    let platform = db.owner().await;
    exec(
        &platform,
        "INSERT INTO meeting_links_pool (id, meeting_link) \
         VALUES ('00000000-0000-4000-d000-0000000000ff', 'javascript:alert(1)')",
    )
    .await;
    let before = db.fingerprint().await;
    let report = adopt(&db.owner_url(), &options(&db, false), &|_| {})
        .await
        .unwrap();
    assert!(
        report
            .refused
            .iter()
            .any(|r| r.contains("javascript:alert(1)")
                && r.contains("00000000-0000-4000-d000-0000000000ff")
                && r.contains("is_available = false")),
        "{:?}",
        report.refused
    );
    assert_eq!(
        db.fingerprint().await,
        before,
        "a refused adoption changed the database"
    );
}

async fn the_platform_keeps_working_and_meetpool_assigns_its_links(db: PlatformDb) {
    let platform = db.owner().await;
    let report = adopted(&db, false).await;
    assert!(report.refused.is_empty(), "{:?}", report.refused);

    // Adopting again changes nothing.
    let before = db.fingerprint().await;
    let again = adopted(&db, false).await;
    assert!(
        again.changes.is_empty() && again.moves.is_empty(),
        "{:?} {:?}",
        again.changes,
        again.moves
    );
    assert!(again.already_adopted);
    assert_eq!(
        db.fingerprint().await,
        before,
        "adopting again changed the database"
    );

    // The platform's rows now say what meetpool holds.
    let a2 = platform_row(&platform, "ORDER-A2").await;
    assert_ne!(
        a2.2.as_deref(),
        Some(LINK_1),
        "the double booking is resolved"
    );
    let a6 = platform_row(&platform, "ORDER-A6").await;
    assert_eq!(
        (a6.2, a6.3),
        (None, None),
        "a cancelled booking keeps no link"
    );
    let a3 = platform_row(&platform, "ORDER-A3").await;
    assert!(a3.2.is_some(), "the paid booking without a link got one");

    let t = TestApp::start_adopted(db.service_url(), &ConnectOptions::default(), in_zone).await;
    assert_eq!(t.overlaps().await, 0);
    let url_of = |link: &str| {
        let link = link.to_owned();
        let t = &t;
        async move { t.link(&link).await.meeting_link }
    };
    assert_eq!(a3.3, Some(url_of(a3.2.as_deref().unwrap()).await));

    // The platform's checkout inserts a booking with only its columns;
    // meetpool knows it at once.
    platform_books(&platform, "ORDER-P1", 7, "16:00", 150_000).await;
    let p1 = t
        .bookings("payment_status=pending&limit=100")
        .await
        .unwrap()
        .into_iter()
        .find(|b| b.order_id == "ORDER-P1")
        .expect("meetpool holds the platform's new booking");
    assert_eq!(p1.booking_time, "16:00");

    // The platform marks it paid itself: it gets a link within seconds.
    exec(
        &platform,
        "UPDATE bookings SET payment_status = 'paid', status = 'confirmed', paid_at = now() \
         WHERE order_id = 'ORDER-P1'",
    )
    .await;
    eventually(
        "the booking the platform marked paid has a link",
        Duration::from_secs(10),
        || async { platform_row(&platform, "ORDER-P1").await.2.is_some() },
    )
    .await;
    let row = platform_row(&platform, "ORDER-P1").await;
    assert_eq!(row.3, Some(url_of(row.2.as_deref().unwrap()).await));
    assert_eq!(t.booking(&p1.id).await.payment_status, "paid");

    // A Midtrans settlement, written in the platform's vocabulary.
    platform_books(&platform, "ORDER-M1", 7, "18:00", 100_000).await;
    t.notify(settlement_of("ORDER-M1")).await;
    let m1 = platform_row(&platform, "ORDER-M1").await;
    assert_eq!(
        (m1.0.as_str(), m1.1.as_str(), m1.4),
        ("paid", "confirmed", true)
    );
    assert_eq!(m1.3, Some(url_of(m1.2.as_deref().unwrap()).await));

    // The slot fills up: the last paid booking waits for a link...
    for order in ["ORDER-F1", "ORDER-F2", "ORDER-F3"] {
        platform_books(&platform, order, 7, "18:00", 100_000).await;
        t.notify(settlement_of(order)).await;
    }
    let f3 = platform_row(&platform, "ORDER-F3").await;
    assert_eq!(
        (f3.0.as_str(), f3.2.as_deref()),
        ("paid", None),
        "three links, four sessions"
    );
    // ...until a refund frees one: Midtrans' for ORDER-M1...
    t.notify(refund_of("ORDER-M1")).await;
    let m1 = platform_row(&platform, "ORDER-M1").await;
    assert_eq!(
        (m1.0.as_str(), m1.1.as_str(), m1.2),
        ("refunded", "cancelled", None)
    );
    let f3 = platform_row(&platform, "ORDER-F3").await;
    assert!(
        f3.2.is_some(),
        "the refund's link went to the waiting booking"
    );

    // ...or the platform's own cancellation.
    platform_books(&platform, "ORDER-F4", 7, "18:00", 100_000).await;
    t.notify(settlement_of("ORDER-F4")).await;
    assert_eq!(platform_row(&platform, "ORDER-F4").await.2, None);
    exec(
        &platform,
        "UPDATE bookings SET status = 'cancelled' WHERE order_id = 'ORDER-F1'",
    )
    .await;
    eventually(
        "the platform's cancellation gave its link away",
        Duration::from_secs(10),
        || async {
            platform_row(&platform, "ORDER-F4").await.2.is_some()
                && platform_row(&platform, "ORDER-F1").await.2.is_none()
        },
    )
    .await;

    // The platform reschedules onto the full slot: its UPDATE goes
    // through, and meetpool queues the session rather than double-book.
    exec(
        &platform,
        "UPDATE bookings SET booking_time = '18:30' WHERE order_id = 'ORDER-P1'",
    )
    .await;
    eventually(
        "the moved session waits for a link",
        Duration::from_secs(10),
        || async { platform_row(&platform, "ORDER-P1").await.2.is_none() },
    )
    .await;
    let moved = t.booking(&p1.id).await;
    assert_eq!(
        (moved.booking_time.as_str(), moved.meeting_link),
        ("18:30", None)
    );
    assert!(t
        .event_kinds(&p1.id)
        .await
        .contains(&"rescheduled".to_owned()));
    // And back to a free time: it gets a link again.
    exec(
        &platform,
        "UPDATE bookings SET booking_time = '20:00' WHERE order_id = 'ORDER-P1'",
    )
    .await;
    eventually(
        "the session moved to a free time has a link",
        Duration::from_secs(10),
        || async { platform_row(&platform, "ORDER-P1").await.2.is_some() },
    )
    .await;

    // The link columns are meetpool's: the old flow's write is ignored.
    exec(
        &platform,
        &format!("UPDATE bookings SET meeting_link_id = '{LINK_3}' WHERE order_id = 'ORDER-A4'"),
    )
    .await;
    assert_eq!(platform_row(&platform, "ORDER-A4").await.2, None);

    // What meetpool's own API creates, the platform's tables hold too: a
    // link added by an operator, a checkout hold (in the platform's words).
    let added = t.add_link("https://meet.google.com/ddd-dddd-ddd").await;
    let in_pool: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM meeting_links_pool WHERE id = $1::uuid AND is_available",
    )
    .bind(&added.id)
    .fetch_one(&platform)
    .await
    .unwrap();
    assert_eq!(in_pool, 1);
    let held = t
        .try_create_booking(serde_json::json!({
            "order_id": "ORDER-H1", "user_id": USER, "expert_id": EXPERT,
            "session_type_id": HOUR, "booking_date": moved.booking_date, "booking_time": "18:00",
            "price": 150000, "hold": true,
        }))
        .await
        .expect("a hold on the new link");
    assert_eq!(held.meeting_link_id.as_deref(), Some(added.id.as_str()));
    let h1 = platform_row(&platform, "ORDER-H1").await;
    assert_eq!((h1.0.as_str(), h1.1.as_str()), ("waiting", "pending"));
    assert_eq!(
        h1.3.as_deref(),
        Some("https://meet.google.com/ddd-dddd-ddd")
    );

    // The platform's own rules hold for what meetpool's API writes: its
    // `user_id` is a uuid. A value its table refuses is the request's
    // fault, said in the database's words, and nothing is written.
    let refused = t
        .try_create_booking(serde_json::json!({
            "order_id": "ORDER-BAD", "user_id": "user-17", "expert_id": EXPERT,
            "session_type_id": HOUR, "booking_date": moved.booking_date, "booking_time": "19:00",
            "price": 150000,
        }))
        .await
        .expect_err("the platform's table refuses a user_id that is not a uuid");
    assert_eq!(
        refused.why(),
        (
            reqwest::StatusCode::UNPROCESSABLE_ENTITY,
            "refused_by_database"
        )
    );
    assert!(refused.error.message.contains("uuid"), "{refused:?}");
    for table in ["bookings", "meetpool.bookings"] {
        let written: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {table} WHERE order_id = 'ORDER-BAD'"
        ))
        .fetch_one(&platform)
        .await
        .unwrap();
        assert_eq!(written, 0, "{table}");
    }

    assert_eq!(t.overlaps().await, 0);
    // The only row meetpool could not take in is the one adoption left
    // out (its time does not parse): nothing the story wrote added one.
    let problems: Vec<(String, String)> =
        sqlx::query_as("SELECT order_id, reason FROM meetpool.platform_problems ORDER BY order_id")
            .fetch_all(&platform)
            .await
            .unwrap();
    assert_eq!(
        problems,
        [("ORDER-A7".to_owned(), "unreadable_time".to_owned())]
    );
    // The paid sessions the capacity report counts by window, those the
    // adoption copied included, are the paid bookings meetpool holds.
    let drift: i64 = sqlx::query_scalar(
        "WITH kept AS (SELECT starts_at, ends_at, sum(sessions)::bigint AS s, sum(unlinked)::bigint AS u \
           FROM meetpool.paid_window_deltas GROUP BY 1, 2 HAVING sum(sessions) <> 0), \
         held AS (SELECT starts_at, ends_at, count(*) AS s, count(*) FILTER (WHERE meeting_link_id IS NULL) AS u \
           FROM meetpool.bookings WHERE payment_status = 'paid' GROUP BY 1, 2) \
         SELECT count(*) FROM ((TABLE kept EXCEPT TABLE held) UNION ALL (TABLE held EXCEPT TABLE kept)) d",
    )
    .fetch_one(&platform)
    .await
    .unwrap();
    assert_eq!(drift, 0, "windows counted otherwise than the bookings say");
    // Reads of what is busy look back as far as the longest busy range,
    // which the copy (without triggers) must have raised.
    let covered: bool = sqlx::query_scalar(
        "SELECT (SELECT longest_busy FROM meetpool.meetpool_settings WHERE id = 1) \
           >= (SELECT max(upper(busy) - lower(busy)) FROM meetpool.bookings)",
    )
    .fetch_one(&platform)
    .await
    .unwrap();
    assert!(
        covered,
        "a busy range longer than the settings' longest_busy"
    );
    platform.close().await;
}

/// Through a real PgBouncer in transaction mode, with no direct
/// connection: no prepared statement outlives its transaction, nothing
/// relies on session state, and the platform's changes are polled for.
async fn two_replicas_behind_a_transaction_pooler_race_without_overlap(db: PlatformDb) {
    let Some(bouncer) = PgBouncer::start(&[(&db.role, &db.role_password)]) else {
        return;
    };
    let platform = db.owner().await;
    assert!(adopted(&db, false).await.refused.is_empty());
    let pooled = ConnectOptions {
        pooler: true,
        direct_url: None,
        max_connections: 8,
        ..ConnectOptions::default()
    };
    let url = bouncer.url(&db.service_url());
    let receiver = Receiver::start().await;
    let with_events = |c: &mut meetpool_app::Config| {
        in_zone(c);
        c.events = Some(test_events(&receiver.url, |_| {}));
    };
    let a = TestApp::start_adopted(url.clone(), &pooled, with_events).await;
    let b = TestApp::start_adopted(url, &pooled, with_events).await;

    // Twelve paid sessions at one time, three links: each settlement sent to
    // both replicas at once.
    let orders: Vec<String> = (1..=12).map(|i| format!("ORDER-R{i}")).collect();
    for order in &orders {
        platform_books(&platform, order, 9, "10:00", 100_000).await;
    }
    let sends = orders.iter().flat_map(|order| {
        [&a, &b].map(|t| {
            let body = settlement_of(order);
            async move { t.notify(body).await }
        })
    });
    futures_util::future::join_all(sends).await;

    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT payment_status, meeting_link_id::text FROM bookings WHERE order_id LIKE 'ORDER-R%'",
    )
    .fetch_all(&platform)
    .await
    .unwrap();
    assert_eq!(rows.len(), 12);
    assert!(rows.iter().all(|(s, _)| s == "paid"), "{rows:?}");
    assert_eq!(
        rows.iter().filter(|(_, l)| l.is_some()).count(),
        3,
        "{rows:?}"
    );
    assert_eq!(a.overlaps().await, 0);

    // The platform's own payment, found by polling.
    platform_books(&platform, "ORDER-R13", 9, "12:00", 100_000).await;
    exec(
        &platform,
        "UPDATE bookings SET payment_status = 'paid', status = 'confirmed' WHERE order_id = 'ORDER-R13'",
    )
    .await;
    eventually(
        "the platform's own payment got a link behind the pooler",
        Duration::from_secs(10),
        || async { platform_row(&platform, "ORDER-R13").await.2.is_some() },
    )
    .await;

    // Events too go through the pooler: thirteen payments (the platform's
    // own included), four links given, nine bookings that found none, and
    // the fixture's row adoption could not take in (raised by one replica);
    // each delivered once.
    let got = receiver
        .wait_until("every event, through the pooler", |ds| {
            ds.iter().filter(|d| d.accepted).count() >= 27
        })
        .await;
    let accepted: Vec<_> = got.iter().filter(|d| d.accepted).collect();
    let count = |kind: &str| accepted.iter().filter(|d| d.kind() == kind).count();
    assert_eq!(count("booking.payment_changed"), 13, "{accepted:#?}");
    assert_eq!(count("booking.link_assigned"), 4, "{accepted:#?}");
    assert_eq!(count("pool.exhausted"), 9, "{accepted:#?}");
    assert_eq!(count("platform.row_rejected"), 1, "{accepted:#?}");
    let ids: std::collections::HashSet<_> = accepted.iter().map(|d| d.id.clone()).collect();
    assert_eq!(ids.len(), accepted.len(), "each event once");
    eventually(
        "the delivery log, read through the pooler",
        Duration::from_secs(10),
        || async {
            let (status, log) = a.get("/api/events/deliveries?status=delivered").await;
            assert_eq!(status, reqwest::StatusCode::OK, "{log}");
            log.as_array().unwrap().len() == 27
        },
    )
    .await;
    drop((a, b));
    platform.close().await;
}

/// On an adopted database, a change the platform's own code makes is an
/// event like any other: the platform marks a booking paid, and its
/// endpoint hears of the payment and of the link meetpool gave.
async fn the_platforms_own_payment_reaches_the_events_endpoint(db: PlatformDb) {
    let platform = db.owner().await;
    assert!(adopted(&db, false).await.refused.is_empty());
    let receiver = Receiver::start().await;
    let t = TestApp::start_adopted(db.service_url(), &ConnectOptions::default(), |c| {
        in_zone(c);
        c.events = Some(test_events(&receiver.url, |_| {}));
    })
    .await;
    platform_books(&platform, "ORDER-E1", 7, "20:00", 150_000).await;
    exec(
        &platform,
        "UPDATE bookings SET payment_status = 'paid', status = 'confirmed' WHERE order_id = 'ORDER-E1'",
    )
    .await;
    let id: String =
        sqlx::query_scalar("SELECT id::text FROM bookings WHERE order_id = 'ORDER-E1'")
            .fetch_one(&platform)
            .await
            .unwrap();
    let got = receiver
        .wait_until("the payment and the link of the platform's booking", |ds| {
            ["booking.payment_changed", "booking.link_assigned"]
                .iter()
                .all(|k| {
                    ds.iter()
                        .any(|d| d.accepted && d.kind() == *k && d.booking_id() == Some(&id))
                })
        })
        .await;
    let link = got
        .iter()
        .find(|d| d.kind() == "booking.link_assigned")
        .unwrap();
    assert!(link.verified);
    let row = platform_row(&platform, "ORDER-E1").await;
    assert_eq!(
        link.body["data"]["booking"]["meeting_link_id"].as_str(),
        row.2.as_deref(),
        "{:#}",
        link.body
    );
    drop(t);
    platform.close().await;
}
