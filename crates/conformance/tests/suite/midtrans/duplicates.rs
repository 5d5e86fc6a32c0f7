//! Duplicates and idempotency: Midtrans delivers a notification again
//! (a retry, a copy racing the original, the other route), and it is
//! applied once, every copy answered 200 with the booking as it stands.
use meetpool_conformance::WEBHOOK;

use super::shop::{count, fixture, post_in_background, Shop};

on_both!(
    both_routes_answer_alike,
    twenty_concurrent_copies_apply_once,
);

const HOOK_NATIVE: &str = "/webhooks/midtrans";

async fn both_routes_answer_alike(shop: Shop) {
    let first = shop
        .t
        .notify_at(HOOK_NATIVE, fixture("settlement-bank-transfer.json"))
        .await
        .settled();
    assert!(!first.duplicate);
    shop.assert_paid_with_the_link("ORDER-1001", &first).await;

    // Midtrans re-sends it to the seed's route: already applied.
    let again = shop
        .t
        .notify_at(WEBHOOK, fixture("settlement-bank-transfer.json"))
        .await
        .settled();
    assert!(again.duplicate);
    shop.assert_paid_with_the_link("ORDER-1001", &again).await;

    // And a first notification on the native route for another order.
    let other = shop
        .t
        .notify_at(HOOK_NATIVE, fixture("pending-echannel.json"))
        .await
        .settled();
    shop.assert_unpaid_without_a_link("ORDER-1004", "pending", &other)
        .await;
}

async fn twenty_concurrent_copies_apply_once(shop: Shop) {
    let body = fixture("settlement-bank-transfer.json");
    let copies: Vec<_> = (0..20)
        .map(|_| post_in_background(&shop.t, &body))
        .collect();
    let mut duplicates = 0;
    for copy in copies {
        let answer = copy.await.unwrap().settled();
        shop.assert_paid_with_the_link("ORDER-1001", &answer).await;
        duplicates += usize::from(answer.duplicate);
    }
    assert_eq!(duplicates, 19);
    let kinds = shop.events("ORDER-1001").await;
    assert_eq!(count(&kinds, "assigned"), 1, "{kinds:?}");
    assert_eq!(count(&kinds, "payment"), 1, "{kinds:?}");
    assert_eq!(shop.t.overlaps().await, 0);
}
