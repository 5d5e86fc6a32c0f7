//! What the service answers, as typed values: a test reads fields, not
//! `["id"].as_str().unwrap()`. The native API's types accept fields added
//! later; the previous system's answers and the webhook's accept exactly
//! the fields their clients know (`deny_unknown_fields`, camelCase names),
//! so a renamed or extra field fails the test that reads it.
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct SessionType {
    pub id: String,
    pub name: String,
    pub duration: i32,
    pub price: i64,
    pub created_at: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Link {
    pub id: String,
    pub meeting_link: String,
    pub notes: Option<String>,
    pub is_available: bool,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Booking {
    pub id: String,
    pub order_id: String,
    pub user_id: String,
    pub expert_id: String,
    pub session_type_id: String,
    pub booking_date: String,
    pub booking_time: String,
    pub price: i64,
    pub payment_status: String,
    pub status: String,
    pub meeting_link_id: Option<String>,
    pub meeting_link: Option<String>,
    pub hold_expires_at: Option<String>,
    pub join_url: String,
    pub starts_at: String,
    pub ends_at: String,
    pub created_at: String,
    pub updated_at: String,
}

/// One entry of a booking's audit trail.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Event {
    pub id: i64,
    pub booking_id: String,
    pub kind: String,
    pub meeting_link_id: Option<String>,
    pub detail: Value,
    pub created_at: String,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub struct PoolStatus {
    pub total_links: i64,
    pub available_links: i64,
    pub in_use_now: i64,
    pub unassigned_paid_bookings: i64,
}

/// The native API's error: `{"error": {"code", "message", "details"?}}`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiError {
    pub code: String,
    pub message: String,
    pub details: Option<Value>,
}

/// A request the service refused: its status and its error.
#[derive(Clone, Debug, PartialEq)]
pub struct Refused {
    pub status: StatusCode,
    pub error: ApiError,
}

impl Refused {
    /// The status and the machine code: what a client branches on.
    pub fn why(&self) -> (StatusCode, &str) {
        (self.status, &self.error.code)
    }
}

/// The previous system's `assign-meeting-link` answer, field for field.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssignAnswer {
    pub success: bool,
    pub meeting_link: Option<String>,
    pub meeting_link_id: Option<String>,
    pub join_url: Option<String>,
    pub error: Option<String>,
    pub requires_manual_assignment: Option<bool>,
}

/// The webhook's answer to a notification it settled, field for field.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settled {
    pub success: bool,
    pub booking_id: String,
    pub payment_status: String,
    pub meeting_link: Option<String>,
    pub requires_manual_assignment: bool,
    pub duplicate: bool,
    pub join_url: String,
}

/// The webhook's answer to a notification it did not settle.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookError {
    pub success: bool,
    pub error: ApiError,
}

/// What the webhook answered Midtrans.
#[derive(Clone, Debug, PartialEq)]
pub enum WebhookAnswer {
    /// 200: settled (or recognised as a duplicate).
    Settled(Settled),
    /// Anything else, with its status.
    Refused(StatusCode, WebhookError),
}

impl WebhookAnswer {
    /// The settlement; fails the test with the answer otherwise.
    #[track_caller]
    pub fn settled(self) -> Settled {
        match self {
            WebhookAnswer::Settled(s) => s,
            WebhookAnswer::Refused(status, e) => {
                panic!("expected the notification settled, got {status} {e:?}")
            }
        }
    }

    /// The refusal, after checking that its body says `"success": false`;
    /// fails the test if the notification was settled.
    #[track_caller]
    pub fn refused(self) -> Refused {
        match self {
            WebhookAnswer::Refused(status, e) => {
                assert!(!e.success, "{status} {e:?}");
                Refused {
                    status,
                    error: e.error,
                }
            }
            WebhookAnswer::Settled(s) => panic!("expected a refusal, got {s:?}"),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            WebhookAnswer::Settled(_) => StatusCode::OK,
            WebhookAnswer::Refused(status, _) => *status,
        }
    }
}
