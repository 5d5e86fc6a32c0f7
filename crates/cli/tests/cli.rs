//! The `meetpool` binary as an operator uses it, on a real SQLite file.
mod common;

use std::path::Path;
use std::process::Output;

use serde_json::Value;

fn meetpool(dir: &Path, args: &[&str]) -> Output {
    common::meetpool()
        .args(args)
        .current_dir(dir)
        .env(
            "DATABASE_URL",
            format!("sqlite:{}", dir.join("ops.db").display()),
        )
        .env_remove("MEETPOOL_ADMIN_TOKEN")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run meetpool")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = meetpool(dir, args);
    assert!(
        out.status.success(),
        "meetpool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn an_operator_manages_the_pool_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(ok(d, &["migrate"]).contains("database migrated (sqlite)"));

    let st: Value = serde_json::from_str(&ok(
        d,
        &[
            "session-types",
            "add",
            "--name",
            "Consultation",
            "--duration",
            "60",
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(st["duration"], 60);
    let table = ok(d, &["session-types", "list"]);
    assert!(
        table.starts_with("ID") && table.contains("Consultation"),
        "{table}"
    );

    ok(
        d,
        &[
            "links",
            "add",
            "https://meet.google.com/kcw-ebey-pqu",
            "--notes",
            "first",
        ],
    );
    ok(d, &["links", "add", "https://meet.google.com/ppt-myeq-puu"]);
    let links: Value = serde_json::from_str(&ok(d, &["links", "list", "--json"])).unwrap();
    assert_eq!(links.as_array().unwrap().len(), 2);
    assert_eq!(links[0]["notes"], "first");

    // A duplicate and a non-https link are refused with a reason.
    let dup = meetpool(d, &["links", "add", "https://meet.google.com/kcw-ebey-pqu"]);
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already in the pool"));
    let bad = meetpool(d, &["links", "add", "http://example.com/x"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("https"));

    // Disable by URL, spelled any way; the table and the status show it.
    assert!(ok(
        d,
        &["links", "disable", "https://meet.google.com/pptmyeqpuu"]
    )
    .contains("disabled"));
    // A Zoom meeting by its number, whatever host and passcode it is typed with.
    ok(
        d,
        &[
            "links",
            "add",
            "https://us02web.zoom.us/j/123456789?pwd=abc",
        ],
    );
    assert!(ok(d, &["links", "disable", "https://zoom.us/j/123456789"]).contains("disabled"));
    let table = ok(d, &["links", "list"]);
    assert!(
        table
            .lines()
            .any(|l| l.contains("ppt-myeq-puu") && l.contains("disabled")),
        "{table}"
    );
    let status: Value = serde_json::from_str(&ok(d, &["status", "--json"])).unwrap();
    assert_eq!(
        (
            status["total_links"].as_i64(),
            status["available_links"].as_i64()
        ),
        (Some(3), Some(1))
    );
    assert!(ok(d, &["bookings", "list", "--unassigned"]).contains("(none)"));

    // The coming days against the pool: one enabled link, nothing booked.
    let days: Value = serde_json::from_str(&ok(
        d,
        &[
            "capacity",
            "--from",
            "2031-05-06",
            "--to",
            "2031-05-07",
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(days.as_array().unwrap().len(), 2);
    assert_eq!(
        (
            days[0]["enabled_links"].as_u64(),
            days[0]["headroom"].as_i64()
        ),
        (Some(1), Some(1))
    );
    let table = ok(d, &["capacity"]);
    assert!(
        table.starts_with("DATE") && table.lines().count() == 31,
        "{table}"
    );

    let missing = meetpool(d, &["assign", "5f0c2a8e-1d43-4b8e-9a52-0c6b1f5e3a11"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("booking not found"));
}

/// A pool link written by hand before the database refused them, which a
/// browser must never be sent to: `migrate` disables it and says so, its
/// text quoted (it may hold terminal escapes).
#[test]
fn migrate_lists_the_unsafe_links_it_disables() {
    use meetpool_conformance::{Backend, TestDb};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["migrate"]);
    let url = format!("sqlite:{}", d.join("ops.db").display());
    let link = "javascript:alert(1)//\u{1b}[2J";
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let raw = TestDb::at(Backend::Sqlite, url).raw().await;
            raw.as_before_0017().await;
            raw.execute(&format!(
                "INSERT INTO meeting_links_pool (id, seq, meeting_link) \
                 VALUES ('00000000-0000-4000-8000-0000000000ee', 7, '{link}')"
            ))
            .await
            .unwrap();
        });
    let out = ok(d, &["migrate"]);
    assert!(out.contains("disabled 1 pool link(s)"), "{out}");
    assert!(
        out.contains(
            r#"link 00000000-0000-4000-8000-0000000000ee  "javascript:alert(1)//\u{1b}[2J""#
        ),
        "{out}"
    );
    assert!(
        !out.contains('\u{1b}'),
        "a terminal escape printed: {out:?}"
    );
    let links: Value = serde_json::from_str(&ok(d, &["links", "list", "--json"])).unwrap();
    assert_eq!(links[0]["is_available"], false, "{links}");
    // Once done, done: the next migrate has nothing to say.
    assert!(!ok(d, &["migrate"]).contains("disabled"));
}

#[test]
fn dates_outside_the_supported_years_are_refused_by_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["migrate"]);
    for far in ["0001-01-01", "9999-12-30", "2200-01-01"] {
        for args in [
            &["bookings", "list", "--date", far][..],
            &["capacity", "--from", far, "--to", "2030-01-01"],
            &["capacity", "--from", "2030-01-01", "--to", far],
            &["capacity", "--from", far],
        ] {
            let out = meetpool(d, args);
            let said = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{args:?}");
            assert!(
                said.contains("outside the supported range") && said.contains("2000-01-01"),
                "{args:?}: {said}"
            );
        }
    }
    assert!(ok(d, &["capacity", "--from", "2199-12-31"]).contains("2199-12-31"));
}

#[tokio::test]
async fn bookings_list_all_reads_every_page() {
    use meetpool_conformance::{Backend, TestApp};

    let t = TestApp::start(Backend::Sqlite).await;
    let st = t.create_session_type(60).await;
    for n in 0..7 {
        let time = format!("{:02}:00", 9 + n / 2);
        t.create_booking_with_order(&format!("ALL-{n}"), &st, "2031-05-06", &time, "paid")
            .await;
    }
    let dir = tempfile::tempdir().unwrap();
    let list = |args: &[&str]| {
        let out = common::meetpool()
            .args(["bookings", "list", "--json"])
            .args(args)
            .current_dir(dir.path())
            .env("DATABASE_URL", &t.db.url)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        listed
            .iter()
            .map(|b| b["order_id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(list(&["--limit", "3"]).len(), 3);
    let all = list(&["--limit", "3", "--all"]);
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!((all.len(), sorted.len()), (7, 7), "{all:?}");
}
