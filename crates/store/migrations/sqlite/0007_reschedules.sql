-- How many times a session was moved: the SEQUENCE of its calendar file,
-- so that participants' calendars take the newest version.
ALTER TABLE bookings ADD COLUMN reschedules integer NOT NULL DEFAULT 0;
