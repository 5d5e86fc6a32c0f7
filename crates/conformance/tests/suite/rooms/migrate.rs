//! A database that already holds one room twice, or an unsafe link: `migrate`
//! reports it and changes nothing, or disables the link and moves its
//! sessions, and nothing sends a participant there.
use meetpool_conformance::{Backend, TestApp};
use reqwest::StatusCode;
use serde_json::json;

use super::{insert_sql, MEET_SPELLINGS, ROOM, SPELLINGS, ZOOM, ZOOM_SPELLINGS};

on_both!(
    migrate_reports_a_room_held_by_two_links_until_one_is_disabled,
    migrate_reports_a_room_the_new_rule_finds_twice_and_changes_nothing,
    migrate_disables_unsafe_links_and_nothing_sends_participants_there,
);

async fn migrate_reports_a_room_held_by_two_links_until_one_is_disabled(t: TestApp) {
    let st = t.create_session_type(60).await;
    let kept = t.add_link(ROOM).await;
    let first = t.create_booking(&st, "2030-03-04", "10:00", "paid").await;
    let second = t.create_booking(&st, "2030-03-04", "10:00", "paid").await;
    assert_eq!(first.meeting_link.as_deref(), Some(ROOM));
    assert_eq!(second.meeting_link, None);

    // The database as a release before room uniqueness left it: a second
    // spelling of the room added by hand, and a session double-booked on it.
    let raw = t.db.raw().await;
    raw.execute("DROP INDEX meeting_links_room").await.unwrap();
    raw.execute("DELETE FROM _sqlx_migrations WHERE version = 5")
        .await
        .unwrap();
    let twin = "00000000-0000-4000-8000-0000000000bb";
    let insert = match t.db.backend {
        Backend::Postgres => format!(
            "INSERT INTO meeting_links_pool (id, meeting_link) VALUES ('{twin}', '{}')",
            SPELLINGS[0]
        ),
        Backend::Sqlite => format!(
            "INSERT INTO meeting_links_pool (id, seq, meeting_link) VALUES ('{twin}', 99, '{}')",
            SPELLINGS[0]
        ),
    };
    raw.execute(&insert).await.unwrap();
    raw.execute(&format!(
        "UPDATE bookings SET meeting_link_id = '{twin}' WHERE id = '{}'",
        second.id
    ))
    .await
    .unwrap();

    let report = t.app.prepare_database(false).await.unwrap_err().to_string();
    for needle in [ROOM, &kept.id, twin, SPELLINGS[0], "meetpool links disable"] {
        assert!(report.contains(needle), "{needle} missing from:\n{report}");
    }
    // Nothing was merged or changed.
    assert_eq!(t.links().await.len(), 2);
    assert_eq!(
        t.booking(&second.id).await.meeting_link_id.as_deref(),
        Some(twin)
    );

    // The operator follows the advice: the twin's coming session moves off it.
    let disabled = t
        .update_link(twin, json!({"is_available": false}))
        .await
        .unwrap();
    assert!(!disabled.is_available);
    assert_eq!(t.booking(&second.id).await.meeting_link_id, None);
    t.app.prepare_database(false).await.unwrap();

    // From now on the room cannot be enabled twice.
    let refused = t
        .update_link(twin, json!({"is_available": true}))
        .await
        .unwrap_err();
    assert_eq!(refused.why(), (StatusCode::CONFLICT, "duplicate_link"));
    assert_eq!(
        t.booking(&first.id).await.meeting_link.as_deref(),
        Some(ROOM)
    );
}

/// Takes the database back to the release before 0017.
async fn before_0017(t: &TestApp) {
    t.db.raw().await.as_before_0017().await;
}

