-- Reconciliation: when each pending booking was last asked about at the
-- payment gateway, and when it is due again. A table of its own, so that a
-- payment's writes to bookings never touch it and a check never writes a
-- booking (nor, on an adopted database, the platform's row).
CREATE TABLE payment_checks (
    booking_id uuid PRIMARY KEY REFERENCES bookings (id) ON DELETE CASCADE,
    attempts integer NOT NULL DEFAULT 0,
    next_at timestamptz NOT NULL,
    -- A replica is asking until then.
    leased_until timestamptz,
    checked_at timestamptz,
    outcome text
);

-- The pending bookings whose session has not started: reconciliation's
-- read, a range of this index however long the history.
CREATE INDEX bookings_payment_pending ON bookings (starts_at) WHERE payment_status = 'pending';
