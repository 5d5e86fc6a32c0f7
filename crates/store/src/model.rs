//! Records the store reads and writes besides bookings.
use jiff::Timestamp;
use meetpool_domain::{
    Booking, BookingId, EventKind, LinkCandidate, LinkId, MeetingUrl, PaymentStatus, SessionTypeId,
    Window,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// How the PostgreSQL adapter keeps concurrent assignments for overlapping
/// times from racing each other (the exclusion constraint is the guarantee
/// either way; this is about how often it has to refuse).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Coordination {
    /// Transaction-scoped advisory locks on each hour a session touches.
    #[default]
    HourLocks,
    /// No locks: the exclusion constraint refuses the loser, who retries.
    ConstraintOnly,
}

#[derive(Clone, Debug)]
pub struct ConnectOptions {
    pub max_connections: u32,
    /// How long a statement waits for a free connection before the
    /// database counts as unavailable (503).
    pub acquire_timeout: std::time::Duration,
    pub coordination: Coordination,
    /// SQLite: create the file when it does not exist.
    pub create_if_missing: bool,
    /// PostgreSQL behind a transaction-mode pooler (PgBouncer
    /// `pool_mode=transaction`, Supavisor on 6543): no statement is
    /// prepared beyond its transaction and nothing relies on session state.
    pub pooler: bool,
    /// PostgreSQL: a connection that bypasses the pooler, for what needs a
    /// session of its own (migrations, LISTEN).
    pub direct_url: Option<String>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: std::time::Duration::from_secs(10),
            coordination: Coordination::default(),
            create_if_missing: true,
            pooler: false,
            direct_url: None,
        }
    }
}

/// An order whose booking [`crate::Tx::lock_orders`] locks, with the id of
/// the payment notification about it: a notification is applied once, so
/// the first claim of an id wins and any later one is a duplicate.
#[derive(Clone, Copy, Debug)]
pub struct OrderClaim<'a> {
    pub order_id: &'a str,
    pub notification_id: &'a str,
    /// The booking may get a link: serialise its session's time as
    /// [`crate::Tx::lock_window`] does, in the same round trip.
    pub lock_window: bool,
}

/// A booking locked by [`crate::Tx::lock_orders`].
#[derive(Clone, Debug)]
pub struct LockedOrder {
    pub booking: Booking,
    /// The notification id was claimed here for the first time (not a
    /// duplicate of one claimed before, in this call or earlier).
    pub first_claim: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbSettings {
    pub timezone: String,
    pub buffer_minutes: u32,
}

#[derive(Clone, Debug)]
pub struct SessionType {
    pub id: SessionTypeId,
    pub name: String,
    pub duration: i32,
    pub price: i64,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug)]
pub struct Link {
    pub id: LinkId,
    pub meeting_link: String,
    pub notes: Option<String>,
    pub is_available: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Clone, Debug)]
pub struct NewLink {
    pub id: LinkId,
    pub meeting_link: MeetingUrl,
    pub notes: Option<String>,
    pub is_available: bool,
}

#[derive(Clone, Debug, Default)]
pub struct LinkPatch {
    pub meeting_link: Option<MeetingUrl>,
    pub notes: Option<Option<String>>,
    pub is_available: Option<bool>,
}

#[derive(Clone, Debug, Default)]
pub struct BookingFilter {
    pub payment_status: Option<PaymentStatus>,
    pub unassigned: bool,
    /// Bookings whose session starts in this window (a local day, say).
    pub starts_within: Option<Window>,
    /// Only bookings listed after this one: its start and id, the order
    /// of the list (a page's cursor).
    pub after: Option<(Timestamp, BookingId)>,
    pub limit: u32,
}

#[derive(Clone, Debug)]
pub struct Event {
    pub id: i64,
    pub booking_id: BookingId,
    pub kind: String,
    pub meeting_link_id: Option<LinkId>,
    pub detail: serde_json::Value,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolStatus {
    pub total_links: i64,
    pub available_links: i64,
    pub in_use_now: i64,
    pub unassigned_paid_bookings: i64,
}

/// Everything one decision does to a booking, written at once: its payment
/// state, its link and the events that explain them.
#[derive(Clone, Debug, Default)]
pub struct BookingChange {
    pub payment: Option<PaymentChange>,
    pub link: LinkChange,
    pub events: Vec<NewEvent>,
}

/// A new payment state, the gateway transaction that caused it, and the
/// booking's `status` that goes with it
/// ([`meetpool_domain::payment::booking_status`]; `None` keeps it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentChange {
    pub status: PaymentStatus,
    pub transaction_id: Option<String>,
    pub booking_status: Option<&'static str>,
}

/// What a write does to a booking's link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LinkChange {
    #[default]
    Keep,
    Set(LinkId),
    Clear,
}

impl BookingChange {
    pub fn is_empty(&self) -> bool {
        !self.changes_row() && self.events.is_empty()
    }

    /// Whether the booking itself changes (not only its audit trail).
    pub fn changes_row(&self) -> bool {
        self.payment.is_some() || self.link != LinkChange::Keep
    }
}

#[derive(Clone, Debug)]
pub struct NewEvent {
    pub kind: EventKind,
    pub link: Option<LinkId>,
    pub detail: serde_json::Value,
}

impl NewEvent {
    pub fn new(kind: EventKind, link: Option<LinkId>, detail: serde_json::Value) -> Self {
        Self { kind, link, detail }
    }
}

/// Where and when a session takes place after a reschedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub booking_date: jiff::civil::Date,
    pub booking_time: jiff::civil::Time,
    pub session_type_id: SessionTypeId,
    pub window: Window,
}

/// Adds a row of a read ordered by link (a link, and one of its busy
/// windows where the row names one) to `links`: each link once, in the
/// rows' order, with its windows in the rows' order. Both adapters read a
/// pool's free time this way.
pub(crate) fn push_link_row(links: &mut Vec<LinkCandidate>, id: LinkId, busy: Option<Window>) {
    match links.last_mut() {
        Some(last) if last.id == id => last.busy.extend(busy),
        _ => links.push(LinkCandidate {
            id,
            busy: busy.into_iter().collect(),
        }),
    }
}

/// The paid sessions that share one window: how many, and how many of
/// them hold no link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaidWindow {
    pub window: Window,
    pub sessions: u32,
    pub unlinked: u32,
}
