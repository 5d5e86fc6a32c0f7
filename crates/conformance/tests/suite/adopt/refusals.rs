//! Before anything changes: the dry run reports and changes nothing, and
//! adoption refuses what it cannot take in.
use meetpool_conformance::PlatformDb;
use meetpool_store::postgres::adoption::adopt;

use super::{adopted, exec, options, LINK_1};

on_postgres!(
    a_dry_run_reports_what_adoption_would_do_and_changes_nothing,
    adoption_refuses_a_state_with_no_value_in_the_platforms_columns,
    adoption_refuses_an_unsafe_link_in_the_platforms_pool,
);

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
