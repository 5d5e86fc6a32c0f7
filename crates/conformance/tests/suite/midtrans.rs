//! Midtrans payment notifications, end to end over HTTP.
