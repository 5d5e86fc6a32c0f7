-- A checkout hold: an unpaid booking keeps its link until this instant.
-- The overlap triggers cover holds as they cover paid bookings, since they
-- look at the link alone; an expired hold gives its link back.
ALTER TABLE bookings ADD COLUMN hold_expires_at TEXT;
