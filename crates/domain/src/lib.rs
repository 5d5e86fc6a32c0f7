//! meetpool's domain rules. Nothing here touches a database, the network or
//! the clock: storage adapters and the HTTP layer feed these types values and
//! act on the decisions they return.
#![forbid(unsafe_code)]

pub mod allocation;
pub mod booking;
pub mod ids;
pub mod join;
pub mod midtrans;
pub mod payment;
pub mod repack;
pub mod room;
pub mod time;
pub mod values;

pub use allocation::{choose_link, peak_concurrency, peak_load, LinkCandidate, Policy};
pub use booking::{Booking, EventKind, NewBooking};
pub use ids::{BookingId, LinkId, SessionTypeId};
pub use join::{join, Join};
pub use payment::{PaymentStatus, Transition};
pub use time::{LocalSlot, TimeError, Window};
pub use values::{DurationMinutes, MeetingUrl, OrderId, ValueError};
