//! `meetpool payments reconcile` against a local Midtrans status API: a dry
//! run says what Midtrans reports and what would change, changing nothing;
//! the pass applies it as the notifications would have been.
mod common;

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use common::eventually;
use meetpool_app::{App, BookingInput, Config, SessionTypeInput};
use meetpool_conformance::{in_status, settled, Gateway, MIDTRANS_KEY};
use meetpool_store::ConnectOptions;
use serde_json::Value;

fn db_url(dir: &Path) -> String {
    format!("sqlite:{}", dir.join("pay.db").display())
}

async fn meetpool(dir: &Path, gateway: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = common::meetpool();
    cmd.args(args)
        .current_dir(dir)
        .env("DATABASE_URL", db_url(dir))
        .env_remove("MIDTRANS_SERVER_KEY")
        .env("RUST_LOG", "warn");
    if let Some(base) = gateway {
        cmd.env("MIDTRANS_SERVER_KEY", MIDTRANS_KEY)
            .env("MIDTRANS_API_BASE", base);
    }
    tokio::task::spawn_blocking(move || cmd.output().expect("run meetpool"))
        .await
        .unwrap()
}

async fn ok(dir: &Path, gateway: Option<&str>, args: &[&str]) -> String {
    let out = meetpool(dir, gateway, args).await;
    assert!(
        out.status.success(),
        "meetpool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The check of `order` in a pass's JSON.
fn check<'a>(pass: &'a Value, order: &str) -> &'a Value {
    pass.as_array()
        .unwrap()
        .iter()
        .find(|c| c["order_id"] == order)
        .unwrap_or_else(|| panic!("{order} not checked: {pass}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_reconciles_pending_payments_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gateway = Gateway::start().await;
    let base = gateway.base.clone();
    ok(d, None, &["migrate"]).await;
    ok(
        d,
        None,
        &["links", "add", "https://meet.google.com/kcw-ebey-pqu"],
    )
    .await;

    // The platform's bookings, made through the service.
    let store = meetpool_store::connect(&db_url(d), &ConnectOptions::default())
        .await
        .unwrap();
    let app = App::new(Arc::from(store), Config::new("UTC").unwrap());
    let st = app
        .create_session_type(SessionTypeInput {
            name: Some("Consultation".into()),
            duration: Some(60),
            price: Some(100_000),
        })
        .await
        .unwrap();
    for (order, time) in [
        ("ORDER-PAID", "09:00"),
        ("ORDER-OPEN", "11:00"),
        ("ORDER-GONE", "13:00"),
    ] {
        app.create_booking(BookingInput {
            order_id: order.into(),
            user_id: "user-1".into(),
            expert_id: "expert-1".into(),
            session_type_id: st.id.to_string(),
            booking_date: "2027-12-01".into(),
            booking_time: time.into(),
            price: 100_000,
            payment_status: None,
            status: None,
            hold: false,
        })
        .await
        .unwrap();
    }
    // Paid at Midtrans (the notification was lost), not chosen yet, expired.
    gateway.holds(settled("ORDER-PAID", "100000.00"));
    gateway.holds(in_status("ORDER-GONE", "100000.00", "expire"));

    // A dry run: what Midtrans says and what would change; nothing does.
    let dry: Value = serde_json::from_str(
        &ok(
            d,
            Some(&base),
            &["payments", "reconcile", "--dry-run", "--json"],
        )
        .await,
    )
    .unwrap();
    let paid = check(&dry, "ORDER-PAID");
    assert_eq!(
        (&paid["midtrans_status"], &paid["outcome"], &paid["then"]),
        (
            &Value::from("settlement"),
            &Value::from("would_apply"),
            &Value::from("paid")
        ),
        "{dry}"
    );
    assert_eq!(check(&dry, "ORDER-OPEN")["outcome"], "not_found");
    assert_eq!(check(&dry, "ORDER-GONE")["then"], "expired");
    for order in ["ORDER-PAID", "ORDER-OPEN", "ORDER-GONE"] {
        let b = app.store().booking_by_order(order).await.unwrap();
        assert_eq!(b.payment_status.as_str(), "pending", "{order}");
    }
    let table = ok(d, Some(&base), &["payments", "reconcile", "--dry-run"]).await;
    assert!(
        table.contains("ORDER-PAID") && table.contains("would_apply"),
        "{table}"
    );
    assert!(table.contains("dry run: nothing changed"), "{table}");

    // The pass: applied as the notifications would have been.
    let pass: Value =
        serde_json::from_str(&ok(d, Some(&base), &["payments", "reconcile", "--json"]).await)
            .unwrap();
    assert_eq!(check(&pass, "ORDER-PAID")["outcome"], "applied", "{pass}");
    assert_eq!(check(&pass, "ORDER-OPEN")["outcome"], "not_found");
    assert_eq!(check(&pass, "ORDER-GONE")["outcome"], "applied");
    let paid = app.store().booking_by_order("ORDER-PAID").await.unwrap();
    assert_eq!(paid.payment_status.as_str(), "paid");
    assert!(paid.meeting_link_id.is_some(), "{paid:?}");
    let trail = app.store().events(paid.id).await.unwrap();
    let payment = trail.iter().find(|e| e.kind == "payment").unwrap();
    assert_eq!(payment.detail["source"], "reconciliation");
    let gone = app.store().booking_by_order("ORDER-GONE").await.unwrap();
    assert_eq!(gone.payment_status.as_str(), "expired");

    // Again: only the open order is left to ask about.
    let again: Value =
        serde_json::from_str(&ok(d, Some(&base), &["payments", "reconcile", "--json"]).await)
            .unwrap();
    assert_eq!(again.as_array().unwrap().len(), 1, "{again}");
    assert_eq!(again[0]["order_id"], "ORDER-OPEN");

    // Without a server key there is no one to ask.
    let refused = meetpool(d, None, &["payments", "reconcile"]).await;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("MIDTRANS_SERVER_KEY"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reconciles_on_its_schedule_and_refuses_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gateway = Gateway::start().await;
    ok(d, None, &["migrate"]).await;
    ok(
        d,
        None,
        &["links", "add", "https://meet.google.com/kcw-ebey-pqu"],
    )
    .await;
    let store = meetpool_store::connect(&db_url(d), &ConnectOptions::default())
        .await
        .unwrap();
    let app = App::new(Arc::from(store), Config::new("UTC").unwrap());
    let st = app
        .create_session_type(SessionTypeInput {
            name: Some("Consultation".into()),
            duration: Some(60),
            price: Some(100_000),
        })
        .await
        .unwrap();
    app.create_booking(BookingInput {
        order_id: "ORDER-LOST".into(),
        user_id: "user-1".into(),
        expert_id: "expert-1".into(),
        session_type_id: st.id.to_string(),
        booking_date: "2027-12-01".into(),
        booking_time: "09:00".into(),
        price: 100_000,
        payment_status: None,
        status: None,
        hold: false,
    })
    .await
    .unwrap();
    gateway.holds(settled("ORDER-LOST", "100000.00"));

    // A schedule that does not parse is refused, naming the setting.
    let mut bad = common::meetpool();
    bad.arg("serve")
        .current_dir(d)
        .env("DATABASE_URL", db_url(d))
        .env("MIDTRANS_SERVER_KEY", MIDTRANS_KEY)
        .env("MEETPOOL_MIDTRANS_RECONCILE", "every minute")
        .env("MEETPOOL_LISTEN", "127.0.0.1:0");
    let refused = tokio::task::spawn_blocking(move || bad.output().unwrap())
        .await
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("MEETPOOL_MIDTRANS_RECONCILE"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // The service asks Midtrans on its own, and the lost payment is paid.
    let serve = common::start(
        common::meetpool()
            .arg("serve")
            .current_dir(d)
            .env("DATABASE_URL", db_url(d))
            .env("MEETPOOL_ADMIN_TOKEN", "reconcile-admin-token")
            .env("MIDTRANS_SERVER_KEY", MIDTRANS_KEY)
            .env("MIDTRANS_API_BASE", &gateway.base)
            .env("MEETPOOL_MIDTRANS_RECONCILE", "1s"),
    )
    .expect("meetpool serve starts");
    eventually(
        "the lost payment is paid",
        Duration::from_secs(20),
        || async {
            let b = app.store().booking_by_order("ORDER-LOST").await.unwrap();
            b.payment_status.as_str() == "paid"
        },
    )
    .await;
    let paid = app.store().booking_by_order("ORDER-LOST").await.unwrap();
    serve.stop();
    assert_eq!(paid.payment_status.as_str(), "paid", "{paid:?}");
    assert!(paid.meeting_link_id.is_some());
    assert!(gateway.asked_about("ORDER-LOST") >= 1);
}
