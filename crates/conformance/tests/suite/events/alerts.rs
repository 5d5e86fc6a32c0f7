//! Alerts as events: a day whose peak reaches the pool raises `pool.low`
//! once.

use meetpool_conformance::{Backend, Delivery, Receiver};
use serde_json::json;

use super::{deliveries, start, wait_for_status, ROOM_A};

on_both!(a_day_whose_peak_reaches_the_pool_raises_pool_low_once);

async fn a_day_whose_peak_reaches_the_pool_raises_pool_low_once(backend: Backend) {
    let receiver = Receiver::start().await;
    let tomorrow = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::UTC)
        .date()
        .tomorrow()
        .unwrap()
        .to_string();
    let t = start(backend, &receiver).await;
    t.add_link(ROOM_A).await;
    let st = t.create_session_type(60).await;
    t.create_booking(&st, &tomorrow, "10:00", "paid").await;
    // The check runs when the deliverer starts; a restart runs it again.
    let t = t.restart().await;
    let got = receiver
        .wait_until("pool.low", |a| a.iter().any(|d| d.kind() == "pool.low"))
        .await;
    let low: Vec<&Delivery> = got.iter().filter(|d| d.kind() == "pool.low").collect();
    assert_eq!(low.len(), 1);
    assert_eq!(
        low[0].body["data"],
        json!({"date": tomorrow, "peak_sessions": 1, "enabled_links": 1, "unassigned": 0})
    );
    assert!(low[0].verified);
    wait_for_status(&t, "delivered", 2).await;
    assert_eq!(
        deliveries(&t, "")
            .await
            .iter()
            .filter(|e| e["type"] == "pool.low")
            .count(),
        1,
        "raised once"
    );
}
