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
