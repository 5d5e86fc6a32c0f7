//! Which bookings to list. The API's query string and the CLI's flags both
//! fill in this one type, so both accept and refuse the same values.
//!
//! A list is ordered by start, then id, and read in pages: each page but
//! the last comes with a cursor naming its last booking, and the next page
//! is what follows it. Bookings added or changed meanwhile never make a
//! page repeat or skip one that stayed where it was.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jiff::Timestamp;
use meetpool_domain::time::parse_date;
use meetpool_domain::{Booking, BookingId, PaymentStatus};
use meetpool_store::BookingFilter;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::status::checked_limit;
use crate::{App, AppError, Result};

/// The most bookings one request can list.
pub const BOOKINGS_MAX: u32 = 1000;

/// Bookings to list, as asked (text, still to be validated).
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BookingQuery {
    /// Only bookings in this payment state: pending, paid, failed,
    /// cancelled, expired or refunded.
    pub payment_status: Option<String>,
    /// Only the queue: paid bookings without a link whose session has not
    /// ended.
    #[serde(default)]
    pub unassigned: bool,
    /// Only bookings starting on this day (`YYYY-MM-DD`, years 2000 to
    /// 2199) in the platform's time zone.
    #[param(format = Date)]
    pub date: Option<String>,
    /// At most this many (0 to 1000; 100 when absent; more is 422
    /// `invalid_limit`).
    #[param(minimum = 0, maximum = 1000)]
    pub limit: Option<u32>,
    /// The cursor of the page before (`next` of its `Link` header): the
    /// bookings that follow it in the list's order (start, then id).
    /// Opaque; 422 `invalid_cursor` for one this service did not give.
    pub after: Option<String>,
}

/// One page of a list, and the cursor of the next one when there may be
/// more.
#[derive(Clone, Debug)]
pub struct BookingPage {
    pub bookings: Vec<Booking>,
    pub next: Option<String>,
}

/// The cursor that names `booking`'s place in the list.
fn cursor(booking: &Booking) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}/{}", booking.window.start, booking.id))
}

fn parse_cursor(raw: &str) -> Result<(Timestamp, BookingId)> {
    let bad = || {
        AppError::invalid(
            "invalid_cursor",
            "after must be the cursor of a page this service listed",
        )
    };
    let text = URL_SAFE_NO_PAD.decode(raw.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(text).map_err(|_| bad())?;
    let (start, id) = text.split_once('/').ok_or_else(bad)?;
    Ok((
        start.parse().map_err(|_| bad())?,
        id.parse().map_err(|_| bad())?,
    ))
}

impl App {
    /// The store's filter for `query`: 422 `invalid_payment_status` or
    /// `invalid_date` for a value it cannot mean.
    pub fn booking_filter(&self, query: &BookingQuery) -> Result<BookingFilter> {
        let payment_status = query
            .payment_status
            .as_deref()
            .map(str::parse::<PaymentStatus>)
            .transpose()
            .map_err(|e| AppError::invalid("invalid_payment_status", e))?;
        let starts_within = query
            .date
            .as_deref()
            .map(|d| parse_date(d).map_err(|e| AppError::invalid("invalid_date", e)))
            .transpose()?
            .map(|d| self.local_day(d))
            .transpose()?;
        Ok(BookingFilter {
            payment_status,
            unassigned: query.unassigned,
            starts_within,
            after: query.after.as_deref().map(parse_cursor).transpose()?,
            limit: checked_limit(query.limit, 100, BOOKINGS_MAX)?,
        })
    }

    /// One page of the bookings `query` asks for.
    pub async fn list_bookings(&self, query: &BookingQuery) -> Result<BookingPage> {
        let mut filter = self.booking_filter(query)?;
        let limit = filter.limit as usize;
        if limit == 0 {
            return Ok(BookingPage {
                bookings: Vec::new(),
                next: None,
            });
        }
        // One more than the page says whether another follows.
        filter.limit += 1;
        let mut bookings = self.bookings(&filter).await?;
        let more = bookings.len() > limit;
        bookings.truncate(limit);
        let next = more.then(|| bookings.last().map(cursor)).flatten();
        Ok(BookingPage { bookings, next })
    }
}
