//! Midtrans' GET status API, real and local: a server on a port of its own
//! answering `GET /v2/{order_id}/status` as Midtrans documents it (Basic
//! auth with the server key; the transaction as its notification carries
//! it, with a `status_message`; HTTP 404 with
//! `{"status_code":"404","status_message":"Transaction doesn't exist."}`
//! for an order it holds no transaction of, as when the customer has not
//! chosen a payment method yet), recording every question.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use meetpool_domain::midtrans::signature;
use serde_json::{json, Value};

use crate::MIDTRANS_KEY;

/// One question the gateway was asked.
#[derive(Clone, Debug)]
pub struct Question {
    pub order_id: String,
    pub authorization: Option<String>,
    pub at: Instant,
}

#[derive(Default)]
struct Books {
    /// order_id -> the transaction GET status answers with.
    transactions: BTreeMap<String, Value>,
    asked: Vec<Question>,
    in_flight: usize,
    most_in_flight: usize,
    /// How long each answer takes.
    delay: Duration,
}

/// The local Midtrans; `base` is its `MIDTRANS_API_BASE`.
#[derive(Clone)]
pub struct Gateway {
    pub base: String,
    books: Arc<Mutex<Books>>,
}

impl Gateway {
    pub async fn start() -> Self {
        let books = Arc::new(Mutex::new(Books::default()));
        let router = Router::new()
            .route("/v2/{order_id}/status", axum::routing::get(status))
            .with_state(books.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { base, books }
    }

    fn books(&self) -> MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// From now on GET status of `transaction`'s order answers with it.
    pub fn holds(&self, transaction: Value) {
        let order = transaction["order_id"].as_str().unwrap().to_owned();
        self.books().transactions.insert(order, transaction);
    }

    /// Each answer takes `delay` from now on.
    pub fn answer_after(&self, delay: Duration) {
        self.books().delay = delay;
    }

    pub fn questions(&self) -> Vec<Question> {
        self.books().asked.clone()
    }

    /// How many times `order` was asked about.
    pub fn asked_about(&self, order: &str) -> usize {
        self.books()
            .asked
            .iter()
            .filter(|q| q.order_id == order)
            .count()
    }

    /// The most questions under way at once so far.
    pub fn most_at_once(&self) -> usize {
        self.books().most_in_flight
    }
}

async fn status(
    State(books): State<Arc<Mutex<Books>>>,
    Path(order_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (answer, delay) = {
        let mut b = books.lock().unwrap_or_else(|e| e.into_inner());
        b.asked.push(Question {
            order_id: order_id.clone(),
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            at: Instant::now(),
        });
        b.in_flight += 1;
        b.most_in_flight = b.most_in_flight.max(b.in_flight);
        (b.transactions.get(&order_id).cloned(), b.delay)
    };
    tokio::time::sleep(delay).await;
    books.lock().unwrap_or_else(|e| e.into_inner()).in_flight -= 1;
    match answer {
        Some(t) => axum::Json(t).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({
                "status_code": "404",
                "status_message": "Transaction doesn't exist.",
                "id": uuid::Uuid::new_v4().to_string(),
            })),
        )
            .into_response(),
    }
}

/// A transaction as GET status reports it, from a notification body (or
/// the fields that make one): a `status_message`, and the body's
/// `signature_key` as Midtrans computes it with the tests' server key.
pub fn reported(mut transaction: Value) -> Value {
    if transaction.get("status_message").is_none() {
        transaction["status_message"] = json!("Success, transaction is found");
    }
    let sig = signature(
        transaction["order_id"].as_str().unwrap(),
        transaction["status_code"].as_str().unwrap(),
        transaction["gross_amount"].as_str().unwrap(),
        MIDTRANS_KEY,
    );
    transaction["signature_key"] = json!(sig);
    transaction
}

/// A settled bank transfer of `order` for `amount` (`"100000.00"`), as GET
/// status reports it.
pub fn settled(order: &str, amount: &str) -> Value {
    reported(json!({
        "status_code": "200",
        "transaction_id": format!("txn-{order}"),
        "gross_amount": amount,
        "currency": "IDR",
        "order_id": order,
        "payment_type": "bank_transfer",
        "transaction_status": "settlement",
        "fraud_status": "accept",
        "transaction_time": "2027-11-30 10:00:00",
        "settlement_time": "2027-11-30 10:05:00",
        "merchant_id": "G000000000",
        "va_numbers": [{"bank": "bca", "va_number": "12345678901"}],
    }))
}

/// `order`'s transaction in `status` (`expire`, `deny`, `pending`...) with
/// the `status_code` Midtrans reports it with.
pub fn in_status(order: &str, amount: &str, status: &str) -> Value {
    let code = match status {
        "settlement" | "capture" | "cancel" | "refund" | "chargeback" => "200",
        "pending" | "authorize" => "201",
        "deny" => "202",
        "expire" => "407",
        _ => "202",
    };
    let mut t = settled(order, amount);
    t["transaction_status"] = json!(status);
    t["status_code"] = json!(code);
    if let Some(o) = t.as_object_mut() {
        o.remove("settlement_time");
    }
    reported(t)
}
