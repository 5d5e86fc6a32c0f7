//! `meetpool serve` refuses to start, saying why, when it could only do
//! harm: settings that differ from the other replicas', a database it
//! cannot write, a database that is not migrated. The other commands, on a
//! database not yet migrated, say so too.
mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn meetpool(dir: &Path, db: &str, env: &[(&str, &str)]) -> Command {
    let mut cmd = common::meetpool();
    cmd.current_dir(dir)
        .env("DATABASE_URL", format!("sqlite:{}", dir.join(db).display()))
        .env("MEETPOOL_ADMIN_TOKEN", "startup-admin-token")
        .env_remove("MEETPOOL_TIMEZONE")
        .env_remove("MEETPOOL_BUFFER_MINUTES")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `serve`: `Err(stderr)` when it exits, `Ok(())` when it is still
/// serving after it answered /readyz (then it is stopped).
fn serve(mut cmd: Command, args: &[&str]) -> Result<(), String> {
    let server = common::start(cmd.arg("serve").args(args))?;
    // On a runtime of its own, on a thread of its own: some tests are on a
    // runtime already.
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(server.ready_or_exit())
        })
        .join()
        .unwrap()
    })
}

fn run(cmd: &mut Command, args: &[&str]) -> Output {
    cmd.args(args).output().unwrap()
}

