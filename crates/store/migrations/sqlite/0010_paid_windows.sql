-- Paid sessions counted by window, kept by the database for every write of
-- a booking, so that the capacity report reads a few hundred counts for a
-- month instead of every session. SQLite has one writer at a time, so each
-- window has one row, updated in place.
CREATE TABLE paid_windows (
    starts_at TEXT NOT NULL,
    ends_at TEXT NOT NULL,
    sessions INTEGER NOT NULL,
    -- Of those, paid sessions without a link.
    unlinked INTEGER NOT NULL,
    PRIMARY KEY (starts_at, ends_at)
) WITHOUT ROWID;

CREATE TRIGGER bookings_paid_windows_insert AFTER INSERT ON bookings FOR EACH ROW
WHEN NEW.payment_status = 'paid'
BEGIN
    INSERT INTO paid_windows (starts_at, ends_at, sessions, unlinked)
    VALUES (NEW.starts_at, NEW.ends_at, 1, NEW.meeting_link_id IS NULL)
    ON CONFLICT (starts_at, ends_at) DO UPDATE
    SET sessions = sessions + 1, unlinked = unlinked + excluded.unlinked;
END;

CREATE TRIGGER bookings_paid_windows_delete AFTER DELETE ON bookings FOR EACH ROW
WHEN OLD.payment_status = 'paid'
BEGIN
    UPDATE paid_windows
    SET sessions = sessions - 1, unlinked = unlinked - (OLD.meeting_link_id IS NULL)
    WHERE starts_at = OLD.starts_at AND ends_at = OLD.ends_at;
    DELETE FROM paid_windows
    WHERE starts_at = OLD.starts_at AND ends_at = OLD.ends_at AND sessions <= 0;
END;

-- Only writes that change what is counted: paid-ness, link-ness or window.
CREATE TRIGGER bookings_paid_windows_update AFTER UPDATE ON bookings FOR EACH ROW
WHEN (OLD.payment_status = 'paid' OR NEW.payment_status = 'paid')
  AND (OLD.payment_status IS NOT NEW.payment_status
       OR (OLD.meeting_link_id IS NULL) <> (NEW.meeting_link_id IS NULL)
       OR OLD.starts_at IS NOT NEW.starts_at
       OR OLD.ends_at IS NOT NEW.ends_at)
BEGIN
    UPDATE paid_windows
    SET sessions = sessions - 1, unlinked = unlinked - (OLD.meeting_link_id IS NULL)
    WHERE OLD.payment_status = 'paid' AND starts_at = OLD.starts_at AND ends_at = OLD.ends_at;
    DELETE FROM paid_windows
    WHERE OLD.payment_status = 'paid' AND starts_at = OLD.starts_at AND ends_at = OLD.ends_at
      AND sessions <= 0;
    INSERT INTO paid_windows (starts_at, ends_at, sessions, unlinked)
    SELECT NEW.starts_at, NEW.ends_at, 1, NEW.meeting_link_id IS NULL
    WHERE NEW.payment_status = 'paid'
    ON CONFLICT (starts_at, ends_at) DO UPDATE
    SET sessions = sessions + 1, unlinked = unlinked + excluded.unlinked;
END;

-- The bookings already stored.
INSERT INTO paid_windows (starts_at, ends_at, sessions, unlinked)
SELECT starts_at, ends_at, count(*), sum(meeting_link_id IS NULL)
FROM bookings WHERE payment_status = 'paid'
GROUP BY starts_at, ends_at;