async fn migrate_reports_a_room_the_new_rule_finds_twice_and_changes_nothing(t: TestApp) {
    let meet = t.add_link(ROOM).await;
    let zoom = t.add_link(ZOOM).await;
    before_0017(&t).await;
    // What the previous rule let in beside them, and an unsafe link.
    let raw = t.db.raw().await;
    for (i, link) in [MEET_SPELLINGS[3], ZOOM_SPELLINGS[1], "javascript:alert(1)"]
        .into_iter()
        .enumerate()
    {
        raw.execute(&insert_sql(t.db.backend, i, link, true))
            .await
            .unwrap();
    }
    let twin_ids: Vec<String> = raw
        .column(&format!(
            "SELECT CAST(id AS TEXT) FROM meeting_links_pool WHERE meeting_link IN ('{}', '{}') ORDER BY seq",
            MEET_SPELLINGS[3], ZOOM_SPELLINGS[1]
        ))
        .await
        .unwrap()
        .into_iter()
        .flatten()
        .collect();

    let report = t.app.prepare_database(false).await.unwrap_err().to_string();
    for needle in [
        ROOM,
        "https://zoom.us/j/123456789",
        &meet.id,
        &zoom.id,
        &twin_ids[0],
        &twin_ids[1],
        MEET_SPELLINGS[3],
        ZOOM_SPELLINGS[1],
        "meetpool links disable",
    ] {
        assert!(report.contains(needle), "{needle} missing from:\n{report}");
    }
    assert!(!report.contains("javascript"), "{report}");
    // Nothing changed: every link as it was, the migration not applied.
    let links = t.links().await;
    assert_eq!(links.len(), 5);
    assert!(links.iter().all(|l| l.is_available), "{links:?}");
    assert!(t.app.check_migrated().await.is_err());

    for id in &twin_ids {
        t.update_link(id, json!({"is_available": false}))
            .await
            .unwrap();
    }
    let migrated = t.app.prepare_database(false).await.unwrap();
    assert_eq!(migrated.disabled_unsafe.len(), 1);
    assert_eq!(
        migrated.disabled_unsafe[0].meeting_link,
        "javascript:alert(1)"
    );
    let refused = t
        .update_link(&twin_ids[0], json!({"is_available": true}))
        .await
        .unwrap_err();
    assert_eq!(refused.why(), (StatusCode::CONFLICT, "duplicate_link"));
}

async fn migrate_disables_unsafe_links_and_nothing_sends_participants_there(t: TestApp) {
    let st = t.create_session_type(60).await;
    let safe = t.add_link(ROOM).await;
    let at = |minutes: i64| {
        let start = (jiff::Timestamp::now() + jiff::SignedDuration::from_mins(minutes))
            .in_tz("UTC")
            .unwrap()
            .round(jiff::Unit::Minute)
            .unwrap();
        (
            start.date().to_string(),
            start.strftime("%H:%M").to_string(),
        )
    };
    // A session under way and one to come, both given the unsafe link by
    // hand, as the previous release allowed.
    let (d, h) = at(-10);
    let running = t.create_booking(&st, &d, &h, "paid").await;
    let (d, h) = at(24 * 60);
    let coming = t.create_booking(&st, &d, &h, "paid").await;
    before_0017(&t).await;
    let raw = t.db.raw().await;
    raw.execute(&insert_sql(t.db.backend, 1, "javascript:alert(1)", true))
        .await
        .unwrap();
    let bad_id = raw
        .column("SELECT CAST(id AS TEXT) FROM meeting_links_pool WHERE meeting_link = 'javascript:alert(1)'")
        .await
        .unwrap()[0]
        .clone()
        .unwrap();
    for b in [&running, &coming] {
        raw.execute(&format!(
            "UPDATE bookings SET meeting_link_id = '{bad_id}' WHERE id = '{}'",
            b.id
        ))
        .await
        .unwrap();
    }

    let migrated = t.app.prepare_database(false).await.unwrap();
    assert_eq!(migrated.disabled_unsafe.len(), 1, "{migrated:?}");
    assert_eq!(migrated.disabled_unsafe[0].link_id.to_string(), bad_id);
    let bad = t.link(&bad_id).await;
    assert!(!bad.is_available);
    // The coming session moved to the safe link, as disabling by hand does.
    assert_eq!(
        t.booking(&coming.id).await.meeting_link_id.as_deref(),
        Some(safe.id.as_str())
    );

    // The session under way still holds it: its join URL never redirects
    // there, it says the link is being prepared.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let join = &running.join_url[running.join_url.find("/j/").unwrap()..];
    let res = client.get(t.url(join)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("location").is_none());
    let page = res.text().await.unwrap();
    assert!(
        page.contains("being prepared") && !page.contains("javascript"),
        "{page}"
    );

    // The dashboard shows it, never as a link.
    let res = client
        .post(t.url("/admin/sign-in"))
        .form(&[("token", meetpool_conformance::ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = client
        .get(t.url("/admin/links"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("javascript:alert(1)"), "{page}");
    assert!(!page.contains("href=\"javascript"), "{page}");
    assert!(page.contains(&format!("href=\"{ROOM}\"")), "{page}");
}
