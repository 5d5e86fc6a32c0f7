//! What only PostgreSQL has: the previous system's SQL, run verbatim on our
//! schema, and replicas racing for the same links.
use std::collections::HashSet;

use futures_util::future::join_all;
use meetpool_conformance::{Backend, RawDb, TestApp};
use meetpool_store::{ConnectOptions, Coordination};
use reqwest::StatusCode;
use sqlx::{PgPool, Row};
use std::time::Duration;

const NO_LINKS: &str = "No available meeting links at this time. Please contact support.";

/// The previous system's document, from the shared folder beside the repo.
fn seed_document() -> String {
    let dir = std::env::var("MEETPOOL_SHARED_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared").to_owned());
    let path = format!("{dir}/seed/000_71ac2b8ca3130a49.txt");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("the seed document {path}: {e}"))
}

/// Every complete SQL statement in the seed document's ```sql blocks, keyed
/// by the heading above it. Fragments (a bare WHERE clause, `...`) are skipped.
fn seed_statements() -> Vec<(String, String)> {
    let doc = seed_document();
    let mut out = Vec::new();
    let mut heading = String::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        if line.starts_with('#') || line.starts_with("**") {
            heading = line
                .trim_matches(|c| c == '#' || c == '*' || c == ' ' || c == ':')
                .to_owned();
        }
        if line.trim() == "```sql" {
            let block: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            let sql = block.join("\n");
            let first = sql
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with("--"));
            let complete =
                first.is_some_and(|l| l.starts_with("INSERT") || l.starts_with("SELECT"));
            if complete && !sql.contains("...") {
                out.push((heading.clone(), sql));
            }
        }
    }
    out
}

fn statement(statements: &[(String, String)], heading: &str) -> String {
    statements
        .iter()
        .find(|(h, _)| h.contains(heading))
        .unwrap_or_else(|| panic!("no SQL under {heading:?} in the seed document"))
        .1
        .clone()
}

