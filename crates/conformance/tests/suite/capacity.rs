//! Selling only what can be served: availability agrees with what a
//! checkout hold at that start gets, and the capacity report counts each
//! day's peak against the pool.
use meetpool_conformance::{Backend, Booking, RawDb, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both!(
    availability_is_what_a_hold_at_that_start_gets,
    availability_counts_the_buffer_as_a_booking_does,
    availability_sees_a_long_session_from_the_day_before,
    capacity_counts_each_days_peak_against_the_pool,
    capacity_counts_every_session_of_a_shared_window,
    capacity_follows_payments_cancellations_and_reschedules,
    capacity_follows_bookings_written_by_plain_sql,
);

on_postgres!(capacity_stays_right_when_writers_share_a_window_and_folds_run);

const DAY: &str = "2031-05-06";

async fn availability(t: &TestApp, st: &str) -> Vec<Value> {
    let (s, body) = t
        .get(&format!(
            "/api/availability?date={DAY}&session_type_id={st}"
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body.as_array().unwrap().clone()
}

async fn availability_counts_the_buffer_as_a_booking_does(b: meetpool_conformance::Backend) {
    let t = TestApp::start_with(b, |c| c.buffer_minutes = 20).await;
    availability_is_what_a_hold_at_that_start_gets(t).await;
}

/// A session in progress at midnight, begun the evening before, keeps its
/// link busy into the day: availability looks back as far as the longest
/// session any booking has held a link for.
async fn availability_sees_a_long_session_from_the_day_before(t: TestApp) {
    t.add_link("https://meet.google.com/aaa-aaaa-aaa").await;
    let long = t.create_session_type(20 * 60).await;
    let hour = t.create_session_type(60).await;
    let before = availability(&t, &hour.id).await;
    assert!(before.iter().all(|s| s["available"] == 1));
    // 20:00 the day before to 16:00 on the day.
    t.create_booking(&long, "2031-05-05", "20:00", "paid").await;
    let slots = availability(&t, &hour.id).await;
    for s in &slots {
        let time = s["booking_time"].as_str().unwrap();
        let expected = u64::from(time >= "16:00");
        assert_eq!(s["available"], expected, "{time}: {s}");
    }
    let (status, e) = t
        .get(&format!(
            "/api/availability?date={DAY}&session_type_id={}",
            uuid::Uuid::new_v4()
        ))
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("unknown_session_type")
        )
    );
}

async fn availability_is_what_a_hold_at_that_start_gets(t: TestApp) {
    t.add_link("https://meet.google.com/aaa-aaaa-aaa").await;
    t.add_link("https://meet.google.com/bbb-bbbb-bbb").await;
    let st = t.create_session_type(60).await;
    let slots = availability(&t, &st.id).await;
    assert_eq!(slots.len(), 48, "a 30-minute grid over the day");
    assert!(slots.iter().all(|s| s["available"] == 2));

    // Random bookings, each checked against what availability promised.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut x = seed;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for step in 0..30 {
        // Starts between 08:00 and 11:30, so that the morning fills up.
        let start = 16 + (next() % 8) as usize;
        let promised = availability(&t, &st.id).await[start]["available"]
            .as_u64()
            .unwrap();
        let time = availability(&t, &st.id).await[start]["booking_time"]
            .as_str()
            .unwrap()
            .to_owned();
        // A checkout hold at that start: reserved exactly when availability
        // said a link was free.
        let (s, booked) = t
            .post(
                "/api/bookings",
                serde_json::json!({
                    "order_id": format!("R-{step}"), "user_id": "u", "expert_id": "e",
                    "session_type_id": st.id, "booking_date": DAY, "booking_time": time,
                    "price": 1, "hold": true,
                }),
            )
            .await;
        assert_eq!(
            s == StatusCode::CREATED,
            promised > 0,
            "seed {seed}, step {step}: {promised} available at {time}, hold answered {s} {booked}"
        );
        if s != StatusCode::CREATED {
            assert_eq!(booked["error"]["code"], "slot_unavailable", "{booked}");
        }
        let after = availability(&t, &st.id).await[start]["available"]
            .as_u64()
            .unwrap();
        assert_eq!(
            after,
            promised.saturating_sub(1),
            "seed {seed}, step {step}"
        );
    }
    assert_eq!(t.overlaps().await, 0);

    let (s, e) = t
        .get(&format!(
            "/api/availability?date=2031-02-30&session_type_id={}",
            st.id
        ))
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_date"))
    );
}