#[test]
fn settings_belong_to_the_install_and_change_only_when_told() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let jakarta = [("MEETPOOL_TIMEZONE", "Asia/Jakarta")];
    let utc = [("MEETPOOL_TIMEZONE", "UTC")];

    // The first replica on a fresh database chooses the settings.
    serve(meetpool(d, "s.db", &jakarta), &[]).expect("the first replica starts");
    // A replica, or a migration, without settings of its own runs with the
    // database's and changes nothing.
    serve(meetpool(d, "s.db", &[]), &[]).expect("a replica without settings starts");
    let out = run(&mut meetpool(d, "s.db", &[]), &["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One started with another zone would move every booking by seven
    // hours: it refuses, naming both.
    let refused = serve(meetpool(d, "s.db", &utc), &[]).unwrap_err();
    for needle in ["Asia/Jakarta", "UTC", "meetpool migrate"] {
        assert!(refused.contains(needle), "{needle} not in: {refused}");
    }
    let refused = serve(
        meetpool(d, "s.db", &[("MEETPOOL_BUFFER_MINUTES", "10")]),
        &[],
    )
    .unwrap_err();
    assert!(refused.contains("MEETPOOL_BUFFER_MINUTES=10"), "{refused}");
    // So does a migration with other settings, unless told explicitly.
    let out = run(&mut meetpool(d, "s.db", &utc), &["migrate"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("0 coming bookings") && err.contains("--change-settings"),
        "{err}"
    );
    serve(meetpool(d, "s.db", &jakarta), &["--no-migrate"]).expect("unchanged settings start");

    // Changing them is said once, explicitly, for every replica.
    let out = run(
        &mut meetpool(d, "s.db", &utc),
        &["migrate", "--change-settings"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serve(meetpool(d, "s.db", &utc), &[]).expect("the new settings start");
    serve(meetpool(d, "s.db", &[]), &[]).expect("and are the default now");
    let refused = serve(meetpool(d, "s.db", &jakarta), &[]).unwrap_err();
    assert!(refused.contains("differ from the database's"), "{refused}");
}

#[test]
fn a_database_that_cannot_be_written_or_is_not_migrated_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let refused = serve(meetpool(d, "new.db", &[]), &["--no-migrate"]).unwrap_err();
    assert!(refused.contains("not migrated"), "{refused}");

    let out = run(&mut meetpool(d, "ro.db", &[]), &["migrate"]);
    assert!(out.status.success());
    let read_only = |args: &[&str]| {
        let mut cmd = meetpool(d, "ro.db", &[]);
        cmd.env(
            "DATABASE_URL",
            format!("sqlite:{}?mode=ro", d.join("ro.db").display()),
        );
        serve(cmd, args).unwrap_err()
    };
    for args in [&[][..], &["--no-migrate"][..]] {
        let refused = read_only(args);
        assert!(refused.contains("read-only"), "{args:?}: {refused}");
        assert!(!refused.contains("internal error"), "{refused}");
    }
}

#[tokio::test]
async fn a_command_on_a_database_not_yet_migrated_says_to_migrate_it() {
    use meetpool_conformance::{runs_on, Backend, TestDb};

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut databases = vec![format!("sqlite:{}", d.join("new.db").display())];
    let pg = match runs_on(Backend::Postgres).await {
        true => Some(TestDb::create(Backend::Postgres).await),
        false => None,
    };
    databases.extend(pg.as_ref().map(|db| db.url.clone()));
    for url in &databases {
        let command = |args: &[&str]| {
            let mut cmd = meetpool(d, "unused.db", &[]);
            cmd.env("DATABASE_URL", url);
            run(&mut cmd, args)
        };
        for args in [
            &["links", "list"][..],
            &["links", "add", "https://meet.google.com/aaa-aaaa-aaa"],
            &["events", "on"],
            &["status"],
        ] {
            let out = command(args);
            let said = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{url} {args:?}");
            assert!(
                said.contains("not migrated: run `meetpool migrate`"),
                "{url} {args:?}: {said}"
            );
        }
        assert!(command(&["migrate"]).status.success());
        let out = command(&["links", "add", "https://meet.google.com/aaa-aaaa-aaa"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = command(&["links", "list"]);
        assert!(String::from_utf8_lossy(&out.stdout).contains("aaa-aaaa-aaa"));
    }
}

/// The binary's `serve` on `url`: `Err(stderr)` when it exits.
fn serve_on(d: &Path, url: &str, args: &[&str]) -> Result<(), String> {
    let mut cmd = meetpool(d, "unused.db", &[]);
    cmd.env("DATABASE_URL", url);
    serve(cmd, args)
}

#[tokio::test]
async fn a_database_migrated_by_a_newer_meetpool_is_refused_naming_both_versions() {
    use meetpool_conformance::{runs_on, Backend, TestDb};

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut databases = vec![TestDb::create(Backend::Sqlite).await];
    if runs_on(Backend::Postgres).await {
        databases.push(TestDb::create(Backend::Postgres).await);
    }
    for db in &databases {
        let url = &db.url;
        let command = |args: &[&str]| {
            let mut cmd = meetpool(d, "unused.db", &[]);
            cmd.env("DATABASE_URL", url);
            run(&mut cmd, args)
        };
        assert!(command(&["migrate"]).status.success(), "{url}");
        // What a later meetpool's migration leaves behind.
        let checksum = match db.backend {
            Backend::Sqlite => "x'00'",
            Backend::Postgres => "'\\x00'::bytea",
        };
        db.raw()
            .await
            .execute(&format!(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                 VALUES (99999, 'from a newer meetpool', true, {checksum}, 1)"
            ))
            .await
            .unwrap();

        let said = |out: Output| {
            assert!(!out.status.success(), "{url}: it went on");
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(!stdout.contains("database migrated"), "{url}: {stdout}");
            String::from_utf8_lossy(&out.stderr).into_owned()
        };
        let mut refusals = vec![
            said(command(&["migrate"])),
            said(command(&["status"])),
            said(command(&["links", "list"])),
        ];
        for args in [&[][..], &["--no-migrate"][..]] {
            refusals.push(serve_on(d, url, args).expect_err("serve started on a newer schema"));
        }
        for refused in refusals {
            assert!(
                refused.contains("schema is version 99999, newer than this meetpool's ("),
                "{url}: {refused}"
            );
            assert!(!refused.contains("internal error"), "{url}: {refused}");
        }
    }
}

#[test]
fn a_sqlite_url_without_a_file_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for url in ["sqlite:", "sqlite://", "sqlite::memory:"] {
        for args in [&["migrate"][..], &["status"][..]] {
            let mut cmd = meetpool(d, "unused.db", &[]);
            cmd.env("DATABASE_URL", url);
            let out = run(&mut cmd, args);
            let said = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{url} {args:?}");
            assert!(
                said.contains("names no database file"),
                "{url} {args:?}: {said}"
            );
            assert!(!said.contains("internal error"), "{said}");
        }
        let refused = serve_on(d, url, &[]).unwrap_err();
        assert!(refused.contains("names no database file"), "{refused}");
    }
}

#[test]
fn serve_refuses_a_short_admin_token_and_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for short in ["change-me", "fifteen-chars-x", "   short   "] {
        let refused = serve(meetpool(d, "t.db", &[("MEETPOOL_ADMIN_TOKEN", short)]), &[])
            .expect_err("a short token served");
        for needle in ["at least 16", "openssl rand -hex 32"] {
            assert!(refused.contains(needle), "{short:?}: {refused}");
        }
        assert!(
            !refused.contains(short.trim()),
            "the token echoed: {refused}"
        );
    }
    serve(
        meetpool(d, "t.db", &[("MEETPOOL_ADMIN_TOKEN", "sixteen-chars-xx")]),
        &[],
    )
    .expect("16 characters start");
    // Without one, serve makes one and starts.
    let mut cmd = meetpool(d, "t.db", &[]);
    cmd.env_remove("MEETPOOL_ADMIN_TOKEN");
    serve(cmd, &[]).expect("a generated token starts");
}
