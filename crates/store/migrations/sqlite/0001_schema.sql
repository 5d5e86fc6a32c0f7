-- meetpool on SQLite. Instants are UTC text 'YYYY-MM-DD HH:MM:SS' (SQLite's
-- own format), so they compare correctly as text and datetime() can shift them.

CREATE TABLE meetpool_settings (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    timezone TEXT NOT NULL DEFAULT 'UTC',
    buffer_minutes INTEGER NOT NULL DEFAULT 0 CHECK (buffer_minutes >= 0)
);
INSERT INTO meetpool_settings (id) VALUES (1);

CREATE TABLE session_types (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    duration INTEGER NOT NULL CHECK (duration BETWEEN 1 AND 1440),
    price INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

CREATE TABLE meeting_links_pool (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    meeting_link TEXT NOT NULL UNIQUE,
    notes TEXT,
    is_available INTEGER NOT NULL DEFAULT 1 CHECK (is_available IN (0, 1)),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

CREATE TRIGGER update_meeting_links_updated_at
AFTER UPDATE ON meeting_links_pool
FOR EACH ROW WHEN NEW.updated_at = OLD.updated_at
BEGIN
    UPDATE meeting_links_pool SET updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now') WHERE id = NEW.id;
END;

CREATE TABLE bookings (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    expert_id TEXT NOT NULL,
    session_type_id TEXT NOT NULL REFERENCES session_types (id),
    booking_date TEXT NOT NULL,
    booking_time TEXT NOT NULL,
    price INTEGER NOT NULL DEFAULT 0,
    payment_status TEXT NOT NULL DEFAULT 'pending'
        CHECK (payment_status IN ('pending', 'paid', 'failed', 'cancelled', 'expired', 'refunded')),
    status TEXT NOT NULL DEFAULT 'pending',
    meeting_link_id TEXT REFERENCES meeting_links_pool (id) ON DELETE RESTRICT,
    starts_at TEXT NOT NULL,
    ends_at TEXT NOT NULL CHECK (ends_at > starts_at),
    join_token TEXT NOT NULL UNIQUE,
    payment_transaction_id TEXT,
    assigned_at TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

CREATE INDEX bookings_link_starts ON bookings (meeting_link_id, starts_at) WHERE meeting_link_id IS NOT NULL;
CREATE INDEX bookings_waiting ON bookings (created_at) WHERE payment_status = 'paid' AND meeting_link_id IS NULL;
CREATE INDEX bookings_date ON bookings (booking_date);
CREATE INDEX bookings_assigned ON bookings (assigned_at) WHERE meeting_link_id IS NOT NULL;

-- The invariant, kept by the database for every write, the service's or an
-- operator's: no two bookings hold one link at overlapping times (the idle
-- buffer after each session included).
CREATE TRIGGER bookings_no_double_booking_insert
BEFORE INSERT ON bookings
FOR EACH ROW WHEN NEW.meeting_link_id IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'meetpool: double booking refused')
    WHERE EXISTS (
        SELECT 1 FROM bookings o, meetpool_settings s
        WHERE s.id = 1
          AND o.meeting_link_id = NEW.meeting_link_id
          AND o.id <> NEW.id
          AND o.starts_at < datetime(NEW.ends_at, '+' || s.buffer_minutes || ' minutes')
          AND NEW.starts_at < datetime(o.ends_at, '+' || s.buffer_minutes || ' minutes')
    );
END;

CREATE TRIGGER bookings_no_double_booking_update
BEFORE UPDATE OF meeting_link_id, starts_at, ends_at ON bookings
FOR EACH ROW WHEN NEW.meeting_link_id IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'meetpool: double booking refused')
    WHERE EXISTS (
        SELECT 1 FROM bookings o, meetpool_settings s
        WHERE s.id = 1
          AND o.meeting_link_id = NEW.meeting_link_id
          AND o.id <> NEW.id
          AND o.starts_at < datetime(NEW.ends_at, '+' || s.buffer_minutes || ' minutes')
          AND NEW.starts_at < datetime(o.ends_at, '+' || s.buffer_minutes || ' minutes')
    );
END;

CREATE TRIGGER bookings_updated_at
AFTER UPDATE ON bookings
FOR EACH ROW WHEN NEW.updated_at = OLD.updated_at
BEGIN
    UPDATE bookings SET updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now') WHERE id = NEW.id;
END;

CREATE TABLE booking_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    booking_id TEXT NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    meeting_link_id TEXT,
    detail TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
CREATE INDEX booking_events_booking ON booking_events (booking_id, id);

CREATE TABLE payment_notifications (
    dedup_key TEXT PRIMARY KEY,
    booking_id TEXT NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
