//! The dashboard in a real browser: headless Chromium driven over WebDriver
//! (chromedriver), as an operator uses it. It signs in, reads a seeded
//! day's timeline bar by bar against the API, assigns a booking from the
//! queue (and is refused a busy link), disables a link and sees its
//! sessions move, and signs out. Screenshots go to `target/screenshots`.
//!
//! SQLite only: the pages call the same use cases whatever the database,
//! and those run on both in the HTTP tests beside this one. Without
//! Chromium the test is skipped with a message, except when `CI` is set:
//! then it fails.
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use jiff::{Timestamp, ToSpan};
use meetpool_conformance::{eventually, Backend, Booking, Link, TestApp, ADMIN_TOKEN};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(15);

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A program from `env` if set, else from Debian's package, else on PATH.
fn program(env: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path)).filter(|p| p.exists());
    }
    let debian = Path::new("/usr/bin").join(name);
    if debian.exists() {
        return Some(debian);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.exists())
}

/// chromedriver on a port of its own, stopped when dropped.
struct Driver {
    process: Child,
    url: String,
    _profile: tempfile::TempDir,
    chromium: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Driver {
    /// `None` (after saying why) where Chromium is not installed, outside CI.
    async fn start() -> Option<Driver> {
        let found = (
            program("MEETPOOL_CHROMIUM", "chromium"),
            program("MEETPOOL_CHROMEDRIVER", "chromedriver"),
        );
        let (Some(chromium), Some(chromedriver)) = found else {
            let why = "chromium and chromedriver are not installed \
                       (apt-get install chromium chromium-driver)";
            assert!(!in_ci(), "CI is set and the browser test cannot run: {why}");
            // Past the test harness's capture, so that it shows.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED the browser test: {why}; with CI=true this is a failure."
            );
            return None;
        };
        // Port 0: chromedriver takes a free port and says which.
        let mut process = Command::new(&chromedriver)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", chromedriver.display()));
        let port = listening_port(&mut process);
        let driver = Driver {
            process,
            url: format!("http://127.0.0.1:{port}"),
            _profile: tempfile::tempdir().unwrap(),
            chromium,
        };
        let http = reqwest::Client::new();
        eventually("chromedriver answers", WAIT, || async {
            let status = http.get(format!("{}/status", driver.url)).send().await;
            status.is_ok_and(|r| r.status().is_success())
        })
        .await;
        Some(driver)
    }

    async fn browser(&self) -> Client {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,1000",
            &format!("--user-data-dir={}", self._profile.path().display()),
        ];
        let capabilities = json!({
            "goog:chromeOptions": { "binary": self.chromium, "args": args },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

/// The port chromedriver says it listens on ("ChromeDriver was started
/// successfully on port N."); what it writes after that is read and let go.
fn listening_port(process: &mut Child) -> u16 {
    let mut lines = BufReader::new(process.stdout.take().expect("stdout is piped")).lines();
    let mut said = String::new();
    let port = loop {
        let Some(Ok(line)) = lines.next() else {
            panic!("chromedriver exited without saying its port: {said}");
        };
        if let Some(port) = line
            .strip_prefix("ChromeDriver was started successfully on port ")
            .and_then(|rest| rest.trim_end_matches('.').parse().ok())
        {
            break port;
        }
        said.push_str(&line);
        said.push('\n');
    };
    std::thread::spawn(move || lines.for_each(drop));
    port
}

/// One operator at the browser, on one running service.
struct Operator<'a> {
    t: &'a TestApp,
    b: Client,
    shots: PathBuf,
}

impl Operator<'_> {
    async fn open(&self, path: &str) {
        self.b.goto(&self.t.url(path)).await.unwrap();
    }

    async fn path(&self) -> String {
        self.b.current_url().await.unwrap().path().to_owned()
    }

    /// The element `css` once it is on the page.
    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.b
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
    }

    /// The text of `css` once it is on the page. A page replaced between
    /// finding the element and reading it (a form's answer arriving) makes
    /// the element stale: it is found again on the new page.
    async fn text(&self, css: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.find(css).await.text().await {
                Ok(text) => return text,
                Err(e) if e.is_stale_element_reference() && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("{css}: {e}"),
            }
        }
    }

    async fn all(&self, css: &str) -> Vec<fantoccini::elements::Element> {
        self.b.find_all(Locator::Css(css)).await.unwrap()
    }

    async fn screenshot(&self, name: &str) {
        let png = self.b.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    /// Each bar on `link`'s row of the day on screen: (booking id, kind).
    async fn bars(&self, link: &Link) -> Vec<(String, String)> {
        let css = format!("g[data-link='{}'] rect[data-booking]", link.id);
        let mut bars = Vec::new();
        for rect in self.all(&css).await {
            let id = rect.attr("data-booking").await.unwrap().unwrap();
            let kind = rect.attr("class").await.unwrap().unwrap();
            bars.push((id, kind));
        }
        bars.sort();
        bars
    }
}

