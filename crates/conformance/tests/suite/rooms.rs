//! One meeting room, one link: spellings of one room are one link, through
//! the API and through plain SQL, and a database that already holds two
//! spellings is reported, never merged silently.
use meetpool_conformance::{Backend, TestApp};
use meetpool_domain::room::{is_safe_link, room_of};
use reqwest::StatusCode;
use serde_json::json;

on_both!(
    one_room_enters_the_pool_once_whatever_its_spelling,
    plain_sql_cannot_add_a_room_twice,
    migrate_reports_a_room_held_by_two_links_until_one_is_disabled,
    every_spelling_a_provider_documents_enters_the_pool_once,
    plain_sql_holds_every_spelling_to_one_room,
    the_database_reads_each_link_as_the_service_does,
    generated_spellings_of_a_room_are_one_room_in_the_database,
    plain_sql_cannot_put_an_unsafe_link_in_the_pool,
    migrate_reports_a_room_the_new_rule_finds_twice_and_changes_nothing,
    migrate_disables_unsafe_links_and_nothing_sends_participants_there,
);

const ROOM: &str = "https://meet.google.com/abc-defg-hij";

/// Spellings of `ROOM` that a careless operator might type.
const SPELLINGS: [&str; 6] = [
    "HTTPS://MEET.GOOGLE.COM/ABC-DEFG-HIJ",
    "https://meet.google.com/abc-defg-hij/",
    "https://meet.google.com:443/abc-defg-hij",
    "https://meet.google.com/abc-defg-hij?",
    "https://meet.google.com/abc-defg-hij#",
    "https://meet.google.com/abc-defg-hij?authuser=1",
];

async fn one_room_enters_the_pool_once_whatever_its_spelling(t: TestApp) {
    let first = t.add_link("https://Meet.Google.com/ABC-defg-hij/").await;
    assert_eq!(first.meeting_link, ROOM, "stored in its canonical spelling");
    for spelling in SPELLINGS {
        let refused = t.try_add_link(spelling).await.unwrap_err();
        assert_eq!(
            refused.why(),
            (StatusCode::CONFLICT, "duplicate_link"),
            "{spelling}"
        );
    }
    // Renaming another link to a spelling of the room is refused too.
    let other = t.add_link("https://zoom.us/j/123").await;
    let refused = t
        .update_link(&other.id, json!({"meeting_link": SPELLINGS[2]}))
        .await
        .unwrap_err();
    assert_eq!(refused.why(), (StatusCode::CONFLICT, "duplicate_link"));
    assert_eq!(t.link(&other.id).await, other);

    // Links a browser must not open, or that carry secrets, are refused.
    for bad in [
        "https://user:secret@meet.google.com/abc-defg-hij",
        "https://meet.google.com/abc defg",
        "https://meet.google.com\\abc-defg-hij",
        "https://meet.google.com/abc-defg-hij\u{7}",
        "https:///abc",
    ] {
        let refused = t.try_add_link(bad).await.unwrap_err();
        assert_eq!(
            refused.why(),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_meeting_link"),
            "{bad:?}"
        );
    }
    assert_eq!(t.links().await, [first.clone(), other.clone()]);

    // Seven paid bookings at one slot: the one room serves one of them.
    t.delete_link(&other.id).await.unwrap();
    let st = t.create_session_type(60).await;
    let mut linked = 0;
    for _ in 0..7 {
        let booking = t.create_booking(&st, "2030-03-04", "10:00", "paid").await;
        linked += usize::from(booking.meeting_link.as_deref() == Some(ROOM));
    }
    assert_eq!(linked, 1);
    assert_eq!(t.overlaps().await, 0);
}

