-- A booking's events that are no longer pending, for the delivery log of one
-- booking (the dashboard's booking page, `?booking_id=`); its pending ones are
-- in outbound_events_booking. Two partial indexes rather than one whole one:
-- the claims' probes ask for a booking's pending events, which this index
-- cannot answer, so the planner keeps to outbound_events_booking for them
-- (with one index of every event, it combined it with outbound_events_due,
-- reading the whole due queue once per probe).
CREATE INDEX outbound_events_booking_done ON outbound_events (booking_id, seq) WHERE status <> 'pending';
