//! What bookings, links and the pool look like from outside (JSON for the
//! API and for `--json` in the CLI).
use meetpool_domain::Booking;
use meetpool_store::{Event, Link, PoolStatus, SessionType};
use serde::Serialize;
use serde_json::Value;

use crate::App;

#[derive(Serialize)]
pub struct BookingView {
    pub id: String,
    pub order_id: String,
    pub user_id: String,
    pub expert_id: String,
    pub session_type_id: String,
    pub booking_date: String,
    pub booking_time: String,
    pub price: i64,
    pub payment_status: &'static str,
    pub status: String,
    pub meeting_link_id: Option<String>,
    pub meeting_link: Option<String>,
    pub join_url: String,
    pub starts_at: String,
    pub ends_at: String,
    pub created_at: String,
    pub updated_at: String,
}

impl App {
    pub fn booking_view(&self, b: &Booking) -> BookingView {
        BookingView {
            id: b.id.to_string(),
            order_id: b.order_id.clone(),
            user_id: b.user_id.clone(),
            expert_id: b.expert_id.clone(),
            session_type_id: b.session_type_id.to_string(),
            booking_date: b.booking_date.to_string(),
            booking_time: format!(
                "{:02}:{:02}",
                b.booking_time.hour(),
                b.booking_time.minute()
            ),
            price: b.price,
            payment_status: b.payment_status.as_str(),
            status: b.status.clone(),
            meeting_link_id: b.meeting_link_id.map(|l| l.to_string()),
            meeting_link: b.meeting_link.clone(),
            join_url: format!(
                "{}/j/{}",
                self.config().public_url.trim_end_matches('/'),
                b.join_token
            ),
            starts_at: b.window.start.to_string(),
            ends_at: b.window.end.to_string(),
            created_at: b.created_at.to_string(),
            updated_at: b.updated_at.to_string(),
        }
    }
}

#[derive(Serialize)]
pub struct LinkView {
    pub id: String,
    pub meeting_link: String,
    pub notes: Option<String>,
    pub is_available: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Link> for LinkView {
    fn from(l: &Link) -> Self {
        Self {
            id: l.id.to_string(),
            meeting_link: l.meeting_link.clone(),
            notes: l.notes.clone(),
            is_available: l.is_available,
            created_at: l.created_at.to_string(),
            updated_at: l.updated_at.to_string(),
        }
    }
}

#[derive(Serialize)]
pub struct SessionTypeView {
    pub id: String,
    pub name: String,
    pub duration: i32,
    pub price: i64,
    pub created_at: String,
}

impl From<&SessionType> for SessionTypeView {
    fn from(s: &SessionType) -> Self {
        Self {
            id: s.id.to_string(),
            name: s.name.clone(),
            duration: s.duration,
            price: s.price,
            created_at: s.created_at.to_string(),
        }
    }
}

#[derive(Serialize)]
pub struct EventView {
    pub id: i64,
    pub booking_id: String,
    pub kind: String,
    pub meeting_link_id: Option<String>,
    pub detail: Value,
    pub created_at: String,
}

impl From<&Event> for EventView {
    fn from(e: &Event) -> Self {
        Self {
            id: e.id,
            booking_id: e.booking_id.to_string(),
            kind: e.kind.clone(),
            meeting_link_id: e.meeting_link_id.map(|l| l.to_string()),
            detail: e.detail.clone(),
            created_at: e.created_at.to_string(),
        }
    }
}

#[derive(Serialize)]
pub struct PoolStatusView {
    pub total_links: i64,
    pub available_links: i64,
    pub in_use_now: i64,
    pub unassigned_paid_bookings: i64,
}

impl From<&PoolStatus> for PoolStatusView {
    fn from(p: &PoolStatus) -> Self {
        Self {
            total_links: p.total_links,
            available_links: p.available_links,
            in_use_now: p.in_use_now,
            unassigned_paid_bookings: p.unassigned_paid_bookings,
        }
    }
}
