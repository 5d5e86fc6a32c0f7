-- The overlap check, as cheap with a long history as with none.
--
-- 0001's triggers looked at every session the link ever held that starts
-- before the new one ends, computing each one's busy end: a write's cost grew
-- with the link's history (half of a notification's time at 12,000 stored
-- bookings). Sessions on one link never overlap (these triggers see to it),
-- so ordered by start they are ordered by busy end too: if any of them
-- overlaps the new session, the last one to start before the new session's
-- busy end does. One probe of (meeting_link_id, starts_at) finds it; no such
-- session (NULL) is no overlap.
DROP TRIGGER bookings_no_double_booking_insert;
DROP TRIGGER bookings_no_double_booking_update;

CREATE TRIGGER bookings_no_double_booking_insert
BEFORE INSERT ON bookings
FOR EACH ROW WHEN NEW.meeting_link_id IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'meetpool: double booking refused')
    FROM meetpool_settings s
    WHERE s.id = 1
      AND NEW.starts_at < (
        SELECT datetime(o.ends_at, '+' || s.buffer_minutes || ' minutes') FROM bookings o
        WHERE o.meeting_link_id = NEW.meeting_link_id AND o.id <> NEW.id
          AND o.starts_at < datetime(NEW.ends_at, '+' || s.buffer_minutes || ' minutes')
        ORDER BY o.starts_at DESC LIMIT 1);
END;

CREATE TRIGGER bookings_no_double_booking_update
BEFORE UPDATE OF meeting_link_id, starts_at, ends_at ON bookings
FOR EACH ROW WHEN NEW.meeting_link_id IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'meetpool: double booking refused')
    FROM meetpool_settings s
    WHERE s.id = 1
      AND NEW.starts_at < (
        SELECT datetime(o.ends_at, '+' || s.buffer_minutes || ' minutes') FROM bookings o
        WHERE o.meeting_link_id = NEW.meeting_link_id AND o.id <> NEW.id
          AND o.starts_at < datetime(NEW.ends_at, '+' || s.buffer_minutes || ' minutes')
        ORDER BY o.starts_at DESC LIMIT 1);
END;

-- Checkout holds still holding a link, for taking back the expired ones
-- without reading every linked booking.
CREATE INDEX bookings_held ON bookings (hold_expires_at)
WHERE payment_status <> 'paid' AND meeting_link_id IS NOT NULL;
