-- A checkout hold: an unpaid booking keeps its link until this instant.
-- The exclusion constraint covers holds as it covers paid bookings, since
-- it looks at the link alone; an expired hold gives its link back.
ALTER TABLE bookings ADD COLUMN hold_expires_at timestamptz;
