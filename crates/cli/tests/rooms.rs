//! `meetpool links check` from the binary, against a local Google Meet that
//! answers as its reference documents: the provider's settings refused when
//! incomplete, a room Meet no longer knows disabled, and the credentials
//! nowhere in what the command prints or logs.
mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use meetpool_conformance::providers::{FakeMeet, GOOGLE_CLIENT_SECRET, GOOGLE_REFRESH_TOKEN};
use serde_json::Value;

async fn meetpool(dir: &Path, meet: Option<&FakeMeet>, args: &[&str]) -> Output {
    let mut cmd = common::meetpool();
    cmd.args(args)
        .current_dir(dir)
        .env(
            "DATABASE_URL",
            format!("sqlite:{}", dir.join("rooms.db").display()),
        )
        .env("RUST_LOG", "debug");
    if let Some(meet) = meet {
        let c = meet.config();
        cmd.env("MEETPOOL_GOOGLE_CLIENT_ID", c.client_id)
            .env("MEETPOOL_GOOGLE_CLIENT_SECRET", GOOGLE_CLIENT_SECRET)
            .env("MEETPOOL_GOOGLE_REFRESH_TOKEN", GOOGLE_REFRESH_TOKEN)
            .env("MEETPOOL_GOOGLE_TOKEN_URL", c.token_url.as_str())
            .env("MEETPOOL_GOOGLE_MEET_API", c.api.as_str());
    }
    // The fake provider answers on this test's runtime meanwhile.
    tokio::task::spawn_blocking(move || cmd.output().expect("run meetpool"))
        .await
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_checks_the_pool_s_rooms_at_google_meet() {
    let dir = tempfile::tempdir().unwrap();
    let d: PathBuf = dir.path().into();
    let meet = FakeMeet::start().await;
    assert!(meetpool(&d, None, &["migrate"]).await.status.success());
    let kept = meet.room("abc-defg-hij");
    let gone = meet.room("klm-nopq-rst");
    for link in [&kept, &gone] {
        let out = meetpool(&d, None, &["links", "add", link]).await;
        assert!(out.status.success(), "{}", text(&out));
    }
    meet.forget("klm-nopq-rst");

    let out = meetpool(&d, None, &["links", "check"]).await;
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no meeting provider is configured"),
        "{}",
        text(&out)
    );
    let out = common::meetpool()
        .args(["links", "check"])
        .current_dir(&d)
        .env(
            "DATABASE_URL",
            format!("sqlite:{}", d.join("rooms.db").display()),
        )
        .env("MEETPOOL_GOOGLE_CLIENT_ID", "only-the-id")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("some are missing"), "{}", text(&out));

    let out = meetpool(&d, Some(&meet), &["links", "check", "--json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let rooms: Value = serde_json::from_slice(&out.stdout).unwrap();
    let found = |link: &str| {
        rooms
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["meeting_link"] == link)
            .cloned()
            .unwrap()
    };
    assert_eq!(found(&kept)["outcome"], "exists");
    assert_eq!(found(&kept)["is_available"], true);
    assert_eq!(found(&gone)["outcome"], "gone");
    assert_eq!(found(&gone)["is_available"], false);
    assert_eq!(found(&gone)["provider"], "google_meet");

    let all = text(&out);
    for secret in [GOOGLE_CLIENT_SECRET, GOOGLE_REFRESH_TOKEN, "ya29."] {
        assert!(!all.contains(secret), "{secret} in the output: {all}");
    }
    let listed = meetpool(&d, None, &["links", "list"]).await;
    assert!(text(&listed).contains("disabled"));
}
