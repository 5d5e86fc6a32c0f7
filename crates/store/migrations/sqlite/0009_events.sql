-- Outbound events. Every change a platform must hear about is written to
-- `outbound_events` by the database itself, in the transaction that makes
-- the change: a rolled-back change leaves no event and a committed one
-- always has its event, whoever wrote it (the service, an operator's SQL).
-- The service delivers the rows and records each one's fate on it.

-- Whether changes write events: on while the service is configured to
-- deliver them.
ALTER TABLE meetpool_settings ADD COLUMN events_enabled INTEGER NOT NULL DEFAULT 0;
-- An event's `webhook-id` is `evt_{events_prefix}_{seq}`: unique, the same
-- on every attempt, distinct between databases, and without an index of
-- its own.
ALTER TABLE meetpool_settings ADD COLUMN events_prefix TEXT NOT NULL DEFAULT '';
UPDATE meetpool_settings SET events_prefix = lower(hex(randomblob(5)));

CREATE TABLE outbound_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    booking_id TEXT,
    dedup_key TEXT,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    leased_until TEXT,
    last_error TEXT,
    delivered_at TEXT
);
-- Only undelivered events are indexed beyond their ids: a delivered event
-- leaves the partial indexes, so the log's growth does not slow the claims.
CREATE INDEX outbound_events_due ON outbound_events (next_attempt_at, seq) WHERE status = 'pending';
CREATE INDEX outbound_events_booking ON outbound_events (booking_id, seq) WHERE status = 'pending';
CREATE INDEX outbound_events_failed ON outbound_events (seq) WHERE status = 'failed';
CREATE UNIQUE INDEX outbound_events_dedup ON outbound_events (dedup_key) WHERE dedup_key IS NOT NULL;

-- A booking as events carry it: the same text on both databases.
CREATE VIEW outbound_booking AS
SELECT b.id, json_object(
    'id', b.id, 'order_id', b.order_id, 'user_id', b.user_id, 'expert_id', b.expert_id,
    'session_type_id', b.session_type_id,
    'booking_date', b.booking_date,
    'booking_time', substr(b.booking_time, 1, 5),
    'starts_at', strftime('%Y-%m-%dT%H:%M:%SZ', b.starts_at),
    'ends_at', strftime('%Y-%m-%dT%H:%M:%SZ', b.ends_at),
    'price', b.price, 'payment_status', b.payment_status, 'status', b.status,
    'meeting_link_id', b.meeting_link_id, 'meeting_link', l.meeting_link,
    'reschedules', b.reschedules, 'join_token', b.join_token) AS doc
FROM bookings b LEFT JOIN meeting_links_pool l ON l.id = b.meeting_link_id;

-- One event per kind of change, in this order: the payment, the time,
-- then the link.
CREATE TRIGGER bookings_outbound AFTER UPDATE ON bookings FOR EACH ROW
WHEN (SELECT events_enabled FROM meetpool_settings WHERE id = 1)
  AND (NEW.payment_status IS NOT OLD.payment_status
       OR NEW.meeting_link_id IS NOT OLD.meeting_link_id
       OR NEW.starts_at IS NOT OLD.starts_at
       OR NEW.ends_at IS NOT OLD.ends_at
       OR NEW.session_type_id IS NOT OLD.session_type_id)
BEGIN
    INSERT INTO outbound_events (type, booking_id, data)
    SELECT 'booking.payment_changed', NEW.id,
           json_object('booking', json(v.doc), 'previous_payment_status', OLD.payment_status)
    FROM outbound_booking v WHERE v.id = NEW.id AND NEW.payment_status IS NOT OLD.payment_status;

    INSERT INTO outbound_events (type, booking_id, data)
    SELECT 'booking.rescheduled', NEW.id,
           json_object('booking', json(v.doc), 'previous', json_object(
               'booking_date', OLD.booking_date,
               'booking_time', substr(OLD.booking_time, 1, 5),
               'starts_at', strftime('%Y-%m-%dT%H:%M:%SZ', OLD.starts_at),
               'ends_at', strftime('%Y-%m-%dT%H:%M:%SZ', OLD.ends_at),
               'session_type_id', OLD.session_type_id))
    FROM outbound_booking v WHERE v.id = NEW.id
      AND (NEW.starts_at IS NOT OLD.starts_at OR NEW.ends_at IS NOT OLD.ends_at
           OR NEW.session_type_id IS NOT OLD.session_type_id);

    INSERT INTO outbound_events (type, booking_id, data)
    SELECT CASE WHEN OLD.meeting_link_id IS NULL THEN 'booking.link_assigned'
                WHEN NEW.meeting_link_id IS NULL THEN 'booking.link_released'
                ELSE 'booking.link_changed' END,
           NEW.id,
           json_object('booking', json(v.doc), 'previous_link',
               json((SELECT json_object('id', l.id, 'meeting_link', l.meeting_link)
                     FROM meeting_links_pool l WHERE l.id = OLD.meeting_link_id)))
    FROM outbound_booking v WHERE v.id = NEW.id AND NEW.meeting_link_id IS NOT OLD.meeting_link_id;
END;

-- A booking that needed a link and found none free.
CREATE TRIGGER booking_events_outbound AFTER INSERT ON booking_events FOR EACH ROW
WHEN NEW.kind = 'pool_exhausted' AND (SELECT events_enabled FROM meetpool_settings WHERE id = 1)
BEGIN
    INSERT INTO outbound_events (type, booking_id, data)
    SELECT 'pool.exhausted', NEW.booking_id,
           json_object('booking', json(v.doc), 'enabled_links', json_extract(NEW.detail, '$.enabled_links'))
    FROM outbound_booking v WHERE v.id = NEW.booking_id;
END;
