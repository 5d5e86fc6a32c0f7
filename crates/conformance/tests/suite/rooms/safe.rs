//! Only safe links enter the pool, by plain SQL too.
use meetpool_conformance::TestApp;

use super::{insert_sql, ROOM};

on_both!(plain_sql_cannot_put_an_unsafe_link_in_the_pool);

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
