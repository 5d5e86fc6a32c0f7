-- Rooms at the provider: what meetpool asks a meeting provider to do to a
-- pooled room (end the conference after a session, check that the room
-- still exists, create a room when the pool runs out), queued durably and
-- carried out after commit, never inside a booking's transaction; and,
-- after a Meet session, who attended it. See the
-- PostgreSQL migration of the same number for the columns.
CREATE TABLE provider_actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('end', 'check', 'create', 'attendance')),
    provider TEXT NOT NULL,
    link_id TEXT,
    booking_id TEXT,
    dedup_key TEXT NOT NULL,
    due_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    attempts INTEGER NOT NULL DEFAULT 0,
    leased_until TEXT,
    last_error TEXT,
    outcome TEXT,
    detail TEXT NOT NULL DEFAULT '{}',
    done_at TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
CREATE UNIQUE INDEX provider_actions_in_flight ON provider_actions (dedup_key) WHERE done_at IS NULL;
CREATE INDEX provider_actions_due ON provider_actions (due_at) WHERE done_at IS NULL;
CREATE INDEX provider_actions_booking ON provider_actions (booking_id) WHERE booking_id IS NOT NULL;
CREATE INDEX provider_actions_link ON provider_actions (link_id, id) WHERE link_id IS NOT NULL;

-- A session's attendance, read from its conference record after it ended,
-- is told to the platform as `booking.attendance`.
CREATE TRIGGER booking_events_attendance_outbound AFTER INSERT ON booking_events FOR EACH ROW
WHEN NEW.kind = 'attendance' AND (SELECT events_enabled FROM meetpool_settings WHERE id = 1)
BEGIN
    INSERT INTO outbound_events (type, booking_id, data)
    SELECT 'booking.attendance', NEW.booking_id,
           json_object('booking', json(v.doc), 'attendance', json(NEW.detail))
    FROM outbound_booking v WHERE v.id = NEW.booking_id;
END;
