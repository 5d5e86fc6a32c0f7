-- Outbound events. Every change a platform must hear about is written to
-- `outbound_events` by the database itself, in the transaction that makes
-- the change: a rolled-back change leaves no event and a committed one
-- always has its event, whoever wrote it (the service, an operator's SQL).
-- The service delivers the rows and records each one's fate on it.

-- Whether changes write events: on while the service is configured to
-- deliver them, so that a database without a receiver does not pile up
-- events nobody will take.
ALTER TABLE meetpool_settings ADD COLUMN events_enabled boolean NOT NULL DEFAULT false;
-- An event's `webhook-id` is `evt_{events_prefix}_{seq}`: unique, the same
-- on every attempt, distinct between databases, and without an index of
-- its own (a random id's index cost a third of an event's writes).
ALTER TABLE meetpool_settings ADD COLUMN events_prefix text NOT NULL
    DEFAULT substr(md5(random()::text || clock_timestamp()::text), 1, 10);

CREATE TABLE outbound_events (
    -- Commit order per booking: a booking's changes are serialised by its
    -- row lock, so its events' numbers follow the order they happened in.
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type text NOT NULL,
    booking_id uuid,
    -- Events about a state rather than a change (pool.low) are raised once
    -- per key.
    dedup_key text,
    data jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- A replica delivering the event holds it until then; a replica that
    -- died holding it lets it go when this passes.
    leased_until timestamptz,
    last_error text,
    delivered_at timestamptz
)
-- Room on each page, so that a claim (attempts, lease) updates its row in
-- place (HOT) instead of writing every index again.
WITH (fillfactor = 70);
-- Only undelivered events are indexed beyond their ids: a delivered event
-- leaves the partial indexes, so the log's growth does not slow the claims.
CREATE INDEX outbound_events_due ON outbound_events (next_attempt_at, seq) WHERE status = 'pending';
CREATE INDEX outbound_events_booking ON outbound_events (booking_id, seq) WHERE status = 'pending';
CREATE INDEX outbound_events_failed ON outbound_events (seq) WHERE status = 'failed';
CREATE UNIQUE INDEX outbound_events_dedup ON outbound_events (dedup_key) WHERE dedup_key IS NOT NULL;

-- A booking as events carry it: the same text on both databases.
CREATE VIEW outbound_booking AS
SELECT b.id, jsonb_build_object(
    'id', b.id, 'order_id', b.order_id, 'user_id', b.user_id, 'expert_id', b.expert_id,
    'session_type_id', b.session_type_id,
    'booking_date', to_char(b.booking_date, 'YYYY-MM-DD'),
    'booking_time', to_char(b.booking_time, 'HH24:MI'),
    'starts_at', to_char(b.starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    'ends_at', to_char(b.ends_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    'price', b.price, 'payment_status', b.payment_status, 'status', b.status,
    'meeting_link_id', b.meeting_link_id, 'meeting_link', l.meeting_link,
    'reschedules', b.reschedules, 'join_token', b.join_token) AS doc
FROM bookings b LEFT JOIN meeting_links_pool l ON l.id = b.meeting_link_id;

-- One event per kind of change, in this order: the payment, the time,
-- then the link. Set-based, once per statement (a group of payments is one
-- statement), from the statement's old and new rows.
CREATE FUNCTION meetpool_bookings_outbound() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT (SELECT events_enabled FROM meetpool_settings WHERE id = 1) THEN
        RETURN NULL;
    END IF;
    INSERT INTO outbound_events (type, booking_id, data)
    SELECT e.type, e.booking_id, e.data FROM (
        SELECT n.id AS booking_id, 1 AS kind, 'booking.payment_changed' AS type,
               jsonb_build_object('booking', v.doc, 'previous_payment_status', o.payment_status) AS data
        FROM changed n JOIN prior o ON o.id = n.id JOIN outbound_booking v ON v.id = n.id
        WHERE n.payment_status IS DISTINCT FROM o.payment_status
        UNION ALL
        SELECT n.id, 2, 'booking.rescheduled',
               jsonb_build_object('booking', v.doc, 'previous', jsonb_build_object(
                   'booking_date', to_char(o.booking_date, 'YYYY-MM-DD'),
                   'booking_time', to_char(o.booking_time, 'HH24:MI'),
                   'starts_at', to_char(o.starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                   'ends_at', to_char(o.ends_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                   'session_type_id', o.session_type_id))
        FROM changed n JOIN prior o ON o.id = n.id JOIN outbound_booking v ON v.id = n.id
        WHERE (n.starts_at, n.ends_at, n.session_type_id)
              IS DISTINCT FROM (o.starts_at, o.ends_at, o.session_type_id)
        UNION ALL
        SELECT n.id, 3,
               CASE WHEN o.meeting_link_id IS NULL THEN 'booking.link_assigned'
                    WHEN n.meeting_link_id IS NULL THEN 'booking.link_released'
                    ELSE 'booking.link_changed' END,
               jsonb_build_object('booking', v.doc, 'previous_link',
                   (SELECT jsonb_build_object('id', l.id, 'meeting_link', l.meeting_link)
                    FROM meeting_links_pool l WHERE l.id = o.meeting_link_id))
        FROM changed n JOIN prior o ON o.id = n.id JOIN outbound_booking v ON v.id = n.id
        WHERE n.meeting_link_id IS DISTINCT FROM o.meeting_link_id
    ) e
    ORDER BY e.booking_id, e.kind;
    RETURN NULL;
END
$$;

CREATE TRIGGER bookings_outbound AFTER UPDATE ON bookings
REFERENCING OLD TABLE AS prior NEW TABLE AS changed
FOR EACH STATEMENT EXECUTE FUNCTION meetpool_bookings_outbound();

-- A booking that needed a link and found none free.
CREATE FUNCTION meetpool_exhausted_outbound() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT (SELECT events_enabled FROM meetpool_settings WHERE id = 1) THEN
        RETURN NULL;
    END IF;
    INSERT INTO outbound_events (type, booking_id, data)
    SELECT 'pool.exhausted', NEW.booking_id,
           jsonb_build_object('booking', v.doc, 'enabled_links', NEW.detail -> 'enabled_links')
    FROM outbound_booking v WHERE v.id = NEW.booking_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER booking_events_outbound AFTER INSERT ON booking_events FOR EACH ROW
WHEN (NEW.kind = 'pool_exhausted')
EXECUTE FUNCTION meetpool_exhausted_outbound();
