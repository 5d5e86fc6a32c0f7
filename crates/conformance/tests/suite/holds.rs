//! Checkout holds: a slot is reserved while the customer pays, or refused
//! before money is taken; paying keeps the held link; a cancelled or
//! expired hold gives it back.
use meetpool_conformance::{Backend, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both!(
    a_hold_reserves_the_link_until_it_is_paid,
    a_cancelled_hold_gives_its_link_to_a_waiting_booking,
    an_expired_hold_gives_its_link_back,
    racing_holds_from_two_replicas_take_each_link_once,
    holds_payments_and_moves_racing_for_one_slot_lose_nothing,
);

const DAY: &str = "2031-06-03";
const ROOM: &str = "https://meet.google.com/aaa-aaaa-aaa";

fn hold_body(st: &str, order: &str, time: &str) -> Value {
    json!({"order_id": order, "user_id": "u", "expert_id": "e", "session_type_id": st,
           "booking_date": DAY, "booking_time": time, "price": 100000, "hold": true})
}

async fn available_at(t: &TestApp, st: &str, time: &str) -> u64 {
    let (s, slots) = t
        .get(&format!(
            "/api/availability?date={DAY}&session_type_id={st}"
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{slots}");
    slots
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["booking_time"] == time)
        .unwrap()["available"]
        .as_u64()
        .unwrap()
}

async fn a_hold_reserves_the_link_until_it_is_paid(t: TestApp) {
    let link = t.add_link(ROOM).await;
    let st = t.create_session_type(60).await;
    assert_eq!(available_at(&t, &st.id, "10:00").await, 1);
    let (s, held) = t
        .post("/api/bookings", hold_body(&st.id, "H-1", "10:00"))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{held}");
    assert_eq!(
        (
            held["payment_status"].as_str(),
            held["meeting_link_id"].as_str()
        ),
        (Some("pending"), Some(link.id.as_str()))
    );
    assert!(held["hold_expires_at"].is_string(), "{held}");
    assert_eq!(available_at(&t, &st.id, "10:00").await, 0);

    // No second hold, and nothing created for it.
    let (s, e) = t
        .post("/api/bookings", hold_body(&st.id, "H-2", "10:30"))
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("slot_unavailable"))
    );
    let (_, all) = t.get("/api/bookings").await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    // A paid booking never takes a live hold's link: it waits.
    let paid = t.create_booking(&st, DAY, "10:00", "paid").await;
    assert_eq!(paid.meeting_link, None);

    // Paying turns the hold into the assignment, same link.
    let id = held["id"].as_str().unwrap();
    let after = t.set_payment_status(id, "paid").await.unwrap();
    assert_eq!(after.meeting_link_id.as_deref(), Some(link.id.as_str()));
    assert_eq!(after.hold_expires_at, None);
    assert_eq!(t.overlaps().await, 0);

    // A hold that cannot move at all stays where it was.
    let (s, other) = t
        .post("/api/bookings", hold_body(&st.id, "H-3", "14:00"))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{other}");
    let refused = t
        .update_booking(
            other["id"].as_str().unwrap(),
            json!({"booking_time": "10:15"}),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.why(), (StatusCode::CONFLICT, "slot_unavailable"));
    assert_eq!(
        t.booking(other["id"].as_str().unwrap()).await.booking_time,
        "14:00"
    );
}

async fn a_cancelled_hold_gives_its_link_to_a_waiting_booking(t: TestApp) {
    let link = t.add_link(ROOM).await;
    let st = t.create_session_type(60).await;
    let (_, held) = t
        .post("/api/bookings", hold_body(&st.id, "H-1", "10:00"))
        .await;
    let waiting = t.create_booking(&st, DAY, "10:00", "paid").await;
    assert_eq!(waiting.meeting_link, None);
    let cancelled = t
        .set_payment_status(held["id"].as_str().unwrap(), "cancelled")
        .await
        .unwrap();
    assert_eq!(cancelled.meeting_link_id, None);
    let waiting = t.booking(&waiting.id).await;
    assert_eq!(waiting.meeting_link_id.as_deref(), Some(link.id.as_str()));
    assert_eq!(t.overlaps().await, 0);
}

async fn an_expired_hold_gives_its_link_back(b: Backend) {
    let t = TestApp::start_with(b, |c| c.hold_minutes = 0).await;
    let link = t.add_link(ROOM).await;
    let st = t.create_session_type(60).await;
    let (s, first) = t
        .post("/api/bookings", hold_body(&st.id, "H-1", "10:00"))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    // Already expired: availability counts the link free, and the next
    // booking that needs it takes it back.
    assert_eq!(available_at(&t, &st.id, "10:00").await, 1);
    let (s, second) = t
        .post("/api/bookings", hold_body(&st.id, "H-2", "10:00"))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{second}");
    assert_eq!(second["meeting_link_id"].as_str(), Some(link.id.as_str()));
    let first = t.booking(first["id"].as_str().unwrap()).await;
    assert_eq!(first.meeting_link_id, None);
    let kinds = t.event_kinds(&first.id).await;
    assert!(kinds.contains(&"released".to_owned()), "{kinds:?}");
    // A payment after expiry still gets a link when one is free.
    let paid = t.set_payment_status(&first.id, "paid").await.unwrap();
    assert_eq!(
        paid.meeting_link_id.as_deref(),
        Some(link.id.as_str()),
        "the second hold expired too"
    );
    // The sweep takes back what nobody asked for.
    let (_, third) = t
        .post("/api/bookings", hold_body(&st.id, "H-3", "15:00"))
        .await;
    assert_eq!(t.app.release_expired_holds().await.unwrap(), 1);
    assert_eq!(
        t.booking(third["id"].as_str().unwrap())
            .await
            .meeting_link_id,
        None
    );
    assert_eq!(t.overlaps().await, 0);
}

