//! Selling only what can be served: availability agrees with what a
//! checkout hold at that start gets, and the capacity report counts each
//! day's peak against the pool.
use meetpool_conformance::TestApp;
use reqwest::StatusCode;
use serde_json::Value;

on_both!(
    availability_is_what_a_hold_at_that_start_gets,
    availability_counts_the_buffer_as_a_booking_does,
    capacity_counts_each_days_peak_against_the_pool,
    capacity_counts_every_session_of_a_shared_window,
);

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
