//! What only PostgreSQL has: the previous system's SQL, run verbatim on our
//! schema, replicas racing for the same links, and the transactions that
//! settle queued notifications, seen through `xmin`.
use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use meetpool_conformance::{AssignAnswer, Backend, RawDb, TestApp, WebhookAnswer};
use meetpool_store::{ConnectOptions, Coordination};
use reqwest::StatusCode;
use sqlx::{PgPool, Row};

use crate::midtrans::{burst, burst_bookings, settlement_of, until_queued};

on_postgres!(
    the_seed_documents_sql_runs_unchanged,
    updated_at_is_kept_current_by_the_database,
    replicas_racing_for_one_slot_never_double_book,
    replicas_racing_for_overlapping_unequal_windows_never_double_book,
    replicas_racing_across_midnight_never_double_book,
    the_constraint_alone_never_double_books_under_the_race,
    replicas_racing_settlements_never_double_book_and_keep_every_payment,
    notifications_queued_behind_a_busy_database_share_transactions,
    a_group_sees_the_link_its_earlier_refund_handed_on,
);

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

/// The test's own connection to its PostgreSQL database.
async fn pg_pool(t: &TestApp) -> PgPool {
    let RawDb::Pg(pool) = t.db.raw().await else {
        unreachable!("a PostgreSQL test")
    };
    pool
}

async fn the_seed_documents_sql_runs_unchanged(b: Backend) {
    let t = TestApp::start_with(b, |c| {
        c.set_timezone("Asia/Jakarta").unwrap();
    })
    .await;
    let statements = seed_statements();
    assert_eq!(statements.len(), 7, "{statements:#?}");
    let pool = pg_pool(&t).await;
    t.create_session_type(60).await;

    // Adding links the way the previous system's operators did.
    let added = sqlx::query(&statement(&statements, "Adding More Links"))
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(added.rows_affected(), 2);
    assert_eq!(t.links().await.len(), 2);

    // Test 1: a booking inserted by plain SQL gets its window from the
    // database, in the configured zone, and a link from the seed's call.
    let row: (uuid::Uuid, String) =
        sqlx::query_as(&statement(&statements, "Create test booking via SQL"))
            .fetch_one(&pool)
            .await
            .unwrap();
    let booking = t.booking(&row.0.to_string()).await;
    assert_eq!(booking.order_id, row.1);
    assert_eq!(
        booking.starts_at, "2025-12-01T07:00:00Z",
        "14:00 in Jakarta"
    );
    assert_eq!(booking.ends_at, "2025-12-01T08:00:00Z");
    let (s, answer) = t.assign(&row.0.to_string()).await;
    assert_eq!(s, StatusCode::OK, "{answer:?}");
    assert_eq!(
        answer.meeting_link.as_deref(),
        Some("https://meet.google.com/new-link-1")
    );

    // Test 2: two at the same time get different links.
    let rows: Vec<(uuid::Uuid, String)> =
        sqlx::query_as(&statement(&statements, "Create 2 bookings at SAME time"))
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 2);
    // The pool has two links and Test 1 holds one at 14:00: one of these
    // two gets the other link, the second gets the previous system's 409.
    let (s1, a1) = t.assign(&rows[0].0.to_string()).await;
    let (s2, a2) = t.assign(&rows[1].0.to_string()).await;
    assert_eq!(
        (s1, a1.meeting_link.as_deref()),
        (StatusCode::OK, Some("https://meet.google.com/new-link-2"))
    );
    assert_eq!((s2, a2), (StatusCode::CONFLICT, no_links()));

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
    assert!(b.success, "{b:?}");
    assert!(!a.success, "14:00 is full: {a:?}");

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

