//! Property tests at scale for the inputs strangers control: payment
//! notification bodies, meeting links, booking slots. Each property runs
//! thousands of generated cases (`PROPTEST_CASES` raises or lowers that);
//! a failure is shrunk to its smallest input and printed.
use meetpool_domain::midtrans::{recorded_fields, signature, Notification};
use meetpool_domain::room::{is_safe_link, room_of};
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

/// A link to a room of each provider the room rule knows, and of others.
fn provider_link() -> impl Strategy<Value = String> {
    let code = "[a-z]{3}-[a-z]{4}-[a-z]{3}";
    let zoom_host = prop::sample::select(vec![
        "zoom.us",
        "us02web.zoom.us",
        "us05web.zoom.us",
        "acme.zoom.us",
    ]);
    prop_oneof![
        code.prop_map(|c| format!("https://meet.google.com/{c}")),
        code.prop_map(|c| format!("https://g.co/meet/{c}")),
        "[a-z]{3,12}".prop_map(|c| format!("https://meet.google.com/lookup/{c}")),
        (zoom_host.clone(), "[1-9][0-9]{8,10}", prop::option::of("[A-Za-z0-9.]{4,32}"))
            .prop_map(|(h, id, pwd)| match pwd {
                Some(p) => format!("https://{h}/j/{id}?pwd={p}"),
                None => format!("https://{h}/j/{id}"),
            }),
        (zoom_host.clone(), "[1-9][0-9]{8,10}").prop_map(|(h, id)| format!("https://{h}/wc/join/{id}")),
        (zoom_host, "[a-z][a-z0-9.]{4,12}").prop_map(|(h, n)| format!("https://{h}/my/{n}")),
        "[A-Za-z0-9]{20,40}".prop_map(|t| format!(
            "https://teams.microsoft.com/l/meetup-join/19%3ameeting_{t}%40thread.v2/0?context=%7b%22Tid%22%3a%22x%22%7d"
        )),
        "[0-9]{12,14}".prop_map(|id| format!("https://teams.live.com/meet/{id}?p=AbC")),
        "[A-Za-z][A-Za-z0-9-]{2,20}".prop_map(|r| format!("https://whereby.com/{r}")),
        ("[a-z]{3,8}", "[A-Za-z0-9-]{3,20}").prop_map(|(s, r)| format!("https://{s}.whereby.com/{r}")),
        "[A-Za-z][A-Za-z0-9]{2,20}".prop_map(|r| format!("https://meet.jit.si/{r}")),
        // A label that begins `xn--` is punycode, which these are not.
        ("[a-z][a-z0-9-]{0,10}\\.(com|example|org)", "(/[A-Za-z0-9_~-]{1,8}){0,3}", "(\\?[a-z]=[A-Za-z0-9]{1,4})?")
            .prop_filter("not an xn-- label", |(h, _, _)| !h.starts_with("xn--"))
            .prop_map(|(h, p, q)| format!("https://{h}{p}{q}")),
    ]
}

/// Another spelling of `link`'s room, as a careless operator might type
/// it: the scheme and host in any case, a trailing dot, `:443`, unreserved
/// characters percent-encoded, doubled or trailing slashes, an empty `?` or
/// `#`; for providers that document it, the case of the room name, the
/// parameters, the dashes of a Meet code.
fn respell(link: String) -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(any::<bool>(), 0..64),
        prop::sample::select(vec!["", "?", "#", "?#"]),
        any::<bool>(),
    )
        .prop_map(move |(upper, dot, port, double, encode, empty, trailing)| {
            let rest = &link["https://".len()..];
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let (host, tail) = rest.split_at(end);
            let host = if upper {
                host.to_uppercase()
            } else {
                host.to_owned()
            };
            let (path, after) = tail.split_at(tail.find(['?', '#']).unwrap_or(tail.len()));
            let case_free = [
                "meet.google.com",
                "g.co",
                "whereby.com",
                "meet.jit.si",
                "zoom.us",
            ]
            .iter()
            .any(|h| host.to_lowercase().ends_with(h));
            let mut p = String::new();
            let mut in_octet = 0u8;
            for (i, c) in path.chars().enumerate() {
                // Never inside a percent-encoded octet already there.
                let flip = encode.get(i).copied().unwrap_or(false) && in_octet == 0;
                in_octet = if c == '%' {
                    2
                } else {
                    in_octet.saturating_sub(1)
                };
                if flip && c.is_ascii_alphanumeric() {
                    // Percent-encoded, in either case of hex digit.
                    let hex = format!("%{:02X}", c as u32);
                    p.push_str(&if i % 2 == 0 { hex.to_lowercase() } else { hex });
                } else if flip && c == '-' && host.to_lowercase().contains("meet.google.com") {
                    // Meet codes are typed without their dashes too.
                } else if c == '/' && double && i == 0 {
                    p.push_str("//");
                } else if case_free && i % 3 == 0 && in_octet == 0 {
                    p.push(c.to_ascii_uppercase());
                } else {
                    p.push(c);
                }
            }
            if trailing && !p.is_empty() {
                p.push('/');
            }
            let after = if after.is_empty() {
                empty.to_owned()
            } else {
                after.to_owned()
            };
            format!(
                "{}://{host}{}{}{p}{after}",
                if upper { "HTTPS" } else { "https" },
                if dot { "." } else { "" },
                if port { ":443" } else { "" },
            )
        })
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
            // The database accepts it, and reads the room the service reads,
            // from the canonical form and from the spelling as typed.
            prop_assert!(is_safe_link(s), "{}", s);
            prop_assert_eq!(room_of(s), url.room());
            if is_safe_link(&raw) {
                prop_assert_eq!(room_of(&raw), url.room());
            }
        } else {
            // Whatever the service refuses as unsafe, the database refuses.
            prop_assert!(!is_safe_link(&raw) || MeetingUrl::parse(&raw).is_err());
        }
    }

    #[test]
    fn canonical_links_and_rooms_are_fixed_points(raw in provider_link()) {
        let url = MeetingUrl::parse(&raw).unwrap();
        let again = MeetingUrl::parse(url.as_str()).unwrap();
        prop_assert_eq!(&again, &url);
        prop_assert_eq!(room_of(&url.room()), url.room());
        prop_assert_eq!(MeetingUrl::parse(&url.room()).unwrap().room(), url.room());
    }

    #[test]
    fn equivalent_spellings_land_on_one_room(
        (plain, spelled) in provider_link().prop_flat_map(|l| (Just(l.clone()), respell(l)))
    ) {
        let room = MeetingUrl::parse(&plain).unwrap().room();
        let url = MeetingUrl::parse(&spelled).unwrap();
        prop_assert_eq!(url.room(), room.clone(), "{} / {}", plain, spelled);
        // As the database reads it, typed in by plain SQL.
        prop_assert!(is_safe_link(&spelled), "{}", spelled);
        prop_assert_eq!(room_of(&spelled), room);
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
