//! Payments on a platform's database adopted in place, read in the
//! platform's own words: a refund cancels the booking in its `status`
//! vocabulary, whoever writes it (Midtrans, an operator, the platform's own
//! code), and a partial refund keeps the session until the platform
//! cancels it; a payment whose notification never arrived is found by
//! reconciliation and written as the platform writes a payment.
use std::time::Duration;

use meetpool_conformance::{eventually, settled, Gateway, PlatformDb, TestApp};
use meetpool_store::ConnectOptions;
use serde_json::json;
use sqlx::PgPool;

use crate::adopt::{adopted, in_zone, platform_books, platform_row};
use crate::midtrans::{refund_of, settlement_of, signed_fixture};

on_postgres!(
    a_refund_cancels_the_booking_in_the_platforms_words,
    a_lost_notification_is_reconciled_on_an_adopted_database,
);

async fn exec(pool: &PgPool, sql: &str) {
    sqlx::query(sql)
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("the platform's statement {sql} failed: {e}"));
}

async fn a_refund_cancels_the_booking_in_the_platforms_words(db: PlatformDb) {
    let platform = db.owner().await;
    assert!(adopted(&db, false).await.refused.is_empty());
    let t = TestApp::start_adopted(db.service_url(), &ConnectOptions::default(), in_zone).await;

    // Midtrans' refund.
    platform_books(&platform, "ORDER-RF1", 8, "09:00", 100_000).await;
    t.notify(settlement_of("ORDER-RF1")).await.settled();
    let paid = platform_row(&platform, "ORDER-RF1").await;
    assert_eq!((paid.0.as_str(), paid.1.as_str()), ("paid", "confirmed"));
    t.notify(refund_of("ORDER-RF1")).await.settled();
    let row = platform_row(&platform, "ORDER-RF1").await;
    assert_eq!(
        (row.0.as_str(), row.1.as_str(), row.2),
        ("refunded", "cancelled", None)
    );

    // An operator's refund by hand.
    platform_books(&platform, "ORDER-RF2", 8, "10:00", 100_000).await;
    t.notify(settlement_of("ORDER-RF2")).await.settled();
    let id = t
        .bookings("payment_status=paid&limit=100")
        .await
        .unwrap()
        .into_iter()
        .find(|b| b.order_id == "ORDER-RF2")
        .unwrap()
        .id;
    let refunded = t.set_payment_status(&id, "refunded").await.unwrap();
    assert_eq!(refunded.status, "cancelled");
    let row = platform_row(&platform, "ORDER-RF2").await;
    assert_eq!(
        (row.0.as_str(), row.1.as_str(), row.2),
        ("refunded", "cancelled", None)
    );

    // The platform's own refund, written as its code writes it: only its
    // payment_status.
    platform_books(&platform, "ORDER-RF3", 8, "11:00", 100_000).await;
    t.notify(settlement_of("ORDER-RF3")).await.settled();
    exec(
        &platform,
        "UPDATE bookings SET payment_status = 'refunded' WHERE order_id = 'ORDER-RF3'",
    )
    .await;
    eventually(
        "the platform's own refund cancels its booking",
        Duration::from_secs(10),
        || async {
            let row = platform_row(&platform, "ORDER-RF3").await;
            row.1 == "cancelled" && row.2.is_none()
        },
    )
    .await;
    let b = t
        .bookings("payment_status=refunded&limit=100")
        .await
        .unwrap()
        .into_iter()
        .find(|b| b.order_id == "ORDER-RF3")
        .expect("refunded for meetpool too");
    assert_eq!(b.status, "cancelled");

    // A partial refund keeps the session and its link...
    platform_books(&platform, "ORDER-RF4", 8, "12:00", 100_000).await;
    t.notify(settlement_of("ORDER-RF4")).await.settled();
    t.notify(signed_fixture(
        "partial-refund.json",
        json!({"order_id": "ORDER-RF4", "transaction_id": "txn-ORDER-RF4", "gross_amount": "100000.00"}),
    ))
    .await
    .settled();
    let row = platform_row(&platform, "ORDER-RF4").await;
    assert_eq!((row.0.as_str(), row.1.as_str()), ("paid", "confirmed"));
    assert!(row.2.is_some(), "a partial refund keeps the link");
    // ...until the platform cancels it.
    exec(
        &platform,
        "UPDATE bookings SET status = 'cancelled' WHERE order_id = 'ORDER-RF4'",
    )
    .await;
    eventually(
        "the platform's cancellation releases the link",
        Duration::from_secs(10),
        || async { platform_row(&platform, "ORDER-RF4").await.2.is_none() },
    )
    .await;
    assert_eq!(platform_row(&platform, "ORDER-RF4").await.1, "cancelled");
    platform.close().await;
}

async fn a_lost_notification_is_reconciled_on_an_adopted_database(db: PlatformDb) {
    let platform = db.owner().await;
    assert!(adopted(&db, false).await.refused.is_empty());
    let gateway = Gateway::start().await;
    let base = gateway.base.clone();
    let t = TestApp::start_adopted(db.service_url(), &ConnectOptions::default(), |c| {
        in_zone(c);
        c.midtrans_api_base = base;
        c.midtrans_reconcile = meetpool_app::parse_reconcile_schedule("1s").unwrap();
    })
    .await;

    // The platform's checkout books and the customer pays at Midtrans,
    // whose notification goes to the platform's old function.
    platform_books(&platform, "ORDER-LOST", 9, "15:00", 100_000).await;
    gateway.holds(settled("ORDER-LOST", "100000.00"));
    // Another customer has not chosen a payment method yet.
    platform_books(&platform, "ORDER-OPEN", 9, "16:00", 100_000).await;
    // A booking the platform made without an order id (not through
    // Midtrans): there is nothing to ask about.
    let no_order: String = sqlx::query_scalar(
        "INSERT INTO bookings (user_id, expert_id, session_type_id, booking_date, booking_time, \
           total_price) \
         SELECT user_id, expert_id, session_type_id, booking_date, '17:00', total_price \
         FROM bookings WHERE order_id = 'ORDER-OPEN' RETURNING id::text",
    )
    .fetch_one(&platform)
    .await
    .unwrap();

    eventually(
        "the lost payment is paid with its link",
        Duration::from_secs(10),
        || async {
            let row = platform_row(&platform, "ORDER-LOST").await;
            row.0 == "paid" && row.2.is_some()
        },
    )
    .await;
    let row = platform_row(&platform, "ORDER-LOST").await;
    assert_eq!((row.1.as_str(), row.4), ("confirmed", true));
    assert!(row.3.is_some(), "the platform's pages read the link's URL");
    eventually(
        "the open order is asked about again",
        Duration::from_secs(10),
        || async { gateway.asked_about("ORDER-OPEN") >= 2 },
    )
    .await;
    assert_eq!(gateway.asked_about(&no_order), 0);
    let open = platform_row(&platform, "ORDER-OPEN").await;
    assert_eq!((open.0.as_str(), open.2), ("waiting", None));
    assert_eq!(t.overlaps().await, 0);
    platform.close().await;
}
