-- A booking's events from one statement share one document of the booking:
-- it is built once per changed booking (a payment that gets a link used to
-- build it twice), then each kind of change that happened adds its event,
-- in the same order as before: the payment, the time, then the link.
CREATE OR REPLACE FUNCTION meetpool_bookings_outbound() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT (SELECT events_enabled FROM meetpool_settings WHERE id = 1) THEN
        RETURN NULL;
    END IF;
    WITH moved AS MATERIALIZED (
        SELECT n.id, v.doc, o.payment_status AS old_payment,
               n.payment_status IS DISTINCT FROM o.payment_status AS paid,
               (n.starts_at, n.ends_at, n.session_type_id)
                   IS DISTINCT FROM (o.starts_at, o.ends_at, o.session_type_id) AS timed,
               n.meeting_link_id IS DISTINCT FROM o.meeting_link_id AS linked,
               o.booking_date, o.booking_time, o.starts_at, o.ends_at, o.session_type_id,
               o.meeting_link_id AS old_link, n.meeting_link_id AS new_link
        FROM changed n JOIN prior o ON o.id = n.id JOIN outbound_booking v ON v.id = n.id
        WHERE n.payment_status IS DISTINCT FROM o.payment_status
           OR (n.starts_at, n.ends_at, n.session_type_id)
              IS DISTINCT FROM (o.starts_at, o.ends_at, o.session_type_id)
           OR n.meeting_link_id IS DISTINCT FROM o.meeting_link_id
    )
    INSERT INTO outbound_events (type, booking_id, data)
    SELECT e.type, m.id, e.data
    FROM moved m CROSS JOIN LATERAL (
        SELECT 1, 'booking.payment_changed',
               jsonb_build_object('booking', m.doc, 'previous_payment_status', m.old_payment)
        WHERE m.paid
        UNION ALL
        SELECT 2, 'booking.rescheduled',
               jsonb_build_object('booking', m.doc, 'previous', jsonb_build_object(
                   'booking_date', to_char(m.booking_date, 'YYYY-MM-DD'),
                   'booking_time', to_char(m.booking_time, 'HH24:MI'),
                   'starts_at', to_char(m.starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                   'ends_at', to_char(m.ends_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                   'session_type_id', m.session_type_id))
        WHERE m.timed
        UNION ALL
        SELECT 3,
               CASE WHEN m.old_link IS NULL THEN 'booking.link_assigned'
                    WHEN m.new_link IS NULL THEN 'booking.link_released'
                    ELSE 'booking.link_changed' END,
               jsonb_build_object('booking', m.doc, 'previous_link',
                   (SELECT jsonb_build_object('id', l.id, 'meeting_link', l.meeting_link)
                    FROM meeting_links_pool l WHERE l.id = m.old_link))
        WHERE m.linked
    ) e (kind, type, data)
    ORDER BY m.id, e.kind;
    RETURN NULL;
END
$$;

-- A booking's events that are no longer pending, for the delivery log of one
-- booking (the dashboard's booking page, `?booking_id=`); its pending ones are
-- in outbound_events_booking. Two partial indexes rather than one whole one:
-- the claims' probes ask for a booking's pending events, which this index
-- cannot answer, so the planner keeps to outbound_events_booking for them
-- (with one index of every event, it combined it with outbound_events_due,
-- reading the whole due queue once per probe).
CREATE INDEX outbound_events_booking_done ON outbound_events (booking_id, seq) WHERE status <> 'pending';
