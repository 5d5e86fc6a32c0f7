//! Every combination of the spellings an operator might type is one room in
//! the database.
use meetpool_conformance::{Backend, TestApp};
use meetpool_domain::room::room_of;

use super::{OTHER_ROOMS, ROOM, ZOOM};

on_both!(generated_spellings_of_a_room_are_one_room_in_the_database);

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