/// What the timeline should show on `link`, read from the API: each
/// booking holding it, held (unpaid), moved (its trail shows it changed
/// links or left another one, all of it within the day) or paid.
async fn expected(t: &TestApp, bookings: &[Booking], link: &Link) -> Vec<(String, String)> {
    let mut bars = Vec::new();
    for b in bookings {
        if b.meeting_link_id.as_deref() != Some(link.id.as_str()) {
            continue;
        }
        let moved = t.events(&b.id).await.iter().any(|e| {
            e.kind == "link_changed"
                || (["released", "manual_released"].contains(&e.kind.as_str())
                    && e.meeting_link_id != b.meeting_link_id)
        });
        let kind = match (b.payment_status.as_str(), moved) {
            ("paid", true) => "moved",
            ("paid", false) => "paid",
            _ => "held",
        };
        bars.push((b.id.clone(), kind.to_owned()));
    }
    bars.sort();
    bars
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_watches_and_runs_the_pool_from_the_dashboard() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let t = TestApp::start(Backend::Sqlite).await;
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();

    // Tomorrow: three links, a full morning, a hold, a busy afternoon with
    // one session too many, and one booking an operator took off its link.
    let st = t.create_session_type(60).await;
    let links = t.seed_links().await;
    let day = (Timestamp::now() + 24.hours())
        .in_tz("UTC")
        .unwrap()
        .date()
        .to_string();
    let times = [
        "09:00", "10:00", "09:30", "11:30", "15:00", "15:00", "15:00",
    ];
    for (n, time) in times.into_iter().enumerate() {
        let order = format!("ORD-{}", 101 + n);
        t.create_booking_with_order(&order, &st, &day, time, "paid")
            .await;
    }
    let held = t
        .try_create_booking(json!({
            "order_id": "HOLD-1", "user_id": "u", "expert_id": "e", "session_type_id": st.id,
            "booking_date": day, "booking_time": "13:00", "price": 100000, "hold": true,
        }))
        .await
        .unwrap();
    let too_many = t
        .create_booking_with_order("ORD-108", &st, &day, "15:00", "paid")
        .await;
    assert_eq!(too_many.meeting_link_id, None);
    let released = t
        .create_booking_with_order("ORD-109", &st, &day, "17:00", "paid")
        .await;
    t.release_link(&released.id).await.unwrap();

    let op = Operator {
        t: &t,
        b: driver.browser().await,
        shots,
    };

    // Signing in.
    op.open("/admin").await;
    assert_eq!(op.path().await, "/admin/sign-in");
    op.screenshot("01-sign-in").await;
    // By keyboard alone: the token field has the focus, Enter signs in.
    op.find("#token").await;
    let focused = op.b.active_element().await.unwrap();
    assert_eq!(focused.attr("id").await.unwrap().as_deref(), Some("token"));
    let typed = format!("{ADMIN_TOKEN}{}", &*Key::Enter);
    focused.send_keys(&typed).await.unwrap();
    // Signed in once the overview has replaced the sign-in page.
    let overview = op.b.current_url().await.unwrap().join("/admin").unwrap();
    op.b.wait().at_most(WAIT).for_url(&overview).await.unwrap();
    assert_eq!(op.text("main h1").await, "Pool status");
    let cards = op.text("ul.cards").await;
    assert!(cards.contains("3\nlinks enabled, of 3"), "{cards}");
    assert!(cards.contains("2\npaid bookings without a link"), "{cards}");
    op.screenshot("02-overview").await;

    // The day's timeline: on each link's row, the bars of the bookings the
    // API says it holds; beside it, the two waiting.
    op.open(&format!("/admin/day?date={day}")).await;
    op.find("svg.timeline").await;
    let bookings = t.bookings(&format!("date={day}")).await.unwrap();
    let mut shown = 0;
    for link in &links {
        let bars = op.bars(link).await;
        assert_eq!(
            bars,
            expected(&t, &bookings, link).await,
            "{}",
            link.meeting_link
        );
        shown += bars.len();
    }
    assert_eq!(shown, 8, "seven paid sessions with a link and one hold");
    assert!(
        op.bars(&links[0]).await.len() >= 2,
        "best-fit packs the morning"
    );
    let held_bar = format!("rect[data-booking='{}']", held.id);
    assert_eq!(
        op.find(&held_bar)
            .await
            .attr("class")
            .await
            .unwrap()
            .as_deref(),
        Some("held")
    );
    let mut waiting = Vec::new();
    for li in op.all("#waiting li[data-booking]").await {
        waiting.push(li.attr("data-booking").await.unwrap().unwrap());
    }
    waiting.sort();
    let mut want = vec![too_many.id.clone(), released.id.clone()];
    want.sort();
    assert_eq!(waiting, want);
    assert!(
        op.all("line.now").await.is_empty(),
        "tomorrow has no now-line"
    );
    op.screenshot("03-day").await;
    op.open("/admin/day").await;
    op.find("line.now").await;

    // The queue: the released booking is assigned automatically; the one
    // too many is refused the busy link chosen for it.
    op.open("/admin/queue").await;
    op.find(&format!(
        "tr[data-booking='{}'] button[name=auto]",
        released.id
    ))
    .await
    .click()
    .await
    .unwrap();
    let done = op.text("p.notice.done").await;
    assert!(
        done.contains(&format!(
            "Order {} (17:00–18:00) now has meet.google.com/",
            released.order_id
        )),
        "{done}"
    );
    assert!(t.booking(&released.id).await.meeting_link_id.is_some());
    let row = format!("tr[data-booking='{}']", too_many.id);
    op.find(&format!("{row} select"))
        .await
        .select_by_value(&links[0].id)
        .await
        .unwrap();
    op.find(&format!("{row} button.quiet"))
        .await
        .click()
        .await
        .unwrap();
    let refused = op.text("p.notice.refused").await;
    assert!(
        refused.contains("is held by booking") && refused.contains("Nothing was changed"),
        "{refused}"
    );
    assert_eq!(t.booking(&too_many.id).await.meeting_link_id, None);
    op.screenshot("04-queue-refused").await;

    // Disabling the first link: the button says how many sessions move,
    // and they do.
    let on_first: Vec<Booking> = t
        .bookings(&format!("date={day}"))
        .await
        .unwrap()
        .into_iter()
        .filter(|b| b.meeting_link_id.as_deref() == Some(links[0].id.as_str()))
        .collect();
    let n = on_first.len();
    op.open("/admin/links").await;
    let disable = format!("tr[data-link='{}'] button.danger", links[0].id);
    let label = op.text(&disable).await;
    assert_eq!(label, format!("Disable (moves {n} coming sessions)"));
    op.find(&disable).await.click().await.unwrap();
    let done = op.text("p.notice.done").await;
    assert!(
        done.contains(&format!("its {n} coming sessions moved")),
        "{done}"
    );
    op.screenshot("05-links").await;
    assert!(!t.link(&links[0].id).await.is_available);

    op.open(&format!("/admin/day?date={day}")).await;
    op.find("svg.timeline").await;
    assert!(
        op.bars(&links[0]).await.is_empty(),
        "nothing left on the disabled link"
    );
    let after = t.bookings(&format!("date={day}")).await.unwrap();
    for before in &on_first {
        let now = after.iter().find(|b| b.id == before.id).unwrap();
        let bar = format!("rect[data-booking='{}']", now.id);
        match (&now.meeting_link_id, now.payment_status.as_str()) {
            (Some(_), "paid") => {
                assert_eq!(
                    op.find(&bar).await.attr("class").await.unwrap().as_deref(),
                    Some("moved")
                )
            }
            (None, "paid") => {
                op.find(&format!("#waiting li[data-booking='{}']", now.id))
                    .await;
            }
            _ => {}
        }
    }
    for link in &links[1..] {
        assert_eq!(op.bars(link).await, expected(&t, &after, link).await);
    }
    op.screenshot("06-day-after-disabling").await;
    op.b.set_window_size(390, 844).await.unwrap();
    op.screenshot("07-day-on-a-phone").await;
    op.b.set_window_size(1280, 1000).await.unwrap();

    // Signing out.
    op.find("form.signout button").await.click().await.unwrap();
    op.find("#token").await;
    assert_eq!(op.path().await, "/admin/sign-in");
    op.open("/admin/links").await;
    assert_eq!(op.path().await, "/admin/sign-in");
    op.b.close().await.unwrap();
}
