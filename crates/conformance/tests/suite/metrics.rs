//! `GET /metrics` as Prometheus reads it: the whole text parses, request
//! latency is a histogram by route template and status class, and the
//! pool's gauges say what the pool's status says.
use meetpool_conformance::TestApp;
use prometheus_parse::{Sample, Scrape, Value};

on_both!(the_metrics_parse_and_say_what_the_service_did);

async fn scrape(t: &TestApp) -> Scrape {
    let text = t.metrics().await;
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("the metrics parse")
}

fn find<'a>(s: &'a Scrape, name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    s.samples
        .iter()
        .find(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
}

fn gauge(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    match find(s, name, labels).map(|x| &x.value) {
        Some(Value::Gauge(v)) => *v,
        other => panic!("{name} {labels:?}: not a gauge: {other:?}"),
    }
}

/// The count of the histogram's series for `route` and `status`.
fn requests(s: &Scrape, route: &str, status: &str) -> f64 {
    let labels = [("route", route), ("status", status)];
    let Some(Value::Histogram(buckets)) =
        find(s, "meetpool_http_request_duration_seconds", &labels).map(|x| &x.value)
    else {
        panic!("no histogram for {labels:?}");
    };
    let counts: Vec<f64> = buckets.iter().map(|b| b.count).collect();
    assert!(
        counts.windows(2).all(|w| w[0] <= w[1]),
        "cumulative: {counts:?}"
    );
    let inf = buckets
        .iter()
        .find(|b| b.less_than.is_infinite())
        .expect("+Inf");
    inf.count
}

async fn the_metrics_parse_and_say_what_the_service_did(t: TestApp) {
    let st = t.create_session_type(60).await;
    let links = t.seed_links().await;
    t.update_link(&links[2].id, serde_json::json!({ "is_available": false }))
        .await
        .unwrap();
    for time in ["10:00", "10:15", "10:30"] {
        t.create_booking(&st, "2030-01-02", time, "paid").await;
    }
    t.links().await;
    t.get("/nowhere/1").await;
    t.get("/nowhere/2").await;
    t.http.get(t.url("/api/links")).send().await.unwrap();

    let s = scrape(&t).await;
    assert!(requests(&s, "/api/links", "2xx") >= 4.0);
    assert_eq!(requests(&s, "/api/links", "4xx"), 1.0);
    assert_eq!(requests(&s, "/api/bookings", "2xx"), 3.0);
    assert_eq!(requests(&s, "unmatched", "4xx"), 2.0);
    assert!(
        !s.samples
            .iter()
            .any(|x| x.labels.get("route").is_some_and(|r| r.contains("nowhere"))),
        "unmatched paths share one label"
    );

    assert_eq!(gauge(&s, "meetpool_links", &[("state", "enabled")]), 2.0);
    assert_eq!(gauge(&s, "meetpool_links", &[("state", "disabled")]), 1.0);
    let status = t.pool_status().await;
    assert_eq!(status.unassigned_paid_bookings, 1);
    assert_eq!(gauge(&s, "meetpool_unassigned_paid_bookings", &[]), 1.0);
    let in_use = gauge(&s, "meetpool_db_connections_in_use", &[]);
    assert!((0.0..=16.0).contains(&in_use), "{in_use}");

    // The counters are still there.
    assert_eq!(t.metric("meetpool_assignments_total").await, 2);
    assert!(find(&s, "meetpool_alerts_total", &[("kind", "pool.exhausted")]).is_some());
}
