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
-- running, a number still missing below `gap_until` never will come. Until
-- then the stream waits for them, from `gap_since` on, but not for long: a
-- transaction left open after writing an event would hold back every event
-- after it.
CREATE TABLE outbound_stream (
    id smallint PRIMARY KEY CHECK (id = 1),
    through bigint NOT NULL,
    gap_until bigint,
    gap_xmax xid8,
    gap_since timestamptz
);
INSERT INTO outbound_stream (id, through) SELECT 1, COALESCE(max(seq), 0) FROM outbound_events;

-- When each batch of the stream was recorded: the delivery time of the
-- queued events numbered after the previous batch's `upto`, up to its own.
CREATE TABLE outbound_batches (
    upto bigint PRIMARY KEY,
    done_at timestamptz NOT NULL
);

-- Numbers the stream stopped waiting for (from `from_seq` to `to_seq`)
-- while a transaction that may still write them ran. An event among them
-- that commits later is found there and made pending, to be delivered by
-- its row; the range goes once no transaction older than `horizon` runs.
CREATE TABLE outbound_late (
    from_seq bigint PRIMARY KEY,
    to_seq bigint NOT NULL,
    horizon xid8 NOT NULL
);

-- Whether the stream has delivered the queued event numbered `seq`: it has
-- passed it, and not by skipping a number it stopped waiting for.
CREATE FUNCTION meetpool_streamed(seq bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT seq <= (SELECT through FROM outbound_stream WHERE id = 1)
       AND NOT EXISTS (SELECT 1 FROM outbound_late l WHERE seq BETWEEN l.from_seq AND l.to_seq)
$$;
