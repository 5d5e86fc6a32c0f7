-- Reconciliation: when each pending booking was last asked about at the
-- payment gateway, and when it is due again; apart from bookings, which a
-- check never writes.
CREATE TABLE payment_checks (
    booking_id TEXT PRIMARY KEY REFERENCES bookings (id) ON DELETE CASCADE,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at TEXT NOT NULL,
    leased_until TEXT,
    checked_at TEXT,
    outcome TEXT
);

CREATE INDEX bookings_payment_pending ON bookings (starts_at) WHERE payment_status = 'pending';
