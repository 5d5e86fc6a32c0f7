//! Midtrans HTTP notifications: lenient parsing, the signature, and what a
//! notification means for a booking's payment state.
use std::fmt;

use serde_json::Value;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;
use thiserror::Error;

use crate::payment::PaymentStatus;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum NotificationError {
    #[error("the body is not a JSON object")]
    NotJson,
    #[error("the notification has no {0} (a string)")]
    Missing(&'static str),
}

/// The fields of a notification that meetpool uses. Everything else Midtrans
/// sends (and will add later) is ignored.
#[derive(Clone, PartialEq, Eq)]
pub struct Notification {
    pub order_id: String,
    pub status_code: String,
    pub gross_amount: String,
    pub signature_key: String,
    /// Lower-cased.
    pub transaction_status: String,
    pub transaction_id: Option<String>,
    /// Lower-cased.
    pub fraud_status: Option<String>,
    pub payment_type: Option<String>,
    /// The body's documented fields, as [`recorded_fields`] keeps them.
    pub recorded: Value,
}

impl fmt::Debug for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notification")
            .field("order_id", &self.order_id)
            .field("status_code", &self.status_code)
            .field("transaction_status", &self.transaction_status)
            .field("transaction_id", &self.transaction_id)
            .field("fraud_status", &self.fraud_status)
            .finish_non_exhaustive()
    }
}

impl Notification {
    /// Parses a body as Midtrans sends it, whatever its content type said.
    pub fn parse(body: &[u8]) -> Result<Self, NotificationError> {
        let value: Value = serde_json::from_slice(body).map_err(|_| NotificationError::NotJson)?;
        Self::from_value(&value)
    }

    pub fn from_value(value: &Value) -> Result<Self, NotificationError> {
        let obj = value.as_object().ok_or(NotificationError::NotJson)?;
        let required = |name: &'static str| -> Result<String, NotificationError> {
            match obj.get(name) {
                Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                _ => Err(NotificationError::Missing(name)),
            }
        };
        let optional = |name: &str| match obj.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        Ok(Self {
            order_id: required("order_id")?,
            status_code: required("status_code")?,
            gross_amount: required("gross_amount")?,
            signature_key: required("signature_key")?,
            transaction_status: required("transaction_status")?.to_ascii_lowercase(),
            transaction_id: optional("transaction_id"),
            fraud_status: optional("fraud_status").map(|s| s.to_ascii_lowercase()),
            payment_type: optional("payment_type"),
            recorded: kept_fields(obj),
        })
    }

    /// Checks `signature_key` against SHA-512 of the strings exactly as
    /// received, in constant time.
    pub fn signature_is_valid(&self, server_key: &str) -> bool {
        let expected = signature(
            &self.order_id,
            &self.status_code,
            &self.gross_amount,
            server_key,
        );
        let given = self.signature_key.trim().to_ascii_lowercase();
        expected.as_bytes().ct_eq(given.as_bytes()).into()
    }

    /// What this notification asks of the booking.
    pub fn effect(&self) -> Effect {
        let fraud_ok = matches!(self.fraud_status.as_deref(), None | Some("accept"));
        let paid = || {
            // The signature does not cover transaction_status: a genuine
            // "pending" body (status_code 201) with its status edited to
            // "settlement" still verifies. Midtrans only ever reports a
            // successful payment with status_code 200.
            if self.status_code == "200" {
                Effect::Set(PaymentStatus::Paid)
            } else {
                Effect::Inconsistent
            }
        };
        let effect = match self.transaction_status.as_str() {
            "settlement" => paid(),
            "capture" if fraud_ok => paid(),
            "capture" if self.fraud_status.as_deref() == Some("challenge") => {
                Effect::Set(PaymentStatus::Pending)
            }
            "capture" => Effect::Set(PaymentStatus::Failed),
            "authorize" | "pending" => Effect::Set(PaymentStatus::Pending),
            "deny" | "failure" => Effect::Set(PaymentStatus::Failed),
            "cancel" => Effect::Set(PaymentStatus::Cancelled),
            "expire" => Effect::Set(PaymentStatus::Expired),
            "refund" | "chargeback" => Effect::Set(PaymentStatus::Refunded),
            "partial_refund" | "partial_chargeback" => Effect::Record,
            _ => Effect::Unknown,
        };
        // For the same reason, a status that ends a booking or takes it out
        // of paid must come with a status_code Midtrans sends with it:
        // otherwise a genuine pending body (201) edited to "cancel" would
        // cancel the booking for good (its real settlement then refused),
        // and the settled transaction's own pending body edited to "deny"
        // would reverse the payment and release the link. Cancel, refund and
        // chargeback come with 200; deny and failure never with 200 or 201.
        match (effect, self.status_code.as_str()) {
            (Effect::Set(PaymentStatus::Cancelled | PaymentStatus::Refunded), code)
                if code != "200" =>
            {
                Effect::Inconsistent
            }
            (Effect::Set(PaymentStatus::Failed), "200" | "201") => Effect::Inconsistent,
            (effect, _) => effect,
        }
    }

    /// Whether `gross_amount` is `price` (whole currency units), compared as
    /// decimals: `"150000.00"` and `"150000"` pay 150000; `"1.00"`, a
    /// malformed amount or a fraction of a unit do not.
    pub fn pays(&self, price: i64) -> bool {
        cents(&self.gross_amount)
            .is_some_and(|paid| Some(paid) == i128::from(price).checked_mul(100))
    }

    /// Identifies a notification for de-duplication: Midtrans re-sends the
    /// same (order, transaction, status) until it gets a 2xx.
    pub fn dedup_key(&self) -> String {
        format!(
            "{}|{}|{}",
            self.order_id,
            self.transaction_id.as_deref().unwrap_or(""),
            self.transaction_status
        )
    }
}

