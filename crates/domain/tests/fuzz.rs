//! Property tests at scale for the inputs strangers control: payment
//! notification bodies, meeting links, booking slots. Each property runs
//! thousands of generated cases (`PROPTEST_CASES` raises or lowers that);
//! a failure is shrunk to its smallest input and printed.
use meetpool_domain::midtrans::{recorded_fields, signature, Notification};
use meetpool_domain::time::LocalSlot;
use meetpool_domain::MeetingUrl;
use proptest::prelude::*;
use serde_json::{json, Value};

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(n),
    )
}

/// A JSON value of any shape, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A notification-shaped object whose fields may be missing, of the wrong
/// type, or strange.
fn notification_like() -> impl Strategy<Value = Value> {
    let field = prop_oneof![
        3 => "[A-Za-z0-9._-]{0,20}".prop_map(Value::String),
        1 => any_json(),
    ];
    prop::collection::btree_map(
        prop::sample::select(vec![
            "order_id",
            "status_code",
            "gross_amount",
            "signature_key",
            "transaction_status",
            "transaction_id",
            "fraud_status",
            "payment_type",
            "padding",
        ]),
        field,
        0..9,
    )
    .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
}

proptest! {
    #![proptest_config(cases(4000))]

    #[test]
    fn any_bytes_parse_or_are_refused_without_panicking(body in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(n) = Notification::parse(&body) {
            prop_assert!(!n.order_id.is_empty());
            let _ = n.effect();
        }
        // What is recorded of any body is bounded.
        prop_assert!(recorded_fields(&body).to_string().len() <= 14 * 220);
    }

    #[test]
    fn notification_shaped_bodies_keep_their_promises(v in notification_like(), key in "[A-Za-z0-9-]{1,30}") {
        let body = v.to_string();
        match Notification::parse(body.as_bytes()) {
            Ok(n) => {
                // Only signed fields taken as given, and a forged signature
                // never verifies.
                prop_assert_eq!(Some(n.order_id.as_str()), v["order_id"].as_str());
                let genuine = signature(&n.order_id, &n.status_code, &n.gross_amount, &key);
                prop_assert_eq!(n.signature_key.eq_ignore_ascii_case(&genuine), n.signature_is_valid(&key));
                let recorded = recorded_fields(body.as_bytes());
                prop_assert_eq!(recorded["order_id"].as_str(), Some(n.order_id.as_str()));
            }
            Err(_) => {
                let complete = ["order_id", "status_code", "gross_amount", "signature_key", "transaction_status"]
                    .iter()
                    .all(|f| v[*f].as_str().is_some_and(|s| !s.is_empty()));
                prop_assert!(!complete, "a complete body was refused: {body}");
            }
        }
    }

    #[test]
    fn links_are_canonical_and_safe(raw in "(https?|HTTPS|ftp)?(://)?([a-zA-Z0-9.@:\\\\/?#% _\\-]|\\PC){0,40}") {
        if let Ok(url) = MeetingUrl::parse(&raw) {
            let s = url.as_str();
            prop_assert!(s.starts_with("https://"));
            prop_assert!(!s.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\\'));
            let parsed = url::Url::parse(s).unwrap();
            prop_assert!(parsed.query() != Some("") && parsed.fragment() != Some(""), "{}", s);
            prop_assert!(parsed.query().is_some() || parsed.fragment().is_some() || !s.ends_with('/'), "{}", s);
            // Canonical once, canonical for good.
            let again = MeetingUrl::parse(s);
            prop_assert_eq!(again.as_ref(), Ok(&url));
        }
    }

    #[test]
    fn spellings_of_one_room_are_one_link(
        host in "[a-w][a-z0-9-]{0,10}\\.(com|example|us)",
        path in "(/[A-Za-z0-9_-]{1,8}){1,3}",
        upper_host in any::<bool>(),
        port in any::<bool>(),
        slash in any::<bool>(),
        empty in prop::sample::select(vec!["", "?", "#", "?#"]),
    ) {
        let plain = MeetingUrl::parse(&format!("https://{host}{path}")).unwrap();
        let host = if upper_host { host.to_uppercase() } else { host };
        let spelled = format!(
            "https://{host}{}{path}{}{empty}",
            if port { ":443" } else { "" },
            if slash { "/" } else { "" },
        );
        prop_assert_eq!(MeetingUrl::parse(&spelled), Ok(plain));
    }

    #[test]
    fn slots_parse_only_real_dates_and_times(
        date in prop_oneof![".{0,12}", "20[0-9]{2}-[01][0-9]-[0-3][0-9]"],
        time in prop_oneof![".{0,8}", "[0-2][0-9]:[0-6][0-9](:[0-6][0-9])?"],
    ) {
        if let Ok(slot) = LocalSlot::parse(&date, &time) {
            prop_assert_eq!(slot.date.to_string(), date.trim());
            // What was typed is what is kept: no leap second read as :59.
            let kept = slot.time.to_string();
            prop_assert_eq!(kept.get(..time.trim().len()), Some(time.trim()));
        }
    }
}
