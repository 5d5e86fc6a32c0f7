//! Outages: the database goes away under the running service (a cut
//! network to PostgreSQL, a closed SQLite pool). Midtrans is answered 503,
//! so that it retries, and the retry is applied as if it were the first
//! delivery.
use std::net::SocketAddr;

use meetpool_conformance::{Backend, TestApp, TestDb};
use meetpool_store::ConnectOptions;
use reqwest::StatusCode;

use super::shop::{count, fixture, Shop, LINK};

on_both!(database_unreachable_is_503_and_the_retry_applies);

/// A TCP proxy between the service and PostgreSQL that the test can cut:
/// while cut, every connection through it is dropped, as by a network
/// failure or a database restart.
struct Proxy {
    addr: SocketAddr,
    up: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, _) = tokio::sync::watch::channel(true);
        let watch = up.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut down = watch.subscribe();
                if !*down.borrow() {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = down.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Self { addr, up }
    }

    fn cut(&self) {
        self.up.send_replace(false);
    }

    fn heal(&self) {
        self.up.send_replace(true);
    }
}

/// `host:port` of a `postgres://` URL, and the URL going through `via`.
fn through(url: &str, via: SocketAddr) -> (String, String) {
    let rest = url.split_once("://").unwrap().1;
    let start = url.len() - rest.len() + rest.find('@').map_or(0, |i| i + 1);
    let end = start + url[start..].find(['/', '?']).unwrap_or(url.len() - start);
    let authority = &url[start..end];
    let upstream = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:5432")
    };
    let proxied = format!("{}{via}{}", &url[..start], &url[end..]);
    (upstream, proxied)
}

async fn database_unreachable_is_503_and_the_retry_applies(db: TestDb) {
    let options = ConnectOptions::default();
    let (shop, proxy, sqlite_pool) = match db.backend {
        Backend::Sqlite => {
            let store = meetpool_store::sqlite::SqliteStore::connect(&db.url, &options)
                .await
                .unwrap();
            let pool = store.pool().clone();
            let t = TestApp::spawn_on_store(db, Box::new(store), |_| {}).await;
            (Shop::stock(t).await, None, Some(pool))
        }
        Backend::Postgres => {
            let (upstream, _) = through(&db.url, "127.0.0.1:1".parse().unwrap());
            let proxy = Proxy::start(upstream).await;
            let (_, url) = through(&db.url, proxy.addr);
            let store = meetpool_store::connect(&url, &options).await.unwrap();
            let t = TestApp::spawn_on_store(db, store, |_| {}).await;
            (Shop::stock(t).await, Some(proxy), None)
        }
    };

    // The database goes away under the running service.
    if let Some(proxy) = &proxy {
        proxy.cut();
    }
    if let Some(pool) = &sqlite_pool {
        pool.close().await;
    }
    for _ in 0..2 {
        let refused = shop
            .notify(fixture("settlement-bank-transfer.json"))
            .await
            .refused();
        assert_eq!(
            refused.why(),
            (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable")
        );
    }

    // Back (the network heals, or the service restarts on its file):
    // Midtrans' retry is applied as if it were the first delivery.
    let t = match &proxy {
        Some(proxy) => {
            proxy.heal();
            None
        }
        None => Some(shop.t.replica().await),
    };
    let t = t.as_ref().unwrap_or(&shop.t);
    let answer = t
        .notify(fixture("settlement-bank-transfer.json"))
        .await
        .settled();
    assert!(!answer.duplicate, "{answer:?}");
    assert_eq!(answer.payment_status, "paid");
    assert_eq!(answer.meeting_link.as_deref(), Some(LINK));
    let kinds = t.event_kinds(shop.id("ORDER-1001")).await;
    assert_eq!(count(&kinds, "payment"), 1, "{kinds:?}");
    assert_eq!(count(&kinds, "assigned"), 1, "{kinds:?}");
}
