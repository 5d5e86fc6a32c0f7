-- Rooms at the provider: what meetpool asks a meeting provider to do to a
-- pooled room (end the conference after a session, check that the room
-- still exists, create a room when the pool runs out), queued durably and
-- carried out after commit, never inside a booking's transaction; and,
-- after a Meet session, who attended it.
--
-- One row per action. `dedup_key` keeps one action of a kind in flight per
-- room or booking (`end:{booking}`, `check:{link}`, `create`); an end is
-- never queued twice for one booking (the scan that queues ends skips
-- bookings that have one). A replica claims due rows for a lease
-- (`leased_until`): one that dies leaves them to the next claim once the
-- lease runs out. Done rows stay, as the link's and booking's record of
-- what was done at the provider.
CREATE TABLE provider_actions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('end', 'check', 'create', 'attendance')),
    provider text NOT NULL,
    link_id uuid,
    booking_id uuid,
    dedup_key text NOT NULL,
    due_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempts integer NOT NULL DEFAULT 0,
    leased_until timestamptz,
    last_error text,
    -- What became of it once done: `ended`, `exists`, `gone`, `created`, ...
    outcome text,
    -- What the provider answered that a retry needs (a created room's URL).
    detail jsonb NOT NULL DEFAULT '{}',
    done_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE UNIQUE INDEX provider_actions_in_flight ON provider_actions (dedup_key) WHERE done_at IS NULL;
CREATE INDEX provider_actions_due ON provider_actions (due_at) WHERE done_at IS NULL;
CREATE INDEX provider_actions_booking ON provider_actions (booking_id) WHERE booking_id IS NOT NULL;
CREATE INDEX provider_actions_link ON provider_actions (link_id, id) WHERE link_id IS NOT NULL;

-- A session's attendance, read from its conference record after it ended,
-- is told to the platform as `booking.attendance`.
CREATE FUNCTION meetpool_attendance_outbound() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT (SELECT events_enabled FROM meetpool_settings WHERE id = 1) THEN
        RETURN NULL;
    END IF;
    INSERT INTO outbound_events (type, booking_id, data)
    SELECT 'booking.attendance', NEW.booking_id,
           jsonb_build_object('booking', v.doc, 'attendance', NEW.detail)
    FROM outbound_booking v WHERE v.id = NEW.booking_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER booking_events_attendance_outbound AFTER INSERT ON booking_events FOR EACH ROW
WHEN (NEW.kind = 'attendance')
EXECUTE FUNCTION meetpool_attendance_outbound();
