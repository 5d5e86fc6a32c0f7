//! One meeting room, one link: spellings of one room are one link, through
//! the API and through plain SQL, and a database that already holds two
//! spellings is reported, never merged silently.
use meetpool_conformance::{Backend, TestApp};
use reqwest::StatusCode;
use serde_json::json;

on_both!(
    one_room_enters_the_pool_once_whatever_its_spelling,
    plain_sql_cannot_add_a_room_twice,
    migrate_reports_a_room_held_by_two_links_until_one_is_disabled,
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

async fn one_room_enters_the_pool_once_whatever_its_spelling(b: Backend) {
    let Some(t) = TestApp::spawn(b).await else {
        return;
    };
    let (s, first) = t
        .post(
            "/api/links",
            json!({"meeting_link": "https://Meet.Google.com/ABC-defg-hij/"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    assert_eq!(
        first["meeting_link"], ROOM,
        "stored in its canonical spelling"
    );
    for spelling in SPELLINGS {
        let (s, e) = t
            .post("/api/links", json!({"meeting_link": spelling}))
            .await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (StatusCode::CONFLICT, Some("duplicate_link")),
            "{spelling}: {e}"
        );
    }
    // Renaming another link to a spelling of the room is refused too.
    let other = t.add_link("https://zoom.us/j/123").await;
    let (s, e) = t
        .patch(
            &format!("/api/links/{other}"),
            json!({"meeting_link": SPELLINGS[2]}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("duplicate_link"))
    );
    assert_eq!(
        t.get(&format!("/api/links/{other}")).await.1["meeting_link"],
        "https://zoom.us/j/123"
    );

    // Links a browser must not open, or that carry secrets, are refused.
    for bad in [
        "https://user:secret@meet.google.com/abc-defg-hij",
        "https://meet.google.com/abc defg",
        "https://meet.google.com\\abc-defg-hij",
        "https://meet.google.com/abc-defg-hij\u{7}",
        "https:///abc",
    ] {
        let (s, e) = t.post("/api/links", json!({"meeting_link": bad})).await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("invalid_meeting_link")
            ),
            "{bad:?}: {e}"
        );
    }
    assert_eq!(t.get("/api/links").await.1.as_array().unwrap().len(), 2);

    // Seven paid bookings at one slot: the one room serves one of them.
    t.delete(&format!("/api/links/{other}")).await;
    let st = t.session_type(60).await;
    let mut linked = 0;
    for _ in 0..7 {
        let booking = t.booking(&st, "2030-03-04", "10:00", "paid").await;
        linked += usize::from(booking["meeting_link"] == ROOM);
    }
    assert_eq!(linked, 1);
    assert_eq!(t.overlaps().await, 0);
}

async fn plain_sql_cannot_add_a_room_twice(b: Backend) {
    let Some(t) = TestApp::spawn(b).await else {
        return;
    };
    t.add_link(ROOM).await;
    let raw = t.db.raw().await;
    for (i, spelling) in SPELLINGS.iter().enumerate() {
        let sql = match b {
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
    let sql = match b {
        Backend::Postgres => {
            "INSERT INTO meeting_links_pool (meeting_link) VALUES ('https://meet.google.com/xyz-abcd-efg')"
                .to_owned()
        }
        Backend::Sqlite => "INSERT INTO meeting_links_pool (id, seq, meeting_link) VALUES \
             ('00000000-0000-4000-8000-0000000000aa', 200, 'https://meet.google.com/xyz-abcd-efg')"
            .to_owned(),
    };
    raw.execute(&sql).await.unwrap();
    assert_eq!(t.get("/api/links").await.1.as_array().unwrap().len(), 2);
}

async fn migrate_reports_a_room_held_by_two_links_until_one_is_disabled(b: Backend) {
    let Some(t) = TestApp::spawn(b).await else {
        return;
    };
    let st = t.session_type(60).await;
    let kept = t.add_link(ROOM).await;
    let first = t.booking(&st, "2030-03-04", "10:00", "paid").await;
    let second = t.booking(&st, "2030-03-04", "10:00", "paid").await;
    assert_eq!(first["meeting_link"], ROOM);
    assert_eq!(second["meeting_link"], serde_json::Value::Null);

    // The database as a release before room uniqueness left it: a second
    // spelling of the room added by hand, and a session double-booked on it.
    let raw = t.db.raw().await;
    raw.execute("DROP INDEX meeting_links_room").await.unwrap();
    raw.execute("DELETE FROM _sqlx_migrations WHERE version = 5")
        .await
        .unwrap();
    let twin = "00000000-0000-4000-8000-0000000000bb";
    let insert = match b {
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
        second["id"].as_str().unwrap()
    ))
    .await
    .unwrap();

    let report = t.app.prepare_database().await.unwrap_err().to_string();
    for needle in [ROOM, &kept, twin, SPELLINGS[0], "meetpool links disable"] {
        assert!(report.contains(needle), "{needle} missing from:\n{report}");
    }
    // Nothing was merged or changed.
    assert_eq!(t.get("/api/links").await.1.as_array().unwrap().len(), 2);
    assert_eq!(
        t.get_booking(second["id"].as_str().unwrap()).await["meeting_link_id"],
        twin
    );

    // The operator follows the advice: the twin's coming session moves off it.
    let (s, body) = t
        .patch(
            &format!("/api/links/{twin}"),
            json!({"is_available": false}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        t.get_booking(second["id"].as_str().unwrap()).await["meeting_link_id"],
        serde_json::Value::Null
    );
    t.app.prepare_database().await.unwrap();

    // From now on the room cannot be enabled twice.
    let (s, e) = t
        .patch(&format!("/api/links/{twin}"), json!({"is_available": true}))
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("duplicate_link"))
    );
    assert_eq!(
        t.get_booking(first["id"].as_str().unwrap()).await["meeting_link"],
        ROOM
    );
}
