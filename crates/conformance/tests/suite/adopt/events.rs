//! The platform's own writes as outbound events.
use meetpool_conformance::{test_events, PlatformDb, Receiver, TestApp};
use meetpool_store::ConnectOptions;

use super::{adopted, exec, in_zone, platform_books, platform_row};

on_postgres!(the_platforms_own_payment_reaches_the_events_endpoint);

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