async fn updated_at_is_kept_current_by_the_database(t: TestApp) {
    let link = t.add_link("https://meet.google.com/a").await;
    let pool = pg_pool(&t).await;
    let before: (String,) = sqlx::query_as("SELECT updated_at::text FROM meeting_links_pool")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query(&format!(
        "UPDATE meeting_links_pool SET notes = 'x' WHERE id = '{}'",
        link.id
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

/// The previous system's answer when the pool is exhausted.
fn no_links() -> AssignAnswer {
    AssignAnswer {
        success: false,
        meeting_link: None,
        meeting_link_id: None,
        join_url: None,
        error: Some(NO_LINKS.into()),
        requires_manual_assignment: Some(true),
    }
}

/// Two replicas, 200 paid bookings whose sessions all overlap, 10 links,
/// 200 concurrent assign calls split between the replicas.
async fn race(seed: TestApp, starts: &[(&str, &str)], minutes: i64) {
    race_with(seed, starts, minutes, Coordination::HourLocks).await
}

async fn race_with(
    seed: TestApp,
    starts: &[(&str, &str)],
    minutes: i64,
    coordination: Coordination,
) {
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
    let st = one.create_session_type(minutes).await;
    let mut ids = Vec::new();
    for i in 0..200 {
        let (date, time) = starts[i % starts.len()];
        ids.push(one.create_booking(&st, date, time, "pending").await.id);
    }
    // Paid behind the service's back, so that nothing is assigned yet.
    let raw = one.db.raw().await;
    assert_eq!(
        raw.execute("UPDATE bookings SET payment_status = 'paid'")
            .await
            .unwrap(),
        200
    );

    let (one, two) = (&one, &two);
    let calls = ids.iter().enumerate().map(|(i, id)| async move {
        let app = if i % 2 == 0 { one } else { two };
        // 503 says "try again" (too busy, or slower than the request
        // timeout on a loaded machine), and a client does, for a minute:
        // without hour locks every loser of a race retries, so on a loaded
        // machine a call may meet several 503s before its answer.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, answer) = app.assign(id).await;
            if status != StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline {
                return (status, answer);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let answers = join_all(calls).await;
    let won: Vec<&AssignAnswer> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .map(|(_, a)| a)
        .collect();
    let lost = answers
        .iter()
        .filter(|answer| **answer == (StatusCode::CONFLICT, no_links()))
        .count();
    assert_eq!(won.len(), 10, "{answers:?}");
    assert_eq!(lost, 190);
    let distinct: HashSet<&str> = won
        .iter()
        .map(|a| a.meeting_link_id.as_deref().unwrap())
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

async fn replicas_racing_for_one_slot_never_double_book(seed: TestApp) {
    race(seed, &[("2027-12-01", "14:00")], 60).await;
}

async fn replicas_racing_for_overlapping_unequal_windows_never_double_book(seed: TestApp) {
    let starts = [
        ("2027-12-01", "14:00"),
        ("2027-12-01", "14:10"),
        ("2027-12-01", "14:25"),
        ("2027-12-01", "14:40"),
        ("2027-12-01", "14:55"),
    ];
    race(seed, &starts, 60).await;
}

async fn replicas_racing_across_midnight_never_double_book(seed: TestApp) {
    let starts = [
        ("2027-12-01", "23:30"),
        ("2027-12-01", "23:50"),
        ("2027-12-02", "00:10"),
        ("2027-12-02", "00:25"),
    ];
    race(seed, &starts, 60).await;
}

/// Without the hour locks, the exclusion constraint alone refuses every
/// loser of a race, which retries on the next link: still exactly ten.
async fn the_constraint_alone_never_double_books_under_the_race(seed: TestApp) {
    let starts = [
        ("2027-12-01", "14:00"),
        ("2027-12-01", "14:20"),
        ("2027-12-01", "14:40"),
    ];
    race_with(seed, &starts, 60, Coordination::ConstraintOnly).await;
}

/// The production flow under the same race: 200 signed settlement
/// notifications for bookings in one slot, split between two replicas,
/// 10 links. Every payment is kept; exactly ten bookings get links.
async fn replicas_racing_settlements_never_double_book_and_keep_every_payment(one: TestApp) {
    let two = one.replica().await;
    for i in 0..10 {
        one.add_link(&format!("https://meet.google.com/pay-{i}"))
            .await;
    }
    let st = one.create_session_type(60).await;
    let starts = ["14:00", "14:15", "14:30", "14:45"];
    let mut orders = Vec::new();
    for i in 0..200 {
        let order = format!("RACE-{i}");
        one.create_booking_with_order(&order, &st, "2027-12-01", starts[i % 4], "pending")
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
        app.notify_at("/webhooks/midtrans", body.to_string())
    });
    let answers: Vec<_> = join_all(calls)
        .await
        .into_iter()
        .map(WebhookAnswer::settled)
        .collect();
    assert!(
        answers.iter().all(|a| a.payment_status == "paid"),
        "{answers:?}"
    );
    let linked: Vec<&str> = answers
        .iter()
        .filter_map(|a| a.meeting_link.as_deref())
        .collect();
    assert_eq!(linked.len(), 10);
    assert_eq!(linked.iter().collect::<HashSet<_>>().len(), 10);
    let waiting = answers
        .iter()
        .filter(|a| a.requires_manual_assignment)
        .count();
    assert_eq!(waiting, 190);
    assert_eq!(one.pool_status().await.unassigned_paid_bookings, 190);
    assert_eq!(one.overlaps().await, 0);
}

/// Notifications that arrive while the database is busy queue up and are
/// settled together, several to a transaction: each paid booking's row
/// shows the transaction that paid it (`xmin`), and the statement of that
/// transaction that wrote it (`cmin`): one for all of them.
async fn notifications_queued_behind_a_busy_database_share_transactions(t: TestApp) {
    for i in 0..8 {
        t.add_link(&format!("https://meet.google.com/queue-{i}"))
            .await;
    }
    // Eight at 09:00 for the eight links, eight at hours of their own.
    let ids = burst_bookings(&t, 16, 8).await;
    let pool = pg_pool(&t).await;
    let raw = t.db.raw().await;
    let hold = raw.hold_settlements().await;
    let bodies: Vec<(String, Vec<u8>)> = ids
        .keys()
        .map(|order| (order.clone(), settlement_of(order)))
        .collect();
    let posting = burst(&t, &bodies);
    let releasing = async {
        until_queued(&t, 16).await;
        hold.release().await;
    };
    let (answers, ()) = tokio::join!(posting, releasing);
    let mut at_nine = HashSet::new();
    for (order, answer) in ids.keys().zip(answers) {
        let answer = answer.settled();
        assert_eq!(answer.payment_status, "paid", "{answer:?}");
        let link = answer.meeting_link.expect("every booking gets a link");
        if order.as_str() < "BURST-08" {
            at_nine.insert(link);
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
    assert!(
        transactions < 8,
        "16 queued notifications took {transactions} transactions"
    );
    assert_eq!(
        statements, transactions,
        "each transaction writes its bookings in one statement"
    );
    assert_eq!(
        t.metric("meetpool_settlement_groups_total").await,
        u64::try_from(transactions).unwrap()
    );
    assert_eq!(t.overlaps().await, 0);
}

/// A notification settled in a group sees what the group's earlier
/// notifications did to its booking, even through another booking: a
/// refund hands its link to a waiting booking, whose own refund, later in
/// the same transaction, takes the link back.
async fn a_group_sees_the_link_its_earlier_refund_handed_on(t: TestApp) {
    use crate::midtrans::{post_in_background, refund_of};
    let link = "https://meet.google.com/handed-on";
    t.add_link(link).await;
    let st = t.create_session_type(60).await;
    let day = "2027-12-01";
    let holder = t
        .create_booking_with_order("HOLDER", &st, day, "09:00", "pending")
        .await;
    let waiter = t
        .create_booking_with_order("WAITER", &st, day, "09:30", "pending")
        .await;
    let paid = t.notify(settlement_of("HOLDER")).await.settled();
    assert_eq!(paid.meeting_link.as_deref(), Some(link), "{paid:?}");
    let waits = t.notify(settlement_of("WAITER")).await.settled();
    assert_eq!(waits.payment_status, "paid", "{waits:?}");
    assert_eq!(waits.meeting_link, None, "{waits:?}");
    // Settlements on other days keep the runners busy, so that both refunds
    // queue up behind them and are settled in one group, in order.
    let mut others = Vec::new();
    for i in 0..8 {
        let order = format!("OTHER-{i}");
        t.create_booking_with_order(
            &order,
            &st,
            &format!("2027-12-{:02}", 10 + i),
            "09:00",
            "pending",
        )
        .await;
        others.push(order);
    }
    let pool = pg_pool(&t).await;
    let raw = t.db.raw().await;
    let hold = raw.hold_settlements().await;
    let busy: Vec<_> = others
        .iter()
        .map(|order| post_in_background(&t, &settlement_of(order)))
        .collect();
    until_queued(&t, 2 + 8).await;
    let first = post_in_background(&t, &refund_of("HOLDER"));
    until_queued(&t, 2 + 9).await;
    let second = post_in_background(&t, &refund_of("WAITER"));
    until_queued(&t, 2 + 10).await;
    hold.release().await;
    for post in busy {
        post.await.unwrap().settled();
    }
    let refunded = first.await.unwrap().settled();
    assert_eq!(refunded.payment_status, "refunded", "{refunded:?}");
    let refunded = second.await.unwrap().settled();
    assert_eq!(refunded.payment_status, "refunded", "{refunded:?}");
    assert_eq!(refunded.meeting_link, None, "{refunded:?}");

    let together: bool = sqlx::query_scalar(
        "SELECT count(DISTINCT xmin::text) = 1 FROM bookings WHERE order_id IN ('HOLDER', 'WAITER')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(together, "both refunds were settled in one transaction");
    for id in [&holder.id, &waiter.id] {
        let now = t.booking(id).await;
        assert_eq!(now.payment_status, "refunded", "{now:?}");
        assert_eq!(now.meeting_link, None, "{now:?}");
    }
    let kinds = t.event_kinds(&waiter.id).await;
    let handed: Vec<&str> = kinds
        .iter()
        .map(String::as_str)
        .filter(|k| matches!(*k, "assigned" | "released"))
        .collect();
    assert_eq!(handed, ["assigned", "released"], "{kinds:?}");
    assert_eq!(t.overlaps().await, 0);
}
