//! What every benchmark booking costs and lasts: shared by the bookings the
//! load generator creates and the history seed-history writes, so that the
//! gaps the history leaves fit the bookings sent into them.
pub const PRICE: i64 = 100_000;
pub const GROSS_AMOUNT: &str = "100000.00";
/// Session length of every benchmark booking, minutes.
pub const DURATION_MIN: i64 = 60;
