//! Midtrans payment notifications, end to end over HTTP: the fixtures of
//! `../shared/midtrans/notifications/` posted the way Midtrans posts them,
//! and what the platform then sees on its bookings. One theme a file:
//!
//! - `state_machine`: what each status does to a booking; forward only.
//! - `signatures`: tampered and edited notifications are refused.
//! - `bad_bodies`: malformed, unknown, unconfigured, arbitrary bodies.
//! - `duplicates`: redeliveries and racing copies apply once.
//! - `money`: the amount must be the price; money for a cancelled booking.
//! - `concurrency`: bursts, settlement in groups, a failure in a group.
//! - `outages`: the database goes away and comes back.
//! - `status_api`: confirming with Midtrans' GET status.
//! - `booking_status`: the booking's `status` follows its payment.
//! - `reconcile`: payments whose notification never arrived, asked about.
//!
//! `shop` holds the test data and the helpers they share.
mod bad_bodies;
mod booking_status;
mod concurrency;
mod duplicates;
mod money;
mod outages;
mod reconcile;
mod shop;
mod signatures;
mod state_machine;
mod status_api;

pub(crate) use shop::{
    burst, burst_bookings, post_in_background, refund_of, settlement_of, signed_fixture,
    until_queued,
};
