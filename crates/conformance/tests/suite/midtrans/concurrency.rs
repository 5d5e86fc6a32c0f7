//! Settlement under concurrency: notifications arriving together are
//! settled in groups, several to a transaction, and each is still applied
//! exactly as if it were alone; one failing costs the others nothing.
use std::collections::{BTreeMap, BTreeSet};

use meetpool_conformance::{Settled, TestApp};
use reqwest::StatusCode;

use super::shop::{burst, burst_bookings, count, settlement_of, until_queued, LINK};

on_both!(
    a_burst_settles_each_notification_as_if_alone,
    a_notification_failing_in_a_burst_fails_alone,
    notifications_queued_behind_a_busy_database_are_settled_in_groups,
);

async fn a_burst_settles_each_notification_as_if_alone(t: TestApp) {
    for i in 0..3 {
        t.add_link(&format!("https://meet.example.com/burst-{i}"))
            .await;
    }
    // Six sessions at 09:00 for three links; six at hours of their own.
    let ids = burst_bookings(&t, 12, 6).await;
    let mut bodies: Vec<(String, Vec<u8>)> = ids
        .keys()
        .map(|order| (order.clone(), settlement_of(order)))
        .collect();
    for copy in ["BURST-00", "BURST-07", "BURST-07"] {
        bodies.push((copy.to_owned(), settlement_of(copy)));
    }
    for i in 0..3 {
        let stranger = format!("STRANGER-{i}");
        bodies.push((stranger.clone(), settlement_of(&stranger)));
    }

    let answers = burst(&t, &bodies).await;
    let mut applied: BTreeMap<&str, Settled> = BTreeMap::new();
    for ((order, _), answer) in bodies.iter().zip(answers) {
        let Some(id) = ids.get(order) else {
            let refused = answer.refused();
            assert_eq!(
                refused.why(),
                (StatusCode::NOT_FOUND, "not_found"),
                "{order}"
            );
            continue;
        };
        let answer = answer.settled();
        assert_eq!(&answer.booking_id, id, "{answer:?}");
        assert_eq!(answer.payment_status, "paid", "{answer:?}");
        if !answer.duplicate {
            assert!(
                applied.insert(order, answer).is_none(),
                "{order} applied twice"
            );
        }
    }
    assert_eq!(applied.len(), ids.len(), "each booking paid exactly once");

    let mut links_at_nine = BTreeSet::new();
    for (order, id) in &ids {
        let shown = t.booking(id).await;
        let kinds = t.event_kinds(id).await;
        assert_eq!(shown.payment_status, "paid", "{shown:?}");
        assert_eq!(count(&kinds, "payment"), 1, "{order}: {kinds:?}");
        let answer = &applied[order.as_str()];
        assert_eq!(answer.meeting_link, shown.meeting_link, "{answer:?}");
        match shown.meeting_link {
            None => {
                assert!(
                    order.as_str() < "BURST-06",
                    "{order} at an hour of its own waits"
                );
                assert!(answer.requires_manual_assignment, "{answer:?}");
                assert_eq!(count(&kinds, "pool_exhausted"), 1, "{order}: {kinds:?}");
                assert_eq!(count(&kinds, "assigned"), 0, "{order}: {kinds:?}");
            }
            Some(link) => {
                assert_eq!(count(&kinds, "assigned"), 1, "{order}: {kinds:?}");
                if order.as_str() < "BURST-06" {
                    links_at_nine.insert(link);
                }
            }
        }
    }
    assert_eq!(
        links_at_nine.len(),
        3,
        "each link once at 09:00: {links_at_nine:?}"
    );
    assert_eq!(t.overlaps().await, 0);
}