async fn racing_holds_from_two_replicas_take_each_link_once(t: TestApp) {
    t.add_link(ROOM).await;
    t.add_link("https://meet.google.com/bbb-bbbb-bbb").await;
    let st = t.create_session_type(60).await;
    let other = t.replica().await;
    let holds = (0..10).map(|i| {
        let app = if i % 2 == 0 { &t } else { &other };
        app.post(
            "/api/bookings",
            hold_body(&st.id, &format!("RACE-{i}"), "11:00"),
        )
    });
    let answers = futures_util::future::join_all(holds).await;
    let created = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let refused = answers
        .iter()
        .filter(|(s, e)| *s == StatusCode::CONFLICT && e["error"]["code"] == "slot_unavailable")
        .count();
    assert_eq!((created, refused), (2, 8), "{answers:?}");
    let (_, all) = t.get("/api/bookings").await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert_eq!(t.overlaps().await, 0);
}

async fn holds_payments_and_moves_racing_for_one_slot_lose_nothing(t: TestApp) {
    t.add_link(ROOM).await;
    t.add_link("https://meet.google.com/bbb-bbbb-bbb").await;
    let st = t.create_session_type(60).await;
    let other = t.replica().await;
    let mut early_holds = Vec::new();
    for i in 0..2 {
        let (s, h) = t
            .post(
                "/api/bookings",
                hold_body(&st.id, &format!("EARLY-{i}"), "09:00"),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{h}");
        early_holds.push(h["id"].as_str().unwrap().to_owned());
    }
    let mut movers = Vec::new();
    for hour in 13..17 {
        movers.push(
            t.create_booking(&st, DAY, &format!("{hour}:00"), "paid")
                .await
                .id,
        );
    }

    // All at once, through two replicas: six holds and two paid bookings at
    // 11:00, four paid sessions moved to 11:00, the two early holds paid.
    let via = |i: usize| if i.is_multiple_of(2) { &t } else { &other };
    let holds = (0..6).map(|i| {
        via(i).post(
            "/api/bookings",
            hold_body(&st.id, &format!("RACE-{i}"), "11:00"),
        )
    });
    let paid = (0..2).map(|i| {
        let body = json!({"order_id": format!("PAID-{i}"), "user_id": "u", "expert_id": "e",
                          "session_type_id": st.id, "booking_date": DAY, "booking_time": "11:00",
                          "price": 100000, "payment_status": "paid"});
        via(i + 1).post("/api/bookings", body)
    });
    let move_paths: Vec<String> = movers
        .iter()
        .map(|id| format!("/api/bookings/{id}"))
        .collect();
    let pay_paths: Vec<String> = early_holds
        .iter()
        .map(|id| format!("/api/bookings/{id}"))
        .collect();
    let moves = move_paths
        .iter()
        .enumerate()
        .map(|(i, path)| via(i).patch(path, json!({"booking_time": "11:00"})));
    let pays = pay_paths
        .iter()
        .enumerate()
        .map(|(i, path)| via(i + 1).patch(path, json!({"payment_status": "paid"})));
    let (holds, paid, moves, pays) = tokio::join!(
        futures_util::future::join_all(holds),
        futures_util::future::join_all(paid),
        futures_util::future::join_all(moves),
        futures_util::future::join_all(pays),
    );
    for (s, h) in &holds {
        match *s {
            StatusCode::CREATED => assert!(h["meeting_link_id"].is_string(), "{h}"),
            StatusCode::CONFLICT => assert_eq!(h["error"]["code"], "slot_unavailable"),
            other => panic!("{other}: {h}"),
        }
    }
    for (s, b) in paid.iter().chain(&moves).chain(&pays) {
        assert!(s.is_success(), "{s}: {b}");
        assert_eq!(b["payment_status"], "paid", "{b}");
    }
    assert_eq!(t.overlaps().await, 0);
    // Nothing lost: every payment stands, each early hold kept its link.
    let (_, all) = t.get("/api/bookings?payment_status=paid").await;
    assert_eq!(all.as_array().unwrap().len(), 2 + 2 + 4, "{all}");
    for id in &early_holds {
        assert!(t.booking(id).await.meeting_link_id.is_some());
    }
    // Two links, so at most two sessions hold one at 11:00.
    let at_eleven = all
        .as_array()
        .unwrap()
        .iter()
        .chain(
            holds
                .iter()
                .filter(|(s, _)| *s == StatusCode::CREATED)
                .map(|(_, h)| h),
        )
        .filter(|b| b["booking_time"] == "11:00" && b["meeting_link_id"].is_string())
        .count();
    assert!(at_eleven <= 2, "{at_eleven} sessions hold a link at 11:00");
}
