//! Slow or idle clients cannot starve the service: a connection that does
//! not finish its headers, an idle keep-alive connection and a request
//! whose body never comes are each cut off after their own timeout, and
//! at the connection cap the next connection waits for a free slot. The
//! database plays no part: these run on SQLite.
use std::time::Duration;

use meetpool_conformance::{Backend, HttpSettings, TestApp, ADMIN_TOKEN};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Long enough for a loaded machine; the timeouts under test are seconds.
const DEADLINE: Duration = Duration::from_secs(30);

async fn start(settings: HttpSettings) -> TestApp {
    TestApp::start_with_http(Backend::Sqlite, settings).await
}

fn addr(t: &TestApp) -> &str {
    t.base.trim_start_matches("http://")
}

/// Reads until the server closes the connection (or resets it); what it
/// sent before.
async fn until_closed(socket: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&seen).into_owned(),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// The soft limit on open files: each socket here costs two (client and
/// server end, one process).
fn open_files_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|l| l.starts_with("Max open files"))?
                .split_whitespace()
                .nth(3)?
                .parse()
                .ok()
        })
        .unwrap_or(1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_are_closed_after_the_header_timeout_while_health_answers() {
    let sockets = 2000.min(open_files_limit().saturating_sub(256) / 2);
    assert!(
        sockets >= 100,
        "too few file descriptors to test: {sockets}"
    );
    let t = start(HttpSettings {
        header_timeout: Duration::from_secs(3),
        ..HttpSettings::default()
    })
    .await;

    let mut half_open = Vec::with_capacity(sockets);
    for _ in 0..sockets {
        let mut s = TcpStream::connect(addr(&t)).await.unwrap();
        s.write_all(b"G").await.unwrap();
        half_open.push(s);
    }
    let (status, body) = t.get("/healthz").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let last = half_open.last().unwrap();
    let mut probe = [0u8; 1];
    assert!(
        matches!(last.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the half-open connections were still open while /healthz answered"
    );

    let closed = futures_util::future::join_all(half_open.iter_mut().map(until_closed));
    let answers = timeout(DEADLINE, closed)
        .await
        .expect("every half-open connection is closed by the server");
    assert!(
        answers.iter().all(String::is_empty),
        "nothing is answered to them"
    );
    assert_eq!(t.get("/healthz").await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    // A header timeout that would never fire here: the idle one does.
    let t = start(HttpSettings {
        header_timeout: Duration::from_secs(600),
        idle_timeout: Duration::from_secs(1),
        ..HttpSettings::default()
    })
    .await;
    let mut s = TcpStream::connect(addr(&t)).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: meetpool\r\n\r\n")
        .await
        .unwrap();
    let seen = timeout(DEADLINE, until_closed(&mut s))
        .await
        .expect("the idle connection is closed by the server");
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert_eq!(seen.matches("HTTP/1.1 ").count(), 1, "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_slower_than_the_request_timeout_is_answered_503_in_json() {
    let t = start(HttpSettings {
        request_timeout: Duration::from_secs(1),
        ..HttpSettings::default()
    })
    .await;
    // Each route answers in its own shape: the native API's, the previous
    // system's assign route's, the webhook's.
    let native = |b: &serde_json::Value| b["error"]["code"] == "request_timeout";
    let assign = |b: &serde_json::Value| {
        b["success"] == false && b["error"].as_str().is_some_and(|e| e.contains("try again"))
    };
    let webhook =
        |b: &serde_json::Value| b["success"] == false && b["error"]["code"] == "request_timeout";
    type Shaped<'a> = &'a dyn Fn(&serde_json::Value) -> bool;
    let routes: [(&str, Shaped); 4] = [
        ("/api/links", &native),
        ("/functions/v1/assign-meeting-link", &assign),
        ("/webhooks/midtrans", &webhook),
        ("/functions/v1/midtrans-webhook", &webhook),
    ];
    for (path, shaped) in routes {
        let mut s = TcpStream::connect(addr(&t)).await.unwrap();
        // The body announced never comes.
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: meetpool\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let seen = timeout(DEADLINE, until_closed(&mut s))
            .await
            .expect("the slow request is answered and its connection closed");
        assert!(seen.starts_with("HTTP/1.1 503"), "{path}: {seen}");
        let body = &seen[seen.find("\r\n\r\n").unwrap() + 4..];
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(shaped(&body), "{path}: {body}");
    }
    assert!(t.links().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_a_connection_waits_for_a_free_slot() {
    let t = start(HttpSettings {
        max_connections: 2,
        ..HttpSettings::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(TcpStream::connect(addr(&t)).await.unwrap());
    }
    // A client of its own, so that no pooled connection slips in.
    let health = {
        let url = t.url("/healthz");
        tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status()) })
    };
    let mut health = std::pin::pin!(health);
    // Bounded on purpose: the request is not served while both slots are
    // held.
    assert!(
        timeout(Duration::from_millis(500), &mut health)
            .await
            .is_err(),
        "a third connection was served past the cap of 2"
    );
    drop(held.pop());
    let status = timeout(DEADLINE, health)
        .await
        .expect("served once a slot is free")
        .unwrap()
        .unwrap();
    assert_eq!(status, StatusCode::OK);
}