async fn a_notification_failing_in_a_burst_fails_alone(t: TestApp) {
    t.add_link(LINK).await;
    let ids = burst_bookings(&t, 10, 0).await;
    // The database refuses any change to one booking: a fault of that row
    // alone, which must cost the other notifications nothing.
    let raw = t.db.raw().await;
    let broken = "BURST-04";
    let trigger = match t.db.backend {
        meetpool_conformance::Backend::Sqlite => vec![format!(
            "CREATE TRIGGER burst_fault BEFORE UPDATE ON bookings WHEN OLD.order_id = '{broken}' \
             BEGIN SELECT RAISE(ABORT, 'burst fault'); END"
        )],
        meetpool_conformance::Backend::Postgres => vec![
            "CREATE FUNCTION burst_fault() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'burst fault'; END $$"
                .to_owned(),
            format!(
                "CREATE TRIGGER burst_fault BEFORE UPDATE ON bookings FOR EACH ROW \
                 WHEN (OLD.order_id = '{broken}') EXECUTE FUNCTION burst_fault()"
            ),
        ],
    };
    for sql in &trigger {
        raw.execute(sql).await.unwrap();
    }

    let broken_events = t.event_kinds(&ids[broken]).await;
    let bodies: Vec<(String, Vec<u8>)> = ids
        .keys()
        .map(|order| (order.clone(), settlement_of(order)))
        .collect();
    let answers = burst(&t, &bodies).await;
    for ((order, _), answer) in bodies.iter().zip(answers) {
        let shown = t.booking(&ids[order]).await;
        if order == broken {
            // A 5xx: Midtrans will send it again.
            let refused = answer.refused();
            assert_eq!(
                refused.status,
                StatusCode::INTERNAL_SERVER_ERROR,
                "{refused:?}"
            );
            assert_eq!(shown.payment_status, "pending", "{shown:?}");
            assert_eq!(shown.meeting_link, None, "{shown:?}");
            assert_eq!(t.event_kinds(&ids[order]).await, broken_events);
        } else {
            let answer = answer.settled();
            assert!(!answer.duplicate, "{answer:?}");
            assert_eq!(shown.payment_status, "paid", "{shown:?}");
            assert_eq!(shown.meeting_link.as_deref(), Some(LINK), "{shown:?}");
        }
    }

    // The fault repaired, Midtrans' next attempt applies.
    let repair = match t.db.backend {
        meetpool_conformance::Backend::Sqlite => "DROP TRIGGER burst_fault",
        meetpool_conformance::Backend::Postgres => "DROP TRIGGER burst_fault ON bookings",
    };
    raw.execute(repair).await.unwrap();
    let answer = t.notify(settlement_of(broken)).await.settled();
    assert!(!answer.duplicate, "{answer:?}");
    assert_eq!(answer.meeting_link.as_deref(), Some(LINK), "{answer:?}");
    assert_eq!(t.overlaps().await, 0);
    // What the failed group did before it rolled back counts for nothing.
    assert_eq!(t.metric("meetpool_assignments_total").await, 10);
    assert_eq!(t.metric("meetpool_notifications_applied_total").await, 10);
    assert_eq!(t.metric("meetpool_pool_exhausted_total").await, 0);
}

/// While a transaction of the operator's own holds the database, the
/// first notifications' settlement waits for it and the others queue up.
/// Once it ends, the queue is settled several to a transaction: Midtrans
/// gets a 200 for each, every booking is paid once and has a link, no link
/// is held twice, and `/metrics` shows fewer settlement transactions than
/// notifications.
///
/// Why a group must form: at most two groups are taken off the queue at a
/// time, each waiting here for the database. All twelve notifications
/// queued while it is held means that either one of those two groups holds
/// several, or at least two are still queued, and the next group takes
/// them all.
async fn notifications_queued_behind_a_busy_database_are_settled_in_groups(t: TestApp) {
    const N: usize = 12;
    for i in 0..4 {
        t.add_link(&format!("https://meet.example.com/group-{i}"))
            .await;
    }
    // Four at 09:00 for the four links, eight at hours of their own.
    let ids = burst_bookings(&t, N, 4).await;
    let bodies: Vec<(String, Vec<u8>)> = ids
        .keys()
        .map(|order| (order.clone(), settlement_of(order)))
        .collect();

    let raw = t.db.raw().await;
    let hold = raw.hold_settlements().await;
    let releasing = async {
        until_queued(&t, N as u64).await;
        hold.release().await;
    };
    let (answers, ()) = tokio::join!(burst(&t, &bodies), releasing);

    let mut links_at_nine = BTreeSet::new();
    for ((order, _), answer) in bodies.iter().zip(answers) {
        let answer = answer.settled();
        assert_eq!(answer.booking_id, ids[order], "{answer:?}");
        assert_eq!(answer.payment_status, "paid", "{answer:?}");
        assert!(!answer.duplicate, "{answer:?}");
        assert!(!answer.requires_manual_assignment, "{answer:?}");
        let shown = t.booking(&ids[order]).await;
        assert_eq!(shown.payment_status, "paid", "{shown:?}");
        assert_eq!(shown.meeting_link, answer.meeting_link, "{order}");
        let link = shown.meeting_link.expect("every booking gets a link");
        let kinds = t.event_kinds(&ids[order]).await;
        assert_eq!(count(&kinds, "payment"), 1, "{order}: {kinds:?}");
        assert_eq!(count(&kinds, "assigned"), 1, "{order}: {kinds:?}");
        if order.as_str() < "BURST-04" {
            links_at_nine.insert(link);
        }
    }
    assert_eq!(links_at_nine.len(), 4, "{links_at_nine:?}");
    assert_eq!(t.overlaps().await, 0);

    let applied = t.metric("meetpool_notifications_applied_total").await;
    let transactions = t.metric("meetpool_settlement_groups_total").await;
    assert_eq!(applied, N as u64);
    assert!(
        transactions < applied,
        "{applied} queued notifications were settled in {transactions} transactions: none shared one"
    );
}
