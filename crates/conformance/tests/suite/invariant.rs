//! Invariant 1, by property: whatever sequence of bookings, payments,
//! assignments, releases, manual assignments and link changes happens, no
//! link is ever held by two bookings at overlapping times, and only paid
//! bookings hold links.
use meetpool_app::{App, BookingInput, LinkInput, SessionTypeInput};
use meetpool_conformance::{runs_on, Backend, TestApp};
use meetpool_domain::{BookingId, LinkId, PaymentStatus};
use meetpool_store::{BookingFilter, SessionType};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Book { slot: u8, long: bool, paid: bool },
    Hold { slot: u8, long: bool },
    Pay(usize),
    Refund(usize),
    Cancel(usize),
    Assign(usize),
    Release(usize),
    Manual(usize, usize),
    Disable(usize),
    Enable(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..16, any::<bool>(), any::<bool>()).prop_map(|(slot, long, paid)| Op::Book { slot, long, paid }),
        2 => (0u8..16, any::<bool>()).prop_map(|(slot, long)| Op::Hold { slot, long }),
        2 => any::<usize>().prop_map(Op::Pay),
        1 => any::<usize>().prop_map(Op::Refund),
        1 => any::<usize>().prop_map(Op::Cancel),
        1 => any::<usize>().prop_map(Op::Assign),
        1 => any::<usize>().prop_map(Op::Release),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(b, l)| Op::Manual(b, l)),
        1 => any::<usize>().prop_map(Op::Disable),
        1 => any::<usize>().prop_map(Op::Enable),
    ]
}

async fn check(app: &App) {
    assert_eq!(
        app.store().overlapping_pairs().await.unwrap(),
        vec![],
        "two bookings share a link at one time"
    );
    let all = app
        .bookings(&BookingFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    for b in all.iter().filter(|b| b.meeting_link_id.is_some()) {
        let held = b.payment_status == PaymentStatus::Pending && b.hold_expires_at.is_some();
        assert!(
            b.payment_status == PaymentStatus::Paid || held,
            "an unpaid booking holds a link without a hold: {b:?}"
        );
    }
}

/// The `n`th operation's booking at `slot` (20-minute steps from 12:00).
fn booking_input(n: usize, slot: u8, st: &SessionType, paid: bool, hold: bool) -> BookingInput {
    let minutes = u32::from(slot) * 20;
    BookingInput {
        order_id: format!("{}-{n}", if hold { "H" } else { "P" }),
        user_id: "u".into(),
        expert_id: "e".into(),
        session_type_id: st.id.to_string(),
        booking_date: "2027-12-01".into(),
        booking_time: format!("{:02}:{:02}", 12 + minutes / 60, minutes % 60),
        price: 1,
        payment_status: Some(if paid { "paid" } else { "pending" }.into()),
        status: None,
        hold,
    }
}

async fn run(backend: Backend, ops: Vec<Op>) {
    let t = TestApp::start(backend).await;
    let app = &t.app;
    let mut links: Vec<LinkId> = Vec::new();
    for i in 0..3 {
        let l = app
            .add_link(LinkInput {
                meeting_link: Some(format!("https://meet.example/{i}")),
                ..Default::default()
            })
            .await
            .unwrap();
        links.push(l.id);
    }
    let short = app
        .create_session_type(SessionTypeInput {
            name: Some("30".into()),
            duration: Some(30),
            price: None,
        })
        .await
        .unwrap();
    let long = app
        .create_session_type(SessionTypeInput {
            name: Some("90".into()),
            duration: Some(90),
            price: None,
        })
        .await
        .unwrap();
    let mut bookings: Vec<BookingId> = Vec::new();
    for (n, op) in ops.into_iter().enumerate() {
        let pick = |i: usize| bookings.get(i % bookings.len().max(1)).copied();
        // Every operation may legitimately be refused (409, 422); what
        // matters is the state it leaves.
        match op {
            Op::Book {
                slot,
                long: is_long,
                paid,
            } => {
                let input =
                    booking_input(n, slot, if is_long { &long } else { &short }, paid, false);
                let b = app.create_booking(input).await.unwrap();
                bookings.push(b.id);
            }
            Op::Hold {
                slot,
                long: is_long,
            } => {
                let input =
                    booking_input(n, slot, if is_long { &long } else { &short }, false, true);
                let held = app.create_booking(input).await;
                match held {
                    Ok(b) => {
                        assert!(b.meeting_link_id.is_some(), "a hold without a link: {b:?}");
                        bookings.push(b.id);
                    }
                    Err(meetpool_app::AppError::Conflict { code, .. }) => {
                        assert_eq!(code, "slot_unavailable")
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            Op::Pay(i) | Op::Refund(i) | Op::Cancel(i) => {
                if let Some(id) = pick(i) {
                    let to = match op {
                        Op::Pay(_) => PaymentStatus::Paid,
                        Op::Refund(_) => PaymentStatus::Refunded,
                        _ => PaymentStatus::Cancelled,
                    };
                    let _ = app.set_payment_status(id, to).await;
                }
            }
            Op::Assign(i) => {
                if let Some(id) = pick(i) {
                    let _ = app.assign(id).await;
                }
            }
            Op::Release(i) => {
                if let Some(id) = pick(i) {
                    app.release_manually(id).await.unwrap();
                }
            }
            Op::Manual(i, l) => {
                if let Some(id) = pick(i) {
                    let _ = app.assign_manually(id, links[l % links.len()]).await;
                }
            }
            Op::Disable(l) | Op::Enable(l) => {
                let on = matches!(op, Op::Enable(_));
                app.update_link(
                    links[l % links.len()],
                    LinkInput {
                        is_available: Some(on),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            }
        }
        check(app).await;
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn no_double_booking_on_sqlite(ops in proptest::collection::vec(op(), 1..40)) {
        runtime().block_on(run(Backend::Sqlite, ops));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn no_double_booking_on_postgres(ops in proptest::collection::vec(op(), 1..40)) {
        let rt = runtime();
        if rt.block_on(runs_on(Backend::Postgres)) {
            rt.block_on(run(Backend::Postgres, ops));
        }
    }
}
