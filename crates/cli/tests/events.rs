//! Outbound events from the binary: `meetpool serve` killed (SIGKILL) in the
//! middle of a delivery loses nothing, and `meetpool events` shows and
//! retries the log.
mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{eventually, Server};
use meetpool_conformance::{runs_on, Answer, Backend, Receiver, TestDb, EVENTS_SECRET};
use serde_json::{json, Value};

const TOKEN: &str = "events-admin-token";

fn sqlite(dir: &Path) -> String {
    format!("sqlite:{}", dir.join("events.db").display())
}

fn meetpool(dir: &Path, receiver: &str) -> Command {
    meetpool_on(dir, &sqlite(dir), receiver)
}

fn meetpool_on(dir: &Path, db: &str, receiver: &str) -> Command {
    let mut cmd = common::meetpool();
    cmd.current_dir(dir)
        .env("DATABASE_URL", db)
        .env("MEETPOOL_ADMIN_TOKEN", TOKEN)
        .env("MEETPOOL_EVENTS_URL", receiver)
        .env("MEETPOOL_EVENTS_SECRET", EVENTS_SECRET)
        .env("MEETPOOL_EVENTS_TIMEOUT", "1s")
        .env("MEETPOOL_EVENTS_RETRY", "100ms,100ms,100ms")
        .env("RUST_LOG", "warn");
    cmd
}

/// `meetpool serve` on `db`, ready.
async fn serve(dir: &Path, db: &str, receiver: &str) -> Server {
    let server =
        common::start(meetpool_on(dir, db, receiver).arg("serve")).expect("meetpool serve starts");
    server.ready().await;
    server
}

fn run(dir: &Path, db: &str, receiver: &str, args: &[&str]) -> Output {
    meetpool_on(dir, db, receiver).args(args).output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_in_flight_when_the_server_is_killed_is_delivered_after_the_restart_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    killed_mid_delivery(dir.path(), &sqlite(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_in_flight_when_the_server_is_killed_is_delivered_after_the_restart_postgres() {
    if !runs_on(Backend::Postgres).await {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::create(Backend::Postgres).await;
    killed_mid_delivery(dir.path(), &db.url).await;
}

async fn killed_mid_delivery(dir: &Path, db: &str) {
    let receiver = Receiver::start().await;
    // The first attempt never gets an answer: the server dies holding it.
    receiver.script([Answer::Hang]);
    let http = reqwest::Client::new();
    let server = serve(dir, db, &receiver.url).await;
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
    post(
        "/api/links",
        json!({"meeting_link": "https://meet.google.com/aaa-aaaa-aaa"}),
    )
    .await
    .unwrap();
    let booking: Value = post(
        "/api/bookings",
        json!({"order_id": "EV-1", "user_id": "u", "expert_id": "e", "session_type_id": st["id"],
               "booking_date": "2031-06-03", "booking_time": "10:00", "price": 100000,
               "payment_status": "paid"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();

    let first = receiver
        .wait_until("the first attempt", |a| !a.is_empty())
        .await;
    server.stop();

    let server = serve(dir, db, &receiver.url).await;
    let base = server.base();
    let got = receiver.wait_for_accepted(1).await;
    // Recorded as delivered (an answer not yet recorded would be sent again).
    eventually("recorded as delivered", Duration::from_secs(30), || async {
        let delivered: Value = http
            .get(format!("{base}/api/events/deliveries?status=delivered"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        delivered.as_array().is_some_and(|d| d.len() == 1)
    })
    .await;
    server.stop();
    assert_eq!(got[0].id, first[0].id, "the same event, sent again");
    assert_eq!(got[0].kind(), "booking.link_assigned");
    assert_eq!(got[0].booking_id(), booking["id"].as_str());
    assert!(got[0].verified);

    let out = run(dir, db, &receiver.url, &["events", "list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(log.as_array().unwrap().len(), 1, "{log}");
    assert_eq!(log[0]["status"], json!("delivered"));
    assert_eq!(log[0]["id"], json!(got[0].id));

    let failed = run(dir, db, &receiver.url, &["events", "list", "--failed"]);
    assert!(failed.status.success());
    let table = String::from_utf8(failed.stdout).unwrap();
    assert!(table.contains("(none)"), "{table}");

    let again = run(dir, db, &receiver.url, &["events", "retry", &got[0].id]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("delivered already"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let unknown = run(dir, db, &receiver.url, &["events", "retry", "evt_none"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("event not found"));
}

#[test]
fn an_events_url_without_a_secret_or_with_a_bad_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = meetpool(dir.path(), "http://127.0.0.1:9/hooks")
        .env_remove("MEETPOOL_EVENTS_SECRET")
        .args(["events", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("MEETPOOL_EVENTS_SECRET is not"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = meetpool(dir.path(), "http://127.0.0.1:9/hooks")
        .env("MEETPOOL_EVENTS_SECRET", "not-a-whsec")
        .args(["events", "list"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("whsec_"));
    let out = meetpool(dir.path(), "http://127.0.0.1:9/hooks")
        .env("MEETPOOL_EVENTS_RETRY", "5s,soon")
        .args(["events", "list"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("MEETPOOL_EVENTS_RETRY"));
}
