//! A database that disappears under load answers 503, never 500: payment
//! notifications (so that Midtrans retries them), admin routes and
//! readiness alike; and the service recovers by itself once the database
//! is back.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use meetpool_conformance::{eventually, TestApp, MIDTRANS_KEY};
use reqwest::StatusCode;
use serde_json::json;

on_postgres!(a_database_dropped_under_load_answers_503_never_500);

async fn a_database_dropped_under_load_answers_503_never_500(t: TestApp) {
    let schema =
        t.db.url
            .split("search_path%3D")
            .nth(1)
            .and_then(|s| s.split("%2C").next())
            .expect("the test database's schema")
            .to_owned();
    let st = t.create_session_type(60).await;
    t.add_link("https://meet.google.com/abc-defg-hij").await;
    let orders: Vec<String> = (0..300).map(|i| format!("OUTAGE-{i}")).collect();
    for (i, order) in orders.iter().enumerate() {
        let time = format!("{:02}:00", 8 + i % 10);
        t.create_booking_with_order(order, &st, "2030-05-06", &time, "pending")
            .await;
    }
    let notify = |order: &str| {
        let sig = meetpool_domain::midtrans::signature(order, "200", "100000.00", MIDTRANS_KEY);
        let body = json!({
            "order_id": order, "status_code": "200", "gross_amount": "100000.00",
            "signature_key": sig, "transaction_status": "settlement",
            "transaction_id": format!("txn-{order}"), "fraud_status": "accept",
        });
        t.post_raw("/webhooks/midtrans", body.to_string())
    };

    // The schema is dropped while the notifications arrive, eight at a
    // time, once some have been answered.
    let raw = t.db.raw().await;
    let answered = AtomicUsize::new(0);
    let drop = async {
        eventually(
            "40 notifications answered",
            Duration::from_secs(60),
            || async { answered.load(Ordering::Relaxed) >= 40 },
        )
        .await;
        // The drop may lose a deadlock to the service's transactions: the
        // operator tries again.
        let mut tries = 0;
        while let Err(e) = raw.execute(&format!("DROP SCHEMA {schema} CASCADE")).await {
            tries += 1;
            assert!(tries < 50, "the schema could not be dropped: {e}");
        }
    };
    let sending = futures_util::stream::iter(orders.iter().map(|o| {
        let answered = &answered;
        let sent = notify(o);
        async move {
            let answer = sent.await;
            answered.fetch_add(1, Ordering::Relaxed);
            answer
        }
    }))
    .buffer_unordered(8)
    .collect::<Vec<_>>();
    let (answers, ()) = tokio::join!(sending, drop);
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    for (s, body) in &answers {
        *by_status.entry(s.as_u16()).or_default() += 1;
        assert!(
            *s == StatusCode::OK || *s == StatusCode::SERVICE_UNAVAILABLE,
            "{s}: {body}"
        );
    }
    assert!(
        by_status.contains_key(&503),
        "the drop came too late to be seen: {by_status:?}"
    );

    // With the database gone, every route says so with 503.
    for (s, body) in [
        t.get("/api/links").await,
        t.get("/api/bookings").await,
        t.get("/api/pool/status").await,
        t.post(
            "/api/links",
            json!({"meeting_link": "https://meet.google.com/xyz-abcd-efg"}),
        )
        .await,
        notify("OUTAGE-0").await,
    ] {
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    }
    assert_eq!(
        t.http.get(t.url("/readyz")).send().await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );

    // Recreated and migrated: the running service works again.
    raw.execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    t.app.prepare_database(false).await.unwrap();
    let (s, links) = t.get("/api/links").await;
    assert_eq!((s, links), (StatusCode::OK, json!([])));
    let (s, body) = notify("OUTAGE-0").await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "an order the new database does not know: {body}"
    );
}

on_postgres!(a_busy_pool_answers_unavailable_after_the_acquire_timeout);

/// Every connection taken: a read waits for the acquire timeout, then the
/// database counts as unavailable (503 at the HTTP layer), not a hang.
/// (SQLite keeps a reader beside its one writer, so one transaction never
/// takes every connection there.)
async fn a_busy_pool_answers_unavailable_after_the_acquire_timeout(
    db: meetpool_conformance::TestDb,
) {
    let options = meetpool_store::ConnectOptions {
        max_connections: 1,
        acquire_timeout: std::time::Duration::from_millis(300),
        ..Default::default()
    };
    let store = meetpool_store::connect(&db.url, &options).await.unwrap();
    store.migrate().await.unwrap();
    let held = store.begin().await.unwrap();
    let started = std::time::Instant::now();
    let waited = store.links().await;
    assert!(
        matches!(waited, Err(meetpool_store::StoreError::Unavailable(_))),
        "{waited:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    drop(held);
    assert!(store.links().await.is_ok());
}
