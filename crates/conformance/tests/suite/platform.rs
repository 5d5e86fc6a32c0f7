//! An adopted platform's database at its edges: rows the platform writes
//! that meetpool cannot take in are never silent, and a table dropped
//! under the running service is named, not hidden behind "try again".
use std::time::Duration;

use meetpool_conformance::{eventually, test_events, PlatformDb, Receiver, TestApp, ADMIN_TOKEN};
use meetpool_store::postgres::adoption::adopt;
use meetpool_store::{ConnectOptions, DbSettings};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;

use crate::adopt::{adopted, options, platform_books, platform_row, EXPERT, HOUR, USER};
use crate::midtrans::settlement_of;

on_postgres!(
    rows_the_platform_writes_that_meetpool_cannot_take_in_are_alerted_until_fixed,
    a_platform_table_dropped_under_the_service_is_named_and_nothing_is_lost,
);

/// A zone with daylight saving, so that a time can fall in its gap.
const ZONE: &str = "America/New_York";

fn in_new_york(c: &mut meetpool_app::Config) {
    let key = c.midtrans_server_key.take();
    let events = c.events.take();
    *c = meetpool_app::Config::new(ZONE).unwrap();
    c.midtrans_server_key = key;
    c.events = events;
}

/// The platform's own insert of a paid booking, with its values as given.
async fn platform_inserts_paid(pool: &PgPool, order: &str, date: &str, time: &str) -> String {
    sqlx::query_scalar(
        "INSERT INTO bookings (order_id, user_id, expert_id, session_type_id, booking_date, \
           booking_time, total_price, payment_status, status, paid_at) \
         VALUES ($1, $2::uuid, $3::uuid, $4::uuid, $5::date, $6, 150000, 'paid', 'confirmed', now()) \
         RETURNING id::text",
    )
    .bind(order)
    .bind(USER)
    .bind(EXPERT)
    .bind(HOUR)
    .bind(date)
    .bind(time)
    .fetch_one(pool)
    .await
    .expect("the platform's insert succeeds whatever meetpool makes of it")
}

async fn problems(t: &TestApp) -> Vec<Value> {
    let (status, body) = t.get("/api/platform/problems").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().unwrap().clone()
}

fn reason_of(problems: &[Value], row: &str) -> Option<String> {
    problems
        .iter()
        .find(|p| p["row_id"] == row)
        .map(|p| p["reason"].as_str().unwrap().to_owned())
}

