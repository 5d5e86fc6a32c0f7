//! `meetpool adopt` and `meetpool serve --no-migrate` as a platform's
//! operator runs them on its own PostgreSQL database.
mod common;

use std::process::{Command, Output, Stdio};

use common::eventually;
use meetpool_conformance::{run_on, Backend, PlatformDb};
use serde_json::Value;

const VALUES: [&str; 6] = [
    "--payment-status-values",
    "pending=waiting,failed=waiting,cancelled=waiting,expired=waiting",
    "--status-values",
    "paid=confirmed,failed=cancelled,expired=cancelled,refunded=cancelled",
    "--default-duration",
    "60",
];

fn meetpool(url: &str, args: &[&str]) -> Command {
    let mut cmd = common::meetpool();
    cmd.args(args)
        .env("DATABASE_URL", url)
        .env("MEETPOOL_TIMEZONE", "Asia/Jakarta")
        .env_remove("MEETPOOL_BUFFER_MINUTES")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run meetpool")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_rehearses_adopts_and_serves_a_platform_database() {
    run_on(Backend::Postgres, operator_story).await;
}

async fn operator_story(db: PlatformDb) {
    let owner = db.owner_url();
    let mut args = vec!["adopt", "--role", &db.role];
    args.extend(VALUES);

    // Without the vocabulary: refused, saying which states and how; exit 1.
    let out = run(&mut meetpool(
        &owner,
        &["adopt", "--dry-run", "--role", &db.role],
    ));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        text.contains("--payment-status-values pending=VALUE"),
        "{text}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing was changed"));

    // The dry run, for scripts.
    let mut dry = args.clone();
    dry.extend(["--dry-run", "--json"]);
    let out = run(&mut meetpool(&owner, &dry));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["found"]["bookings"], 9);
    // Progress goes to stderr while it works.
    assert!(String::from_utf8_lossy(&out.stderr).contains("copying bookings"));

    // Adopt, readable: the moves and what to look at.
    let out = run(meetpool(&owner, &args).env("MEETPOOL_ROLE_PASSWORD", &db.role_password));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "ORDER-A2",
        "moved: it overlapped",
        "assign_meeting_link",
        "serve --no-migrate",
    ] {
        assert!(text.contains(needle), "{needle} not in:\n{text}");
    }

    // The service's role cannot change meetpool's schema, and need not:
    // an up-to-date database asks nothing of `migrate`.
    let out = run(&mut meetpool(&db.service_url(), &["migrate"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The operator's commands work on the adopted database, as the same
    // role: the pool as adoption found it.
    let out = run(&mut meetpool(&db.service_url(), &["status", "--json"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: Value = serde_json::from_slice(&out.stdout).expect("a JSON status");
    assert!(status["total_links"].as_i64().unwrap() > 0, "{status}");

    // Adopting again without the zone keeps the database's; with another
    // one it is refused unless told explicitly.
    let again = run(meetpool(&owner, &args)
        .env_remove("MEETPOOL_TIMEZONE")
        .env("MEETPOOL_ROLE_PASSWORD", &db.role_password));
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let refused = run(meetpool(&owner, &args)
        .env("MEETPOOL_TIMEZONE", "UTC")
        .env("MEETPOOL_ROLE_PASSWORD", &db.role_password));
    assert!(!refused.status.success());
    let text = String::from_utf8_lossy(&refused.stdout);
    assert!(
        text.contains("Asia/Jakarta") && text.contains("--change-settings"),
        "{text}"
    );
    let held: String = {
        let platform = db.owner().await;
        let zone = sqlx::query_scalar("SELECT timezone FROM meetpool.meetpool_settings")
            .fetch_one(&platform)
            .await
            .unwrap();
        platform.close().await;
        zone
    };
    assert_eq!(held, "Asia/Jakarta");

    // The row adoption left out is listed, with what to fix.
    let out = run(&mut meetpool(
        &db.service_url(),
        &["platform", "problems", "--json"],
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let problems: Value = serde_json::from_slice(&out.stdout).expect("a JSON list");
    assert_eq!(problems[0]["order_id"], "ORDER-A7", "{problems}");
    assert_eq!(problems[0]["reason"], "unreadable_time", "{problems}");
    let out = run(&mut meetpool(&db.service_url(), &["platform", "problems"]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("HH:MM"));

    // As the platform's own role, whose search_path misses meetpool's
    // schema, every command says what the database is and how to connect,
    // and `migrate` puts nothing beside the platform's tables.
    for command in [&["status"][..], &["migrate"], &["serve", "--no-migrate"]] {
        let out = run(&mut meetpool(&owner, command));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{command:?}: {err}");
        assert!(
            err.contains("adopted in place") && err.contains("search_path"),
            "{command:?}: {err}"
        );
    }
    let platform = db.owner().await;
    let stray: bool = sqlx::query_scalar(
        "SELECT to_regclass('public._sqlx_migrations') IS NOT NULL \
           OR to_regclass('public.meetpool_settings') IS NOT NULL",
    )
    .fetch_one(&platform)
    .await
    .unwrap();
    assert!(!stray, "migrate wrote into the platform's schema");
    platform.close().await;

    // The service, as the role adoption made, with the usual configuration.
    let serve = common::start(
        meetpool(&db.service_url(), &["serve", "--no-migrate"])
            .env("MEETPOOL_ADMIN_TOKEN", "adopt-admin-token"),
    )
    .expect("meetpool serve starts");
    let base = serve.base();
    let http = reqwest::Client::new();
    let get_booking = || {
        http.get(format!(
            "{base}/api/bookings/00000000-0000-4000-e000-000000000003"
        ))
        .bearer_auth("adopt-admin-token")
        .send()
    };
    eventually("meetpool serve answers", common::STARTUP, || async {
        get_booking().await.is_ok()
    })
    .await;
    let booking = get_booking().await.unwrap().json::<Value>().await.unwrap();
    // The row left out is alerted once the service runs.
    eventually("a platform.row_rejected alert", common::STARTUP, || async {
        let text = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.contains("meetpool_alerts_total{kind=\"platform.row_rejected\"} 1")
    })
    .await;
    let log = serve.stop();
    assert!(
        log.lines().any(|l| l.contains("WARN")
            && l.contains("00000000-0000-4000-e000-000000000007")
            && l.contains("unreadable_time")),
        "{log}"
    );
    assert_eq!(booking["order_id"], "ORDER-A3");
    assert_eq!(booking["payment_status"], "paid");
    assert!(booking["meeting_link"].is_string(), "{booking}");
}