async fn plain_sql_cannot_add_a_room_twice(t: TestApp) {
    t.add_link(ROOM).await;
    let raw = t.db.raw().await;
    for (i, spelling) in SPELLINGS.iter().enumerate() {
        let sql = match t.db.backend {
            Backend::Postgres => {
                format!("INSERT INTO meeting_links_pool (meeting_link) VALUES ('{spelling}')")
            }
            Backend::Sqlite => format!(
                "INSERT INTO meeting_links_pool (id, seq, meeting_link) \
                 VALUES ('00000000-0000-4000-8000-00000000000{i}', {}, '{spelling}')",
                100 + i
            ),
        };
        let refused = raw.execute(&sql).await.expect_err(spelling);
        assert!(
            refused.to_lowercase().contains("unique"),
            "{spelling}: {refused}"
        );
    }
    // Another room is welcome by plain SQL, as in the previous system.
    let sql = match t.db.backend {
        Backend::Postgres => {
            "INSERT INTO meeting_links_pool (meeting_link) VALUES ('https://meet.google.com/xyz-abcd-efg')"
                .to_owned()
        }
        Backend::Sqlite => "INSERT INTO meeting_links_pool (id, seq, meeting_link) VALUES \
             ('00000000-0000-4000-8000-0000000000aa', 200, 'https://meet.google.com/xyz-abcd-efg')"
            .to_owned(),
    };
    raw.execute(&sql).await.unwrap();
    let rooms: Vec<String> = t
        .links()
        .await
        .into_iter()
        .map(|l| l.meeting_link)
        .collect();
    assert_eq!(rooms, [ROOM, "https://meet.google.com/xyz-abcd-efg"]);
}

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

/// The spellings of issue #25 that each once entered the pool beside
/// `ROOM` (Meet) or `ZOOM` (Zoom, whose passcode the stored link keeps).
const MEET_SPELLINGS: [&str; 8] = [
    "https://meet.google.com./abc-defg-hij",
    "https://meet.google.com/%61bc-defg-hij",
    "https://meet.google.com/abc%2Ddefg%2Dhij",
    "https://meet.google.com/abcdefghij",
    "https://meet.google.com//abc-defg-hij",
    "https://g.co/meet/abc-defg-hij",
    "HTTPS://G.CO/meet/ABCDEFGHIJ?authuser=0",
    "https://meet.google.com.:443/abc%2ddefg-HIJ/?hs=122#x",
];
const ZOOM: &str = "https://zoom.us/j/123456789?pwd=abc";
const ZOOM_SPELLINGS: [&str; 6] = [
    "https://zoom.us/j/123456789",
    "https://us02web.zoom.us/j/123456789",
    "https://us02web.zoom.us/j/123456789?pwd=abc#success",
    "https://zoom.us/wc/join/123456789",
    "https://app.zoom.us/wc/123456789/join?fromPWA=1",
    "https://Zoom.us./j/%31%323456789?pwd=other",
];
/// Other providers' rooms, each with spellings the provider documents as
/// the same room.
const OTHER_ROOMS: [(&str, &[&str]); 5] = [
    (
        "https://teams.microsoft.com/l/meetup-join/19%3ameeting_NjE0ZmQ%40thread.v2/0?context=%7b%22Tid%22%3a%22t%22%7d",
        &[
            "https://teams.microsoft.com/l/meetup-join/19:meeting_NjE0ZmQ@thread.v2/0",
            "https://teams.microsoft.com/l/meetup-join/19%3Ameeting_NjE0ZmQ%40thread.v2",
        ],
    ),
    (
        "https://teams.live.com/meet/9876543210123?p=AbCdEf",
        &["https://teams.live.com/meet/9876543210123", "https://TEAMS.live.com/meet/9876543210123/?p=x"],
    ),
    (
        "https://whereby.com/TeamRoom",
        &["https://whereby.com/teamroom", "https://www.whereby.com/TEAMROOM?embed&displayName=x"],
    ),
    (
        "https://acme.whereby.com/standup-1",
        &["https://ACME.whereby.com/Standup-1/?roomKey=k"],
    ),
    (
        "https://meet.jit.si/WeeklyStandup",
        &["https://meet.jit.si/weeklystandup#config.startWithAudioMuted=true", "https://meet.jit.si./WEEKLYstandup?jwt=x"],
    ),
];