/// A decimal amount in hundredths of a unit: digits, optionally a point
/// and at most two more digits.
fn cents(amount: &str) -> Option<i128> {
    let (units, fraction) = amount.split_once('.').unwrap_or((amount, ""));
    let digits = |s: &str| !s.is_empty() && s.len() <= 30 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(units) || !(fraction.is_empty() || (digits(fraction) && fraction.len() <= 2)) {
        return None;
    }
    let hundredths: i128 = format!("{fraction:0<2}").parse().ok()?;
    units
        .parse::<i128>()
        .ok()?
        .checked_mul(100)?
        .checked_add(hundredths)
}

/// The documented fields of a notification body ([`recorded_fields`]).
const KEPT: [&str; 14] = [
    "order_id",
    "transaction_id",
    "transaction_status",
    "status_code",
    "status_message",
    "fraud_status",
    "gross_amount",
    "currency",
    "payment_type",
    "transaction_time",
    "settlement_time",
    "expiry_time",
    "merchant_id",
    "signature_key",
];

/// The fields of a notification body worth keeping in a booking's audit
/// trail: the ones Midtrans documents, each as sent but cut to a sane
/// length. Whatever else a body carries (new fields, padding) is not
/// stored, so a re-posted body cannot grow the database at will.
pub fn recorded_fields(body: &[u8]) -> Value {
    let Ok(Value::Object(all)) = serde_json::from_slice::<Value>(body) else {
        return Value::Null;
    };
    kept_fields(&all)
}

fn kept_fields(all: &serde_json::Map<String, Value>) -> Value {
    const MAX_CHARS: usize = 200;
    let kept = KEPT
        .iter()
        .filter_map(|&name| {
            let value = match all.get(name)? {
                Value::String(s) => Value::String(s.chars().take(MAX_CHARS).collect()),
                Value::Number(n) => Value::Number(n.clone()),
                _ => return None,
            };
            Some((name.to_owned(), value))
        })
        .collect();
    Value::Object(kept)
}

/// What a notification does to the booking's payment state.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Effect {
    Set(PaymentStatus),
    /// Recorded, state unchanged (a partial refund keeps the booking paid).
    Record,
    /// A status that does not go with its status_code (success without
    /// Midtrans' success code, an end or a reversal with a pending code):
    /// the status is not signed, so it is never applied.
    Inconsistent,
    /// A status Midtrans may add later: recorded, nothing changes.
    Unknown,
}

