-- Delivering events without a write per event. A new event is `queued`:
-- it is read, in order of numbers, by the one replica that holds the
-- stream (its row below, locked for a batch), which records a batch of
-- delivered events as one row of `outbound_batches` and by moving
-- `through` past them, instead of locking and updating each event's row.
-- An event the stream has passed and left `queued` was delivered on its
-- first attempt, when its batch was recorded. An event whose first attempt
-- fails, or that must wait behind an earlier event of its booking, becomes
-- `pending` and is delivered as before: claimed by its row, retried on the
-- schedule, marked `delivered` or `failed`.
ALTER TABLE outbound_events DROP CONSTRAINT outbound_events_status_check;
ALTER TABLE outbound_events ADD CONSTRAINT outbound_events_status_check
    CHECK (status IN ('queued', 'pending', 'delivered', 'failed'));
ALTER TABLE outbound_events ALTER COLUMN status SET DEFAULT 'queued';

-- Where the stream stands: every event numbered up to `through` has been
-- dealt with. Numbers are taken in one order and committed in another, so
-- a number missing below a committed one may still come (its transaction
-- is running) or never will (it rolled back). When the stream first finds
-- numbers missing below `gap_until`, it notes `gap_xmax`, the first
-- transaction id not yet given out then: every transaction that took one of
-- those numbers had started by then, so once none older than `gap_xmax` is
-- running, a number still missing below `gap_until` never will come.
CREATE TABLE outbound_stream (
    id smallint PRIMARY KEY CHECK (id = 1),
    through bigint NOT NULL,
    gap_until bigint,
    gap_xmax xid8
);
INSERT INTO outbound_stream (id, through) SELECT 1, COALESCE(max(seq), 0) FROM outbound_events;

-- When each batch of the stream was recorded: the delivery time of the
-- queued events numbered after the previous batch's `upto`, up to its own.
CREATE TABLE outbound_batches (
    upto bigint PRIMARY KEY,
    done_at timestamptz NOT NULL
);