async fn every_spelling_a_provider_documents_enters_the_pool_once(t: TestApp) {
    let meet = t.add_link(MEET_SPELLINGS[3]).await;
    assert_eq!(meet.meeting_link, ROOM, "a Meet code is stored dashed");
    let zoom = t.add_link(ZOOM).await;
    assert_eq!(zoom.meeting_link, ZOOM, "the passcode lets participants in");
    let mut spellings: Vec<&str> = MEET_SPELLINGS.into_iter().chain(ZOOM_SPELLINGS).collect();
    for (room, others) in OTHER_ROOMS {
        t.add_link(room).await;
        spellings.extend(others.iter().copied());
    }
    for spelling in spellings {
        let refused = t.try_add_link(spelling).await.unwrap_err();
        assert_eq!(
            refused.why(),
            (StatusCode::CONFLICT, "duplicate_link"),
            "{spelling}"
        );
    }
    // Other rooms are other rooms.
    for other in [
        "https://meet.google.com/abc-defg-hik",
        "https://zoom.us/j/123456780?pwd=abc",
        "https://meet.jit.si/WeeklyStandup2",
        "https://whereby.com/TeamRoom2",
    ] {
        t.add_link(other).await;
    }
    assert_eq!(t.links().await.len(), 2 + OTHER_ROOMS.len() + 4);
}

/// A plain SQL insert of `link` into the pool (SQLite needs the id and the
/// creation order that PostgreSQL fills in itself).
fn insert_sql(backend: Backend, i: usize, link: &str, enabled: bool) -> String {
    let link = link.replace('\'', "''");
    match backend {
        Backend::Postgres => format!(
            "INSERT INTO meeting_links_pool (meeting_link, is_available) VALUES ('{link}', {enabled})"
        ),
        Backend::Sqlite => format!(
            "INSERT INTO meeting_links_pool (id, seq, meeting_link, is_available) \
             VALUES ('00000000-0000-4000-8000-{i:012}', {}, '{link}', {})",
            1000 + i,
            i32::from(enabled)
        ),
    }
}

async fn plain_sql_holds_every_spelling_to_one_room(t: TestApp) {
    t.add_link(ROOM).await;
    t.add_link(ZOOM).await;
    let raw = t.db.raw().await;
    for (i, spelling) in MEET_SPELLINGS.iter().chain(&ZOOM_SPELLINGS).enumerate() {
        let refused = raw
            .execute(&insert_sql(t.db.backend, i, spelling, true))
            .await
            .expect_err(spelling);
        assert!(
            refused.to_lowercase().contains("unique"),
            "{spelling}: {refused}"
        );
    }
    // Nor does a write that skips conflicts slip a spelling in beside it.
    let skipping = match t.db.backend {
        Backend::Postgres => format!(
            "{} ON CONFLICT DO NOTHING",
            insert_sql(t.db.backend, 40, MEET_SPELLINGS[2], true)
        ),
        Backend::Sqlite => insert_sql(t.db.backend, 40, MEET_SPELLINGS[2], true).replacen(
            "INSERT",
            "INSERT OR IGNORE",
            1,
        ),
    };
    assert!(matches!(raw.execute(&skipping).await, Ok(0) | Err(_)));
    assert_eq!(t.links().await.len(), 2);
    // Renaming another link to a spelling of the room is refused too.
    raw.execute(&insert_sql(
        t.db.backend,
        50,
        "https://meet.google.com/xyz-abcd-efg",
        true,
    ))
    .await
    .unwrap();
    let rename = "UPDATE meeting_links_pool SET meeting_link = 'https://g.co/meet/abcdefghij' \
                  WHERE meeting_link = 'https://meet.google.com/xyz-abcd-efg'";
    assert!(raw
        .execute(rename)
        .await
        .unwrap_err()
        .to_lowercase()
        .contains("unique"));
    assert_eq!(t.links().await.len(), 3);
}

