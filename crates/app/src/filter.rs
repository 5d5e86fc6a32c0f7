//! Which bookings to list. The API's query string and the CLI's flags both
//! fill in this one type, so both accept and refuse the same values.
use meetpool_domain::time::parse_date;
use meetpool_domain::{Booking, PaymentStatus};
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
pub struct BookingQuery {
    /// Only bookings in this payment state: pending, paid, failed,
    /// cancelled, expired or refunded.
    pub payment_status: Option<String>,
    /// Only the queue: paid bookings without a link whose session has not
    /// ended.
    #[serde(default)]
    pub unassigned: bool,
    /// Only bookings starting on this day (`YYYY-MM-DD`) in the platform's
    /// time zone.
    #[param(format = Date)]
    pub date: Option<String>,
    /// At most this many (0 to 1000; 100 when absent; more is 422
    /// `invalid_limit`).
    #[param(minimum = 0, maximum = 1000)]
    pub limit: Option<u32>,
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
            limit: checked_limit(query.limit, 100, BOOKINGS_MAX)?,
        })
    }

    pub async fn list_bookings(&self, query: &BookingQuery) -> Result<Vec<Booking>> {
        let filter = self.booking_filter(query)?;
        if filter.limit == 0 {
            return Ok(Vec::new());
        }
        self.bookings(&filter).await
    }
}
