//! Spellings of one room are one link, through the API and through plain
//! SQL, and the database reads each link as the service does.
use meetpool_conformance::{Backend, TestApp};
use meetpool_domain::room::{is_safe_link, room_of};
use reqwest::StatusCode;
use serde_json::json;

use super::{insert_sql, MEET_SPELLINGS, OTHER_ROOMS, ROOM, SPELLINGS, ZOOM, ZOOM_SPELLINGS};

on_both!(
    one_room_enters_the_pool_once_whatever_its_spelling,
    plain_sql_cannot_add_a_room_twice,
    every_spelling_a_provider_documents_enters_the_pool_once,
    plain_sql_holds_every_spelling_to_one_room,
    the_database_reads_each_link_as_the_service_does,
);

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