/// Links as an operator might write them, safe or not: each is read by the
/// database as the service reads it (`room_of`, `is_safe_link`).
fn links_to_read() -> Vec<String> {
    let mut links: Vec<String> = MEET_SPELLINGS
        .iter()
        .chain(&ZOOM_SPELLINGS)
        .chain(&[ROOM, ZOOM])
        .map(|s| s.to_string())
        .collect();
    for (room, others) in OTHER_ROOMS {
        links.push(room.to_owned());
        links.extend(others.iter().map(|s| s.to_string()));
    }
    for base in [
        "https://meet.google.com/lookup/teamname",
        "https://meet.google.com",
        "https://zoom.us/my/jane.doe?pwd=1",
        "https://zoom.us/s/123456789?zak=t",
        "https://rooms.example:8443/r/%7euser/?id=7&x=%2F#top",
        "https://rooms.example/?a=%27b%27&c='d'",
        "https://Rooms.Example.:443//a//b///c/",
        "https://[::1]:443/x",
        "https://rooms.example?#",
        "https://rooms.example/a;p=1/(x)*!$&+,",
        "https://x.example/%C3%A9",
        // Not safe: refused as enabled links, read all the same.
        "javascript:alert(1)",
        "JavaScript://%0Aalert(1)",
        "http://meet.google.com/abc-defg-hij",
        "data:text/html,<script>alert(1)</script>",
        "https://",
        "https:///x",
        "https://user:pw@meet.google.com/abc-defg-hij",
        "https://x.example/a b",
        "https://x.example/\"><script>",
        "https://x.example/%zz",
        "https://x.example/%4",
        "https://x.example/a/../b",
        "https://x.example/a/%2E/b",
        "https://x.example/é",
        "https://:8080/x",
        "https://a%2Fb.example/x",
    ] {
        links.push(base.to_owned());
    }
    links
}

async fn the_database_reads_each_link_as_the_service_does(t: TestApp) {
    let raw = t.db.raw().await;
    for (i, link) in links_to_read().iter().enumerate() {
        // Disabled: many are one room, some are not safe.
        raw.execute(&insert_sql(t.db.backend, i, link, false))
            .await
            .unwrap_or_else(|e| panic!("{link}: {e}"));
        let quoted = link.replace('\'', "''");
        let read = |column: &str| {
            format!("SELECT CAST({column} AS TEXT) FROM meeting_links_pool WHERE meeting_link = '{quoted}'")
        };
        let room = raw.column(&read("room")).await.unwrap();
        assert_eq!(room, [Some(room_of(link))], "{link}");
        let safe_column = match t.db.backend {
            Backend::Postgres => "meetpool_safe_link(meeting_link)",
            Backend::Sqlite => "url_safe",
        };
        let safe = raw.column(&read(safe_column)).await.unwrap();
        let safe = matches!(safe[0].as_deref(), Some("true" | "1"));
        assert_eq!(safe, is_safe_link(link), "{link}");
        // What the service stores for it, the database takes, and as the
        // same room.
        if let Ok(url) = meetpool_domain::MeetingUrl::parse(link) {
            assert!(is_safe_link(url.as_str()), "{link}");
            if safe {
                assert_eq!(url.room(), room_of(link), "{link}");
            }
        }
    }
}