/// A dashboard page, signed in as the operator.
async fn dashboard_page(t: &TestApp, path: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed = http
        .post(t.url("/admin/sign-in"))
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    let cookie = signed.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let page = http
        .get(t.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    page.text().await.unwrap()
}

async fn rows_the_platform_writes_that_meetpool_cannot_take_in_are_alerted_until_fixed(
    db: PlatformDb,
) {
    let platform = db.owner().await;
    let mut o = options(&db, false);
    o.settings = DbSettings {
        timezone: ZONE.into(),
        buffer_minutes: 0,
    };
    let report = adopt(&db.owner_url(), &o, &|_| {}).await.unwrap();
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    let receiver = Receiver::start().await;
    let t = TestApp::start_adopted(db.service_url(), &ConnectOptions::default(), |c| {
        c.events = Some(test_events(&receiver.url, |_| {}));
        in_new_york(c);
    })
    .await;
    // The fixture's own row whose time does not parse was left out by
    // adoption, and is listed from the start.
    let a7: String =
        sqlx::query_scalar("SELECT id::text FROM bookings WHERE order_id = 'ORDER-A7'")
            .fetch_one(&platform)
            .await
            .unwrap();
    let before = problems(&t).await;
    assert_eq!(
        reason_of(&before, &a7).as_deref(),
        Some("unreadable_time"),
        "{before:#?}"
    );
    let queue_before = t.pool_status().await.unassigned_paid_bookings;

    // Three paid bookings the platform's table takes and meetpool cannot:
    // an order id another booking has, a time that is no time, and a time
    // the clocks skip (New York, 14 March 2027, 02:00 → 03:00).
    let taken = platform_inserts_paid(&platform, "ORDER-A1", "2030-01-10", "10:00").await;
    let nonsense = platform_inserts_paid(&platform, "ORDER-N1", "2030-01-10", "99:99").await;
    let gap = platform_inserts_paid(&platform, "ORDER-N2", "2027-03-14", "02:30").await;

    eventually(
        "each row is listed with its reason",
        Duration::from_secs(10),
        || async { problems(&t).await.len() == before.len() + 3 },
    )
    .await;
    let listed = problems(&t).await;
    assert_eq!(
        reason_of(&listed, &taken).as_deref(),
        Some("order_id_taken")
    );
    assert_eq!(
        reason_of(&listed, &nonsense).as_deref(),
        Some("unreadable_time")
    );
    assert_eq!(
        reason_of(&listed, &gap).as_deref(),
        Some("nonexistent_time")
    );
    let gap_row = listed.iter().find(|p| p["row_id"] == gap).unwrap();
    assert_eq!(gap_row["order_id"], "ORDER-N2");
    assert_eq!(gap_row["paid"], true);
    assert_eq!(gap_row["without_link"], true);
    assert!(gap_row["since"].as_str().unwrap().ends_with('Z'));
    assert!(
        gap_row["message"].as_str().unwrap().contains("skip"),
        "{gap_row}"
    );

    // Each paid one is a customer without a link, counted in the queue.
    assert_eq!(
        t.pool_status().await.unassigned_paid_bookings,
        queue_before + 3
    );
    assert_eq!(
        t.metric("meetpool_unassigned_paid_bookings").await,
        u64::try_from(queue_before + 3).unwrap()
    );
    // Alerted: a count per row, the gauge by reason, an event per row.
    eventually(
        "an alert for each new row",
        Duration::from_secs(10),
        || async {
            t.metric("meetpool_alerts_total{kind=\"platform.row_rejected\"}")
                .await
                >= u64::try_from(before.len()).unwrap() + 3
        },
    )
    .await;
    assert_eq!(
        t.metric("meetpool_platform_rows_rejected{reason=\"nonexistent_time\"}")
            .await,
        1
    );
    assert_eq!(
        t.metric("meetpool_platform_rows_rejected{reason=\"order_id_taken\"}")
            .await,
        1
    );
    let got = receiver
        .wait_until("an event for each row", |ds| {
            [&taken, &nonsense, &gap].iter().all(|row| {
                ds.iter().any(|d| {
                    d.accepted
                        && d.kind() == "platform.row_rejected"
                        && d.body["data"]["problem"]["row_id"] == row.as_str()
                })
            })
        })
        .await;
    let event = got
        .iter()
        .find(|d| d.body["data"]["problem"]["row_id"] == taken.as_str())
        .unwrap();
    assert!(event.verified);
    assert_eq!(
        event.body["data"]["problem"]["reason"], "order_id_taken",
        "{:#}",
        event.body
    );
    // Raised once, however often the service looks.
    tokio::time::timeout(std::time::Duration::from_secs(3), async {
        while !t.app.platform_problems().await.unwrap().is_empty() {
            if t.app.alert_platform_problems().await.unwrap() == 0 {
                break;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(t.app.alert_platform_problems().await.unwrap(), 0);

    // The operator sees them on the dashboard's overview and queue.
    for page in ["/admin", "/admin/queue"] {
        let html = dashboard_page(&t, page).await;
        assert!(html.contains("platform-problems"), "{page}: {html}");
        for row in [&taken, &nonsense, &gap] {
            assert!(html.contains(row.as_str()), "{page} lacks {row}");
        }
    }

    // Fixing each row adopts it: it leaves the list and, paid, gets a link.
    for fix in [
        format!("UPDATE bookings SET booking_time = '15:00' WHERE id = '{nonsense}'"),
        format!("UPDATE bookings SET booking_time = '03:30' WHERE id = '{gap}'"),
        format!("UPDATE bookings SET order_id = 'ORDER-A1-B' WHERE id = '{taken}'"),
    ] {
        sqlx::query(&fix).execute(&platform).await.unwrap();
    }
    for order in ["ORDER-N1", "ORDER-N2", "ORDER-A1-B"] {
        eventually(
            "the fixed row has a link",
            Duration::from_secs(10),
            || async { platform_row(&platform, order).await.2.is_some() },
        )
        .await;
    }
    let after = problems(&t).await;
    assert_eq!(after.len(), before.len(), "{after:#?}");
    assert_eq!(
        t.metric("meetpool_platform_rows_rejected{reason=\"nonexistent_time\"}")
            .await,
        0
    );
    assert_eq!(t.pool_status().await.unassigned_paid_bookings, queue_before);
    // A booking meetpool holds, moved by the platform to a time that is
    // no time, keeps its session and is listed until moved again.
    let moved: String =
        sqlx::query_scalar("SELECT id::text FROM bookings WHERE order_id = 'ORDER-N1'")
            .fetch_one(&platform)
            .await
            .unwrap();
    sqlx::query(&format!(
        "UPDATE bookings SET booking_time = '25:00' WHERE id = '{moved}'"
    ))
    .execute(&platform)
    .await
    .unwrap();
    eventually(
        "the move meetpool cannot follow is listed",
        Duration::from_secs(10),
        || async { reason_of(&problems(&t).await, &moved).as_deref() == Some("unreadable_time") },
    )
    .await;
    let entry = problems(&t).await;
    let entry = entry
        .iter()
        .find(|p| p["row_id"] == moved.as_str())
        .unwrap();
    assert_eq!(entry["without_link"], false, "it keeps its link: {entry}");
    assert!(platform_row(&platform, "ORDER-N1").await.2.is_some());
    sqlx::query(&format!(
        "UPDATE bookings SET booking_time = '16:00' WHERE id = '{moved}'"
    ))
    .execute(&platform)
    .await
    .unwrap();
    eventually(
        "moved again to a real time, it is off the list",
        Duration::from_secs(10),
        || async {
            reason_of(&problems(&t).await, &moved).is_none()
                && t.get("/api/bookings?limit=100")
                    .await
                    .1
                    .to_string()
                    .contains("\"booking_time\":\"16:00\"")
        },
    )
    .await;

    // A row the platform deletes is no problem any more either.
    sqlx::query(&format!("DELETE FROM bookings WHERE id = '{a7}'"))
        .execute(&platform)
        .await
        .unwrap();
    assert!(reason_of(&problems(&t).await, &a7).is_none());
    assert_eq!(t.overlaps().await, 0);
    drop(t);
    platform.close().await;
}

async fn a_platform_table_dropped_under_the_service_is_named_and_nothing_is_lost(db: PlatformDb) {
    let platform = db.owner().await;
    assert!(adopted(&db, false).await.refused.is_empty());
    let t = TestApp::start_adopted(
        db.service_url(),
        &ConnectOptions::default(),
        crate::adopt::in_zone,
    )
    .await;
    platform_books(&platform, "ORDER-D1", 7, "16:00", 100_000).await;
    let (status, _) = t.get("/readyz").await;
    assert_eq!(status, StatusCode::OK);
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM meetpool.bookings")
        .fetch_one(&platform)
        .await
        .unwrap();

    // The platform's operator keeps a copy and drops the table: PostgreSQL
    // lets it, without CASCADE.
    sqlx::raw_sql(
        "CREATE TABLE bookings_saved (LIKE bookings INCLUDING ALL); \
         INSERT INTO bookings_saved SELECT * FROM bookings; \
         DROP TABLE bookings",
    )
    .execute(&platform)
    .await
    .unwrap();

    // Not ready, and saying why.
    let (status, body) = t.get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let reason = body["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("public.bookings") && reason.contains("meetpool adopt"),
        "{body}"
    );
    // A payment now is refused with "try again", so Midtrans retries it.
    let refused = t.notify(settlement_of("ORDER-D1")).await;
    assert!(
        matches!(&refused, meetpool_conformance::WebhookAnswer::Refused(s, _) if *s == StatusCode::SERVICE_UNAVAILABLE),
        "{refused:?}"
    );

    // The table comes back (meetpool's triggers on it do not, until adopt
    // runs again, and readiness says so).
    sqlx::raw_sql("ALTER TABLE bookings_saved RENAME TO bookings")
        .execute(&platform)
        .await
        .unwrap();
    let (status, body) = t.get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("triggers are missing"),
        "{body}"
    );
    assert!(adopted(&db, false).await.refused.is_empty());
    let (status, body) = t.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Nothing meetpool held was lost, and Midtrans' retry applies.
    let now: i64 = sqlx::query_scalar("SELECT count(*) FROM meetpool.bookings")
        .fetch_one(&platform)
        .await
        .unwrap();
    assert_eq!(now, held);
    let settled = t.notify(settlement_of("ORDER-D1")).await;
    assert!(
        matches!(&settled, meetpool_conformance::WebhookAnswer::Settled(_)),
        "{settled:?}"
    );
    let row = platform_row(&platform, "ORDER-D1").await;
    assert_eq!(row.0, "paid");
    assert!(row.2.is_some(), "the retried payment got its link");
    drop(t);
    platform.close().await;
}