/// `lowercase_hex(SHA512(order_id + status_code + gross_amount + server_key))`.
pub fn signature(
    order_id: &str,
    status_code: &str,
    gross_amount: &str,
    server_key: &str,
) -> String {
    let mut h = Sha512::new();
    h.update(order_id.as_bytes());
    h.update(status_code.as_bytes());
    h.update(gross_amount.as_bytes());
    h.update(server_key.as_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn note(status: &str, code: &str, fraud: Option<&str>) -> Notification {
        let mut v = json!({
            "order_id": "O-1", "status_code": code, "gross_amount": "100.00",
            "signature_key": "x", "transaction_status": status,
        });
        if let Some(f) = fraud {
            v["fraud_status"] = json!(f);
        }
        Notification::from_value(&v).unwrap()
    }

    #[test]
    fn statuses_map_to_payment_states() {
        use PaymentStatus::*;
        assert_eq!(note("settlement", "200", None).effect(), Effect::Set(Paid));
        assert_eq!(
            note("capture", "200", Some("accept")).effect(),
            Effect::Set(Paid)
        );
        assert_eq!(note("capture", "200", None).effect(), Effect::Set(Paid));
        assert_eq!(
            note("capture", "201", Some("challenge")).effect(),
            Effect::Set(Pending)
        );
        assert_eq!(note("pending", "201", None).effect(), Effect::Set(Pending));
        assert_eq!(note("deny", "202", None).effect(), Effect::Set(Failed));
        assert_eq!(note("cancel", "200", None).effect(), Effect::Set(Cancelled));
        assert_eq!(note("expire", "202", None).effect(), Effect::Set(Expired));
        assert_eq!(note("failure", "202", None).effect(), Effect::Set(Failed));
        assert_eq!(note("refund", "200", None).effect(), Effect::Set(Refunded));
        assert_eq!(
            note("chargeback", "200", None).effect(),
            Effect::Set(Refunded)
        );
        assert_eq!(note("partial_refund", "200", None).effect(), Effect::Record);
        assert_eq!(note("SETTLEMENT", "200", None).effect(), Effect::Set(Paid));
        assert_eq!(note("something_new", "200", None).effect(), Effect::Unknown);
    }

    #[test]
    fn success_without_code_200_is_never_paid() {
        assert_eq!(
            note("settlement", "201", None).effect(),
            Effect::Inconsistent
        );
        assert_eq!(
            note("capture", "201", Some("accept")).effect(),
            Effect::Inconsistent
        );
    }

    #[test]
    fn ending_or_reversing_statuses_need_their_status_code() {
        for (status, code) in [
            ("cancel", "201"),
            ("refund", "201"),
            ("chargeback", "202"),
            ("deny", "201"),
            ("deny", "200"),
            ("failure", "201"),
        ] {
            assert_eq!(
                note(status, code, None).effect(),
                Effect::Inconsistent,
                "{status} {code}"
            );
        }
        assert_eq!(
            note("capture", "201", Some("deny")).effect(),
            Effect::Inconsistent
        );
        assert_eq!(
            note("capture", "202", Some("deny")).effect(),
            Effect::Set(PaymentStatus::Failed)
        );
    }

    #[test]
    fn parsing_is_lenient_but_needs_the_signed_fields() {
        let v = json!({"order_id": "O", "status_code": "200", "gross_amount": "1.00",
            "signature_key": "s", "transaction_status": "settlement", "new_thing": {"a": [1]}});
        assert!(Notification::from_value(&v).is_ok());
        let v = json!({"order_id": "O", "status_code": 200, "gross_amount": "1.00",
            "signature_key": "s", "transaction_status": "settlement"});
        assert_eq!(
            Notification::from_value(&v),
            Err(NotificationError::Missing("status_code"))
        );
        assert_eq!(
            Notification::parse(b"not json"),
            Err(NotificationError::NotJson)
        );
        assert_eq!(
            Notification::parse(b"[1,2]"),
            Err(NotificationError::NotJson)
        );
    }

    #[test]
    fn published_signature_vectors() {
        let tsv = include_str!("../testdata/vectors.tsv");
        let mut n = 0;
        for line in tsv.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(signature(f[0], f[1], f[2], f[3]), f[4], "{line}");
            n += 1;
        }
        assert_eq!(n, 4);
    }

    #[test]
    fn amounts_are_compared_as_decimals() {
        let mut n = note("settlement", "200", None);
        for (gross, price, pays) in [
            ("150000.00", 150_000, true),
            ("150000", 150_000, true),
            ("150000.0", 150_000, true),
            ("1.00", 150_000, false),
            ("150000.01", 150_000, false),
            ("150000.001", 150_000, false),
            ("15000.00", 150_000, false),
            ("1.5e5", 150_000, false),
            ("-150000", 150_000, false),
            (" 150000", 150_000, false),
            ("", 150_000, false),
            ("0.00", 0, true),
        ] {
            n.gross_amount = gross.to_owned();
            assert_eq!(n.pays(price), pays, "{gross:?} for {price}");
        }
    }

    #[test]
    fn only_the_documented_fields_are_recorded_and_cut_short() {
        let body = serde_json::json!({
            "order_id": "ORDER-1", "transaction_status": "settlement", "gross_amount": "150000.00",
            "padding": "x".repeat(100_000), "transaction_id": "t".repeat(1000), "va_numbers": [{"bank": "bca"}],
        });
        let kept = recorded_fields(body.to_string().as_bytes());
        assert_eq!(kept["order_id"], "ORDER-1");
        assert_eq!(kept["gross_amount"], "150000.00");
        assert_eq!(kept["transaction_id"].as_str().unwrap().len(), 200);
        assert!(kept.get("padding").is_none() && kept.get("va_numbers").is_none());
        assert!(kept.to_string().len() < 1000);
        assert_eq!(recorded_fields(b"not json"), serde_json::Value::Null);
    }
}
