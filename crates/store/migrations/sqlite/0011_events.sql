-- A booking's events, delivered ones included, for the delivery log of one
-- booking (the dashboard's booking page, `?booking_id=`); the claims find a
-- booking's first pending event by the same index.
DROP INDEX outbound_events_booking;
CREATE INDEX outbound_events_booking ON outbound_events (booking_id, seq);
