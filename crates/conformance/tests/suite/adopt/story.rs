//! The whole story: the platform's own inserts, payments, cancellations and
//! reschedules, Midtrans settlements and refunds written in its words, and
//! adopting again, which changes nothing.
use std::time::Duration;

use meetpool_conformance::{eventually, PlatformDb, TestApp};
use meetpool_store::ConnectOptions;

use super::{
    adopted, exec, in_zone, platform_books, platform_row, EXPERT, HOUR, LINK_1, LINK_3, USER,
};
use crate::midtrans::{refund_of, settlement_of};

on_postgres!(the_platform_keeps_working_and_meetpool_assigns_its_links);

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
