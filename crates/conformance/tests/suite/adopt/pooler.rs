//! Two replicas through a real PgBouncer in transaction mode.
use std::time::Duration;

use meetpool_conformance::{eventually, test_events, PgBouncer, PlatformDb, Receiver, TestApp};
use meetpool_store::ConnectOptions;

use super::{adopted, exec, in_zone, platform_books, platform_row};
use crate::midtrans::settlement_of;

on_postgres!(two_replicas_behind_a_transaction_pooler_race_without_overlap);

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