async fn capacity_counts_each_days_peak_against_the_pool(t: TestApp) {
    t.add_link("https://meet.google.com/aaa-aaaa-aaa").await;
    t.add_link("https://meet.google.com/bbb-bbbb-bbb").await;
    let st = t.create_session_type(60).await;
    for time in ["10:00", "10:30", "10:45", "15:00"] {
        t.create_booking(&st, DAY, time, "paid").await;
    }
    t.create_booking(&st, "2031-05-07", "09:00", "paid").await;
    t.create_booking(&st, "2031-05-07", "09:00", "pending")
        .await;

    let (s, days) = t.get("/api/capacity?from=2031-05-06&to=2031-05-08").await;
    assert_eq!(s, StatusCode::OK, "{days}");
    let days = days.as_array().unwrap();
    let row = |d: &Value| {
        (
            d["date"].as_str().unwrap().to_owned(),
            d["peak_sessions"].as_u64().unwrap(),
            d["enabled_links"].as_u64().unwrap(),
            d["headroom"].as_i64().unwrap(),
            d["unassigned"].as_u64().unwrap(),
            d["warning"].as_bool().unwrap(),
        )
    };
    assert_eq!(
        days.iter().map(row).collect::<Vec<_>>(),
        vec![
            ("2031-05-06".to_owned(), 3, 2, -1, 1, true),
            ("2031-05-07".to_owned(), 1, 2, 1, 0, false),
            ("2031-05-08".to_owned(), 0, 2, 2, 0, false),
        ]
    );
    for bad in [
        "from=2031-05-08&to=2031-05-06",
        "from=2031-01-01&to=2033-01-01",
        "from=x&to=2031-01-01",
    ] {
        let (s, _) = t.get(&format!("/api/capacity?{bad}")).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
}

/// Many sessions share one window at busy times (the store counts them by
/// window): each still counts, linked or not, and a session carries its
/// count into the next day.
async fn capacity_counts_every_session_of_a_shared_window(t: TestApp) {
    t.add_link("https://meet.google.com/aaa-aaaa-aaa").await;
    t.add_link("https://meet.google.com/bbb-bbbb-bbb").await;
    let st = t.create_session_type(60).await;
    // Two take the links; the third and fourth wait without one.
    for _ in 0..3 {
        t.create_booking(&st, DAY, "12:00", "paid").await;
    }
    t.create_booking(&st, DAY, "12:30", "paid").await;
    t.create_booking(&st, "2031-05-07", "23:30", "paid").await;
    t.create_booking(&st, "2031-05-07", "23:30", "failed").await;

    let (s, days) = t.get("/api/capacity?from=2031-05-06&to=2031-05-08").await;
    assert_eq!(s, StatusCode::OK, "{days}");
    let row = |d: &Value| {
        (
            d["date"].as_str().unwrap().to_owned(),
            d["peak_sessions"].as_u64().unwrap(),
            d["headroom"].as_i64().unwrap(),
            d["unassigned"].as_u64().unwrap(),
            d["warning"].as_bool().unwrap(),
        )
    };
    assert_eq!(
        days.as_array().unwrap().iter().map(row).collect::<Vec<_>>(),
        vec![
            ("2031-05-06".to_owned(), 4, -2, 2, true),
            ("2031-05-07".to_owned(), 1, 1, 0, false),
            ("2031-05-08".to_owned(), 1, 1, 0, false),
        ]
    );
}

/// Days of the report these scenarios look at.
const DAYS: [&str; 3] = ["2031-05-06", "2031-05-07", "2031-05-08"];

/// Each day's (date, peak, unassigned) as the report gives it.
async fn report(t: &TestApp) -> Vec<(String, u64, u64)> {
    let (s, days) = t
        .get(&format!("/api/capacity?from={}&to={}", DAYS[0], DAYS[2]))
        .await;
    assert_eq!(s, StatusCode::OK, "{days}");
    days.as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["date"].as_str().unwrap().to_owned(),
                d["peak_sessions"].as_u64().unwrap(),
                d["unassigned"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The same worked out from the bookings themselves (UTC, no buffer): the
/// most paid sessions in progress at one instant of each day, and the paid
/// ones starting that day without a link.
async fn expected(t: &TestApp) -> Vec<(String, u64, u64)> {
    let paid: Vec<Booking> = t.bookings("payment_status=paid&limit=500").await.unwrap();
    let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
    DAYS.iter()
        .map(|day| {
            let start = at(&format!("{day}T00:00:00Z"));
            let end = start + jiff::SignedDuration::from_hours(24);
            let mut instants = vec![start];
            instants.extend(
                paid.iter()
                    .map(|b| at(&b.starts_at))
                    .filter(|s| start <= *s && *s < end),
            );
            let peak = instants
                .iter()
                .map(|i| {
                    paid.iter()
                        .filter(|b| at(&b.starts_at) <= *i && *i < at(&b.ends_at))
                        .count() as u64
                })
                .max()
                .unwrap_or(0);
            let unassigned = paid
                .iter()
                .filter(|b| b.meeting_link_id.is_none() && b.starts_at.starts_with(day))
                .count() as u64;
            ((*day).to_owned(), peak, unassigned)
        })
        .collect()
}

/// The report agrees with the bookings, and still does once the counts it
/// reads are folded.
async fn assert_report_right(t: &TestApp, what: &str) {
    let want = expected(t).await;
    assert_eq!(report(t).await, want, "{what}");
    t.app.fold_paid_windows().await.unwrap();
    assert_eq!(report(t).await, want, "{what}, after the fold");
}

/// The capacity report reads counts the database keeps as bookings are
/// written: each way a paid session comes, moves, gets or loses its link
/// and goes shows at once.
async fn capacity_follows_payments_cancellations_and_reschedules(t: TestApp) {
    t.add_link("https://meet.google.com/aaa-aaaa-aaa").await;
    t.add_link("https://meet.google.com/bbb-bbbb-bbb").await;
    let st = t.create_session_type(60).await;
    let first = t.create_booking(&st, DAYS[0], "10:00", "pending").await;
    let second = t.create_booking(&st, DAYS[0], "10:00", "paid").await;
    assert_report_right(&t, "one paid, one pending").await;
    t.set_payment_status(&first.id, "paid").await.unwrap();
    assert_report_right(&t, "both paid").await;
    let third = t.create_booking(&st, DAYS[0], "10:30", "paid").await;
    assert_eq!(
        report(&t).await[0],
        (DAYS[0].to_owned(), 3, 1),
        "three at once, the third without a link"
    );
    assert_report_right(&t, "a third waits for a link").await;
    t.set_payment_status(&second.id, "cancelled").await.unwrap();
    assert_report_right(&t, "a cancellation frees a link").await;
    t.update_booking(
        &third.id,
        json!({"booking_date": DAYS[1], "booking_time": "23:30"}),
    )
    .await
    .unwrap();
    assert_report_right(&t, "a reschedule into the next night").await;
    t.release_link(&first.id).await.unwrap();
    assert_report_right(&t, "a link released by hand").await;
    t.set_payment_status(&first.id, "refunded").await.unwrap();
    assert_report_right(&t, "a refund").await;
    assert_eq!(
        report(&t).await,
        vec![
            (DAYS[0].to_owned(), 0, 0),
            (DAYS[1].to_owned(), 1, 0),
            (DAYS[2].to_owned(), 1, 0),
        ]
    );
}

/// An operator's SQL writes bookings without the service: the counts the
/// report reads follow an insert, a payment, a link taken away, a move and
/// a delete all the same.
async fn capacity_follows_bookings_written_by_plain_sql(t: TestApp) {
    t.add_link("https://meet.google.com/aaa-aaaa-aaa").await;
    let st = t.create_session_type(60).await;
    let model = t.create_booking(&st, DAYS[0], "09:00", "paid").await;
    let raw = t.db.raw().await;
    let insert = match t.db.backend {
        Backend::Postgres => format!(
            "INSERT INTO bookings (order_id, user_id, expert_id, session_type_id, booking_date, \
               booking_time, payment_status) \
             SELECT 'SQL-' || n, user_id, expert_id, session_type_id, booking_date, booking_time, 'paid' \
             FROM bookings, (VALUES (1), (2)) v (n) WHERE id = '{}'",
            model.id
        ),
        Backend::Sqlite => format!(
            "INSERT INTO bookings (id, order_id, user_id, expert_id, session_type_id, booking_date, \
               booking_time, payment_status, starts_at, ends_at, join_token) \
             SELECT '00000000-0000-4000-8000-00000000000' || n, 'SQL-' || n, user_id, expert_id, \
               session_type_id, booking_date, booking_time, 'paid', starts_at, ends_at, 'sql-token-' || n \
             FROM bookings, (SELECT 1 AS n UNION ALL SELECT 2) WHERE id = '{}'",
            model.id
        ),
    };
    raw.execute(&insert).await.unwrap();
    assert_report_right(&t, "two paid bookings inserted by SQL, without links").await;
    raw.execute("UPDATE bookings SET payment_status = 'pending' WHERE order_id = 'SQL-1'")
        .await
        .unwrap();
    assert_report_right(&t, "one set back to pending").await;
    raw.execute(&format!(
        "UPDATE bookings SET meeting_link_id = NULL WHERE id = '{}'",
        model.id
    ))
    .await
    .unwrap();
    assert_report_right(&t, "a link taken away").await;
    let moved = match t.db.backend {
        Backend::Postgres => format!(
            "UPDATE bookings SET booking_date = '{}', booking_time = '13:00' WHERE order_id = 'SQL-2'",
            DAYS[1]
        ),
        Backend::Sqlite => "UPDATE bookings SET starts_at = datetime(starts_at, '+28 hours'), \
             ends_at = datetime(ends_at, '+28 hours') WHERE order_id = 'SQL-2'"
            .to_owned(),
    };
    raw.execute(&moved).await.unwrap();
    assert_report_right(&t, "one moved to the next day").await;
    raw.execute("UPDATE bookings SET status = 'confirmed'")
        .await
        .unwrap();
    assert_report_right(&t, "a change the counts do not see").await;
    raw.execute("DELETE FROM bookings WHERE order_id LIKE 'SQL-%'")
        .await
        .unwrap();
    assert_report_right(&t, "both deleted").await;
    assert_eq!(
        report(&t).await,
        vec![
            (DAYS[0].to_owned(), 1, 1),
            (DAYS[1].to_owned(), 0, 0),
            (DAYS[2].to_owned(), 0, 0),
        ]
    );
}

/// Writers in one window never wait on each other for the counts: each
/// appends its own, and folds running among them (one replica's, another's)
/// neither lose nor double one. Two transactions of an operator's SQL hold
/// their writes open across a fold and commit after it.
async fn capacity_stays_right_when_writers_share_a_window_and_folds_run(t: TestApp) {
    for i in 0..6 {
        t.add_link(&format!("https://meet.example.com/room-{i}"))
            .await;
    }
    let st = t.create_session_type(60).await;
    let other = t.replica().await;
    let books = (0..8).map(|i| {
        let t = &t;
        let st = &st;
        async move {
            t.create_booking_with_order(&format!("SAME-{i}"), st, DAYS[0], "10:00", "paid")
                .await
        }
    });
    let folds = async {
        for _ in 0..8 {
            let (a, b) = tokio::join!(t.app.fold_paid_windows(), other.app.fold_paid_windows());
            a.unwrap();
            b.unwrap();
        }
    };
    let (booked, ()) = tokio::join!(futures_util::future::join_all(books), folds);
    assert_eq!(booked.len(), 8);
    assert_eq!(report(&t).await[0], (DAYS[0].to_owned(), 8, 2));
    assert_report_right(&t, "eight at once in one window").await;

    let RawDb::Pg(pool) = t.db.raw().await else {
        unreachable!("PostgreSQL only")
    };
    let mut first = pool.begin().await.unwrap();
    let mut second = pool.begin().await.unwrap();
    for (tx, n) in [(&mut first, 1), (&mut second, 2)] {
        sqlx::query(
            "INSERT INTO bookings (order_id, user_id, expert_id, session_type_id, booking_date, \
               booking_time, payment_status) VALUES ($1, 'u', 'e', $2::uuid, $3::date, '10:00', 'paid')",
        )
        .bind(format!("OPEN-{n}"))
        .bind(&st.id)
        .bind(DAYS[0])
        .execute(&mut **tx)
        .await
        .unwrap();
    }
    sqlx::query("UPDATE bookings SET payment_status = 'cancelled' WHERE order_id = 'SAME-0'")
        .execute(&mut *second)
        .await
        .unwrap();
    // Neither the fold nor the service's report waits for them.
    t.app.fold_paid_windows().await.unwrap();
    assert_eq!(report(&t).await[0], (DAYS[0].to_owned(), 8, 2));
    first.commit().await.unwrap();
    t.app.fold_paid_windows().await.unwrap();
    second.commit().await.unwrap();
    assert_report_right(&t, "two transactions committed around a fold").await;
    assert_eq!(report(&t).await[0].1, 9);

    // Folded, a window is one row again.
    t.app.fold_paid_windows().await.unwrap();
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT count(*), count(DISTINCT (starts_at, ends_at)) FROM paid_window_deltas",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows, [(1, 1)]);
}