async fn plain_sql_cannot_put_an_unsafe_link_in_the_pool(t: TestApp) {
    let kept = t.add_link(ROOM).await;
    let raw = t.db.raw().await;
    let refused = |e: String| {
        let e = e.to_lowercase();
        e.contains("meeting_links_safe") || e.contains("unsafe link")
    };
    for (i, bad) in [
        "javascript:alert(1)",
        "JAVASCRIPT:alert(document.cookie)",
        "data:text/html,<script>alert(1)</script>",
        "http://meet.google.com/xyz-abcd-efg",
        "https://",
        "https://user@meet.google.com/xyz-abcd-efg",
        "https://x.example/\"><script>alert(1)</script>",
        "https://x.example/a/../b",
    ]
    .into_iter()
    .enumerate()
    {
        let e = raw
            .execute(&insert_sql(t.db.backend, i, bad, true))
            .await
            .expect_err(bad);
        assert!(refused(e.clone()), "{bad}: {e}");
    }
    // Nor by renaming a link, nor by enabling a disabled one written by hand.
    let e = raw
        .execute(&format!(
            "UPDATE meeting_links_pool SET meeting_link = 'javascript:alert(1)' WHERE id = '{}'",
            kept.id
        ))
        .await
        .unwrap_err();
    assert!(refused(e.clone()), "{e}");
    raw.execute(&insert_sql(t.db.backend, 90, "javascript:alert(2)", false))
        .await
        .unwrap();
    let e = raw
        .execute("UPDATE meeting_links_pool SET is_available = true WHERE meeting_link = 'javascript:alert(2)'")
        .await
        .unwrap_err();
    assert!(refused(e.clone()), "{e}");
    let links = t.links().await;
    assert_eq!(links.len(), 2);
    assert_eq!(links[0], kept);
    assert!(!links[1].is_available);
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

/// Every combination of the spellings an operator might type for `link`:
/// the scheme and host in capitals, a trailing dot, `:443`, a doubled or a
/// trailing `/`, an empty `?` and `#`, the path's first letter or digit
/// percent-encoded (and, where the provider ignores case, the path in
/// capitals).
fn respellings(link: &str) -> Vec<String> {
    let rest = &link["https://".len()..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (host, tail) = rest.split_at(end);
    let (path, after) = tail.split_at(tail.find(['?', '#']).unwrap_or(tail.len()));
    let case_free = ["meet.google.com", "zoom.us", "whereby.com", "meet.jit.si"]
        .iter()
        .any(|h| host.ends_with(h));
    (0..128u32)
        .map(|bits| {
            let on = |i: u32| bits & (1 << i) != 0;
            let mut p = path.to_owned();
            if on(4) {
                if let Some(at) = p.find(|c: char| c.is_ascii_alphanumeric()) {
                    let c = p.as_bytes()[at];
                    p.replace_range(at..=at, &format!("%{c:02x}"));
                }
            }
            if on(6) && case_free {
                p = p.to_uppercase();
            }
            if on(3) {
                p.insert(0, '/');
            }
            if on(5) && !p.is_empty() {
                p.push('/');
            }
            let after = if after.is_empty() && on(6) {
                "?#"
            } else {
                after
            };
            format!(
                "{}://{}{}{}{p}{after}",
                if on(0) { "HTTPS" } else { "https" },
                if on(0) {
                    host.to_uppercase()
                } else {
                    host.to_owned()
                },
                if on(1) { "." } else { "" },
                if on(2) { ":443" } else { "" },
            )
        })
        .collect()
}

async fn generated_spellings_of_a_room_are_one_room_in_the_database(t: TestApp) {
    let mut expected = std::collections::BTreeMap::new();
    let bases = [
        ROOM,
        "https://meet.google.com/abcdefghij",
        "https://g.co/meet/abc-defg-hij",
        ZOOM,
        "https://us02web.zoom.us/j/123456789",
        "https://zoom.us/wc/join/123456789",
        OTHER_ROOMS[0].0,
        OTHER_ROOMS[1].0,
        OTHER_ROOMS[2].0,
        OTHER_ROOMS[3].0,
        OTHER_ROOMS[4].0,
        "https://rooms.example/r/standup?id=7",
    ];
    for base in bases {
        for spelling in respellings(base) {
            expected.insert(spelling, room_of(base));
        }
    }
    let raw = t.db.raw().await;
    // Disabled (many are one room), a few hundred rows a statement.
    let spellings: Vec<&String> = expected.keys().collect();
    for (n, chunk) in spellings.chunks(250).enumerate() {
        let rows: Vec<String> = chunk
            .iter()
            .enumerate()
            .map(|(i, spelling)| {
                let i = n * 250 + i;
                match t.db.backend {
                    Backend::Postgres => format!("('{spelling}', false)"),
                    Backend::Sqlite => {
                        format!(
                            "('00000000-0000-4000-8000-{i:012}', {}, '{spelling}', 0)",
                            1000 + i
                        )
                    }
                }
            })
            .collect();
        let columns = match t.db.backend {
            Backend::Postgres => "meeting_link, is_available",
            Backend::Sqlite => "id, seq, meeting_link, is_available",
        };
        raw.execute(&format!(
            "INSERT INTO meeting_links_pool ({columns}) VALUES {}",
            rows.join(", ")
        ))
        .await
        .unwrap();
    }
    let read = raw
        .column("SELECT meeting_link || ' ' || room FROM meeting_links_pool")
        .await
        .unwrap();
    assert_eq!(read.len(), expected.len());
    for row in read.into_iter().flatten() {
        let (spelling, room) = row.split_once(' ').unwrap();
        assert_eq!(room, expected[spelling], "{spelling}");
        let url = meetpool_domain::MeetingUrl::parse(spelling).unwrap();
        assert_eq!(url.room(), room, "{spelling}");
    }
}
