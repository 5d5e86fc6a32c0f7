//! Faults lose nothing: `meetpool serve` is killed (SIGKILL) while payment
//! notifications are in flight, restarted on the same database, and every
//! notification is delivered again, as Midtrans does until it gets a 2xx.
//! Every payment ends applied exactly once and no link is double-booked.
mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{eventually, Server};
use futures_util::future::join_all;
use serde_json::{json, Value};

const TOKEN: &str = "crash-admin-token";
const KEY: &str = "SB-Mid-server-crash";

/// `meetpool serve` on the test's database, ready.
async fn serve(dir: &Path) -> Server {
    let server = common::start(
        common::meetpool()
            .arg("serve")
            .current_dir(dir)
            .env(
                "DATABASE_URL",
                format!("sqlite:{}", dir.join("crash.db").display()),
            )
            .env("MEETPOOL_ADMIN_TOKEN", TOKEN)
            .env("MIDTRANS_SERVER_KEY", KEY)
            // Every notification is redelivered here: nothing to reconcile.
            .env("MEETPOOL_MIDTRANS_RECONCILE", "off"),
    )
    .expect("meetpool serve starts");
    server.ready().await;
    server
}

fn settlement(order: &str, i: usize) -> String {
    let sig = meetpool_domain::midtrans::signature(order, "200", "100000.00", KEY);
    json!({
        "order_id": order, "status_code": "200", "gross_amount": "100000.00", "signature_key": sig,
        "transaction_status": "settlement", "transaction_id": format!("txn-{i}"), "fraud_status": "accept",
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_loses_no_payment_and_applies_none_twice() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let server = serve(dir.path()).await;
    let base = server.base();

    let post = |path: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    let st: Value = post("/api/session-types", json!({"name": "s", "duration": 60}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for i in 0..5 {
        post(
            "/api/links",
            json!({"meeting_link": format!("https://meet.example/{i}")}),
        )
        .await
        .unwrap();
    }
    let orders: Vec<String> = (0..120).map(|i| format!("CRASH-{i}")).collect();
    for (i, order) in orders.iter().enumerate() {
        let res = post(
            "/api/bookings",
            json!({"order_id": order, "user_id": "u", "expert_id": "e", "session_type_id": st["id"],
                   "booking_date": "2027-12-01", "booking_time": format!("{:02}:00", 8 + i % 10), "price": 100000}),
        )
        .await
        .unwrap();
        assert_eq!(res.status(), 201);
    }

    // All notifications at once; the server is killed while they are in flight.
    let deliver = |base: &str, order: &String, i: usize| {
        http.post(format!("{base}/webhooks/midtrans"))
            .body(settlement(order, i))
            .timeout(Duration::from_secs(20))
            .send()
    };
    let done = AtomicUsize::new(0);
    let in_flight = join_all(orders.iter().enumerate().map(|(i, o)| {
        let (done, base) = (&done, &base);
        async move {
            let r = deliver(base, o, i).await;
            done.fetch_add(1, Ordering::SeqCst);
            r
        }
    }));
    // Killed once the first answers are back, with most still in flight.
    let killer = async {
        eventually(
            "the first answers are back",
            Duration::from_secs(60),
            || async { done.load(Ordering::SeqCst) >= 10 },
        )
        .await;
        server.stop();
    };
    let (answers, ()) = tokio::join!(in_flight, killer);
    let acknowledged = answers
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|r| r.status() == 200))
        .count();
    assert!(
        acknowledged < orders.len(),
        "the kill came too late to interrupt anything"
    );

    // Restart on the same file; Midtrans delivers again everything, the
    // acknowledged ones included (a duplicate must change nothing).
    let server = serve(dir.path()).await;
    let base = server.base();
    let again = join_all(orders.iter().enumerate().map(|(i, o)| deliver(&base, o, i))).await;
    for r in &again {
        assert_eq!(r.as_ref().unwrap().status(), 200);
    }

    let get = |path: String| {
        let request = http.get(format!("{base}{path}")).bearer_auth(TOKEN);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let list = get("/api/bookings?limit=1000".to_owned()).await;
    let mut linked = 0;
    for order in &orders {
        let b = list
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["order_id"] == order.as_str())
            .unwrap();
        assert_eq!(b["payment_status"], "paid", "{order} lost its payment");
        let events = get(format!(
            "/api/bookings/{}/events",
            b["id"].as_str().unwrap()
        ))
        .await;
        let payments = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "payment")
            .count();
        assert_eq!(
            payments, 1,
            "{order}: the payment was applied {payments} times"
        );
        linked += usize::from(b["meeting_link"].is_string());
    }
    // 12 bookings in each of 10 hours, 5 links: 5 per hour hold a link;
    // more would mean a link held twice at once, fewer a link left idle.
    assert_eq!(linked, 50);
    server.stop();

    // The rest wait in the unassigned queue, as the CLI reports it.
    let db = dir.path().join("crash.db");
    let out = common::meetpool()
        .args(["status", "--json"])
        .env("DATABASE_URL", format!("sqlite:{}", db.display()))
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["unassigned_paid_bookings"], 70);
}