async fn pg() -> Option<TestApp> {
    TestApp::spawn_with(Backend::Postgres, |c| {
        c.set_timezone("Asia/Jakarta").unwrap();
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_documents_sql_runs_unchanged() {
    let Some(t) = pg().await else { return };
    let statements = seed_statements();
    assert_eq!(statements.len(), 7, "{statements:#?}");
    let RawDb::Pg(pool) = t.db.raw().await else {
        unreachable!()
    };
    t.session_type(60).await;

    // Adding links the way the previous system's operators did.
    let added = sqlx::query(&statement(&statements, "Adding More Links"))
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(added.rows_affected(), 2);
    let (_, links) = t.get("/api/links").await;
    assert_eq!(links.as_array().unwrap().len(), 2);

    // Test 1: a booking inserted by plain SQL gets its window from the
    // database, in the configured zone, and a link from the seed's call.
    let row: (uuid::Uuid, String) =
        sqlx::query_as(&statement(&statements, "Create test booking via SQL"))
            .fetch_one(&pool)
            .await
            .unwrap();
    let booking = t.get_booking(&row.0.to_string()).await;
    assert_eq!(booking["order_id"], row.1);
    assert_eq!(
        booking["starts_at"], "2025-12-01T07:00:00Z",
        "14:00 in Jakarta"
    );
    assert_eq!(booking["ends_at"], "2025-12-01T08:00:00Z");
    let (s, body) = t.assign(&row.0.to_string()).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["meetingLink"], "https://meet.google.com/new-link-1");

    // Test 2: two at the same time get different links.
    let rows: Vec<(uuid::Uuid, String)> =
        sqlx::query_as(&statement(&statements, "Create 2 bookings at SAME time"))
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 2);
    // The pool has two links and Test 1 holds one at 14:00: one of these
    // two gets the other link, the second gets the previous system's 409.
    let (s1, b1) = t.assign(&rows[0].0.to_string()).await;
    let (s2, b2) = t.assign(&rows[1].0.to_string()).await;
    assert_eq!(
        (s1, b1["meetingLink"].as_str()),
        (StatusCode::OK, Some("https://meet.google.com/new-link-2"))
    );
    assert_eq!(s2, StatusCode::CONFLICT, "{b2}");
    assert_eq!(b2["error"], NO_LINKS);

    // Test 3: different times may share a link.
    let rows: Vec<(uuid::Uuid, String)> = sqlx::query_as(&statement(
        &statements,
        "Create 2 bookings at DIFFERENT times",
    ))
    .fetch_all(&pool)
    .await
    .unwrap();
    let (_, a) = t.assign(&rows[0].0.to_string()).await;
    let (_, b) = t.assign(&rows[1].0.to_string()).await;
    assert_eq!(b["success"], true, "{b}");
    assert_eq!(a["success"], false, "14:00 is full: {a}");

    // The three monitoring queries.
    let status: (i64, i64) = sqlx::query_as(&statement(&statements, "Check Pool Status"))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, (2, 2));
    let recent = sqlx::query(&statement(&statements, "Check Recent Assignments"))
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        recent.len(),
        5,
        "the five paid bookings, assigned or not, as the query says"
    );
    let waiting = sqlx::query(&statement(&statements, "Find Bookings Without Links"))
        .fetch_all(&pool)
        .await
        .unwrap();
    let waiting: HashSet<String> = waiting
        .iter()
        .map(|r| r.get::<uuid::Uuid, _>("id").to_string())
        .collect();
    assert!(waiting.contains(&rows[0].0.to_string()));
    assert_eq!(waiting.len(), 2);
    assert_eq!(t.overlaps().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updated_at_is_kept_current_by_the_database() {
    let Some(t) = pg().await else { return };
    let id = t.add_link("https://meet.google.com/a").await;
    let RawDb::Pg(pool) = t.db.raw().await else {
        unreachable!()
    };
    let before: (String,) = sqlx::query_as("SELECT updated_at::text FROM meeting_links_pool")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query(&format!(
        "UPDATE meeting_links_pool SET notes = 'x' WHERE id = '{id}'"
    ))
    .execute(&pool)
    .await
    .unwrap();
    let after: (String,) = sqlx::query_as("SELECT updated_at::text FROM meeting_links_pool")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(after.0 > before.0, "{before:?} -> {after:?}");
}

/// Two replicas, 200 paid bookings whose sessions all overlap, 10 links,
/// 200 concurrent assign calls split between the replicas.
async fn race(starts: &[(&str, &str)], minutes: i64) {
    race_with(starts, minutes, Coordination::HourLocks).await
}

async fn race_with(starts: &[(&str, &str)], minutes: i64, coordination: Coordination) {
    let Some(seed) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let options = ConnectOptions {
        coordination,
        ..ConnectOptions::default()
    };
    let one = seed.replica_with(&options).await;
    let two = seed.replica_with(&options).await;
    for i in 0..10 {
        one.add_link(&format!("https://meet.google.com/race-{i}"))
            .await;
    }
    let st = one.session_type(minutes).await;
    let mut ids = Vec::new();
    for i in 0..200 {
        let (date, time) = starts[i % starts.len()];
        ids.push(
            one.booking(&st, date, time, "pending").await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // Paid behind the service's back, so that nothing is assigned yet.
    let raw = one.db.raw().await;
    assert_eq!(
        raw.execute("UPDATE bookings SET payment_status = 'paid'")
            .await
            .unwrap(),
        200
    );

    let calls = ids.iter().enumerate().map(|(i, id)| {
        let app = if i % 2 == 0 { &one } else { &two };
        app.assign(id)
    });
    let answers = join_all(calls).await;
    let won: Vec<&serde_json::Value> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .map(|(_, b)| b)
        .collect();
    let lost = answers
        .iter()
        .filter(|(s, b)| {
            *s == StatusCode::CONFLICT
                && b["error"] == NO_LINKS
                && b["requiresManualAssignment"] == true
        })
        .count();
    assert_eq!(won.len(), 10, "{answers:?}");
    assert_eq!(lost, 190);
    let distinct: HashSet<&str> = won
        .iter()
        .map(|b| b["meetingLinkId"].as_str().unwrap())
        .collect();
    assert_eq!(distinct.len(), 10);
    let pairs = raw
        .column(
            "SELECT count(*)::text FROM bookings a JOIN bookings b \
             ON a.meeting_link_id = b.meeting_link_id AND a.id < b.id AND a.busy && b.busy",
        )
        .await
        .unwrap();
    assert_eq!(pairs, vec![Some("0".to_owned())]);
    assert_eq!(one.overlaps().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_racing_for_one_slot_never_double_book() {
    race(&[("2027-12-01", "14:00")], 60).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_racing_for_overlapping_unequal_windows_never_double_book() {
    let starts = [
        ("2027-12-01", "14:00"),
        ("2027-12-01", "14:10"),
        ("2027-12-01", "14:25"),
        ("2027-12-01", "14:40"),
        ("2027-12-01", "14:55"),
    ];
    race(&starts, 60).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_racing_across_midnight_never_double_book() {
    let starts = [
        ("2027-12-01", "23:30"),
        ("2027-12-01", "23:50"),
        ("2027-12-02", "00:10"),
        ("2027-12-02", "00:25"),
    ];
    race(&starts, 60).await;
}

/// Without the hour locks, the exclusion constraint alone refuses every
/// loser of a race, which retries on the next link: still exactly ten.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_constraint_alone_never_double_books_under_the_race() {
    let starts = [
        ("2027-12-01", "14:00"),
        ("2027-12-01", "14:20"),
        ("2027-12-01", "14:40"),
    ];
    race_with(&starts, 60, Coordination::ConstraintOnly).await;
}

/// The production flow under the same race: 200 signed settlement
/// notifications for bookings in one slot, split between two replicas,
/// 10 links. Every payment is kept; exactly ten bookings get links.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_racing_settlements_never_double_book_and_keep_every_payment() {
    let Some(one) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let two = one.replica().await;
    for i in 0..10 {
        one.add_link(&format!("https://meet.google.com/pay-{i}"))
            .await;
    }
    let st = one.session_type(60).await;
    let starts = ["14:00", "14:15", "14:30", "14:45"];
    let mut orders = Vec::new();
    for i in 0..200 {
        let order = format!("RACE-{i}");
        one.booking_with_order(&order, &st, "2027-12-01", starts[i % 4], "pending")
            .await;
        orders.push(order);
    }
    let calls = orders.iter().enumerate().map(|(i, order)| {
        let app = if i % 2 == 0 { &one } else { &two };
        let signature = meetpool_domain::midtrans::signature(
            order,
            "200",
            "100000.00",
            meetpool_conformance::MIDTRANS_KEY,
        );
        let body = serde_json::json!({
            "order_id": order, "status_code": "200", "gross_amount": "100000.00",
            "signature_key": signature, "transaction_status": "settlement",
            "transaction_id": format!("txn-{i}"), "fraud_status": "accept",
        });
        app.post_raw("/webhooks/midtrans", body.to_string())
    });
    let answers = join_all(calls).await;
    assert!(
        answers
            .iter()
            .all(|(s, b)| *s == StatusCode::OK && b["paymentStatus"] == "paid"),
        "{answers:?}"
    );
    let linked: Vec<&str> = answers
        .iter()
        .filter_map(|(_, b)| b["meetingLink"].as_str())
        .collect();
    assert_eq!(linked.len(), 10);
    assert_eq!(linked.iter().collect::<HashSet<_>>().len(), 10);
    let waiting = answers
        .iter()
        .filter(|(_, b)| b["requiresManualAssignment"] == true)
        .count();
    assert_eq!(waiting, 190);
    let (_, status) = one.get("/api/pool/status").await;
    assert_eq!(status["unassigned_paid_bookings"], 190);
    assert_eq!(one.overlaps().await, 0);
}

/// An operator's long transaction, holding up every settlement (they all
/// remember their notifications) until it ends.
async fn hold_settlements(pool: &PgPool) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut hold = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE payment_notifications IN SHARE MODE")
        .execute(&mut *hold)
        .await
        .unwrap();
    hold
}

/// Returns once a settlement waits for [`hold_settlements`]' lock, and the
/// notifications posted with it have had the time to arrive and queue.
async fn until_held_up(pool: &PgPool) {
    let give_up = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            std::time::Instant::now() < give_up,
            "no settlement waited for the operator's lock within a minute"
        );
        let blocked: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks \
             WHERE NOT granted AND relation = 'payment_notifications'::regclass",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if blocked > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// Notifications that arrive while the database is busy queue up and are
/// settled together, several to a transaction: each paid booking's row
/// shows the transaction that paid it (`xmin`), and the statement of that
/// transaction that wrote it (`cmin`): one for all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_queued_behind_a_busy_database_share_transactions() {
    let Some(t) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    for i in 0..8 {
        t.add_link(&format!("https://meet.google.com/queue-{i}"))
            .await;
    }
    // Eight at 09:00 for the eight links, eight at hours of their own.
    let ids = crate::midtrans::burst_bookings(&t, 16, 8).await;
    let RawDb::Pg(pool) = t.db.raw().await else {
        unreachable!("a PostgreSQL test")
    };
    let hold = hold_settlements(&pool).await;
    let bodies: Vec<(String, Vec<u8>)> = ids
        .keys()
        .map(|order| (order.clone(), crate::midtrans::settlement_of(order)))
        .collect();
    let posting = {
        let t = &t;
        async move { crate::midtrans::burst(t, &bodies).await }
    };
    let waiting = async {
        until_held_up(&pool).await;
        hold.commit().await.unwrap();
    };
    let (answers, ()) = tokio::join!(posting, waiting);
    let mut at_nine = HashSet::new();
    for (order, (status, answer)) in ids.keys().zip(&answers) {
        assert_eq!(*status, StatusCode::OK, "{answer}");
        assert_eq!(answer["paymentStatus"], "paid", "{answer}");
        let link = answer["meetingLink"]
            .as_str()
            .expect("every booking gets a link");
        if order.as_str() < "BURST-08" {
            at_nine.insert(link.to_owned());
        }
    }
    assert_eq!(at_nine.len(), 8, "{at_nine:?}");
    let (transactions, statements): (i64, i64) = sqlx::query_as(
        "SELECT count(DISTINCT xmin::text), count(DISTINCT (xmin::text, cmin::text)) \
         FROM bookings WHERE payment_status = 'paid'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(answers.len(), 16);
    assert!(
        transactions < 8,
        "16 queued notifications took {transactions} transactions"
    );
    assert_eq!(
        statements, transactions,
        "each transaction writes its bookings in one statement"
    );
    assert_eq!(t.overlaps().await, 0);
}

/// A notification settled in a group sees what the group's earlier
/// notifications did to its booking, even through another booking: a
/// refund hands its link to a waiting booking, whose own refund, later in
/// the same transaction, takes the link back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_sees_the_link_its_earlier_refund_handed_on() {
    use crate::midtrans::{post_in_background, refund_of, settlement_of};
    let Some(t) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let link = "https://meet.google.com/handed-on";
    t.add_link(link).await;
    let st = t.session_type(60).await;
    let day = "2027-12-01";
    let holder = t
        .booking_with_order("HOLDER", &st, day, "09:00", "pending")
        .await;
    let waiter = t
        .booking_with_order("WAITER", &st, day, "09:30", "pending")
        .await;
    let (holder, waiter) = (
        holder["id"].as_str().unwrap(),
        waiter["id"].as_str().unwrap(),
    );
    let (_, paid) = post_in_background(&t, &settlement_of("HOLDER"))
        .await
        .unwrap();
    assert_eq!(paid["meetingLink"], link, "{paid}");
    let (_, waits) = post_in_background(&t, &settlement_of("WAITER"))
        .await
        .unwrap();
    assert_eq!(waits["paymentStatus"], "paid", "{waits}");
    assert_eq!(waits["meetingLink"], serde_json::Value::Null, "{waits}");
    // Settlements on other days keep the runners busy, so that both refunds
    // queue up behind them and are settled in one group, in order.
    let mut others = Vec::new();
    for i in 0..8 {
        let order = format!("OTHER-{i}");
        t.booking_with_order(
            &order,
            &st,
            &format!("2027-12-{:02}", 10 + i),
            "09:00",
            "pending",
        )
        .await;
        others.push(order);
    }
    let RawDb::Pg(pool) = t.db.raw().await else {
        unreachable!("a PostgreSQL test")
    };
    let hold = hold_settlements(&pool).await;
    let busy: Vec<_> = others
        .iter()
        .map(|order| post_in_background(&t, &settlement_of(order)))
        .collect();
    until_held_up(&pool).await;
    let first = post_in_background(&t, &refund_of("HOLDER"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = post_in_background(&t, &refund_of("WAITER"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    hold.commit().await.unwrap();
    for post in busy {
        assert_eq!(post.await.unwrap().0, StatusCode::OK);
    }
    let (status, refunded) = first.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{refunded}");
    let (status, refunded) = second.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{refunded}");
    assert_eq!(refunded["paymentStatus"], "refunded", "{refunded}");
    assert_eq!(
        refunded["meetingLink"],
        serde_json::Value::Null,
        "{refunded}"
    );

    let together: bool = sqlx::query_scalar(
        "SELECT count(DISTINCT xmin::text) = 1 FROM bookings WHERE order_id IN ('HOLDER', 'WAITER')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(together, "both refunds were settled in one transaction");
    for id in [holder, waiter] {
        let now = t.get_booking(id).await;
        assert_eq!(now["payment_status"], "refunded", "{now}");
        assert_eq!(now["meeting_link"], serde_json::Value::Null, "{now}");
    }
    let kinds = meetpool_conformance::event_kinds(&t, waiter).await;
    let handed: Vec<&str> = kinds
        .iter()
        .map(String::as_str)
        .filter(|k| matches!(*k, "assigned" | "released"))
        .collect();
    assert_eq!(handed, ["assigned", "released"], "{kinds:?}");
    assert_eq!(t.overlaps().await, 0);
}
