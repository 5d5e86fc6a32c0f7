-- Paid sessions counted by window, kept by the database for every write of
-- a booking (the service's or an operator's SQL), so that the capacity
-- report reads a few hundred counts for a month instead of every session.
--
-- Counts are appended, never updated in place: a payment writes its booking
-- after locking its hours, a cancellation writes first and locks hours
-- afterwards, so a shared counter row locked by both would close a cycle.
-- A window's count is the sum of its rows. The service folds each window's
-- rows into one now and then (meetpool_fold_paid_windows); a fold only
-- deletes rows and inserts their sum, which no writer waits on.
CREATE TABLE paid_window_deltas (
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    sessions bigint NOT NULL,
    -- Of those, paid sessions without a link.
    unlinked bigint NOT NULL,
    -- Written by a fold or the backfill: the window's sum up to then.
    folded boolean NOT NULL DEFAULT false
);
CREATE INDEX paid_window_deltas_window ON paid_window_deltas (starts_at, ends_at);
-- What the next fold has to visit: the windows written since the last one.
CREATE INDEX paid_window_deltas_unfolded ON paid_window_deltas (starts_at, ends_at) WHERE NOT folded;

-- One row per window a statement changed, from the statement's old and new
-- rows: what the old rows counted leaves, what the new rows count comes.
-- A write that leaves paid-ness, link-ness and window alone nets to zero
-- and adds nothing.
CREATE FUNCTION meetpool_paid_windows_delta() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO paid_window_deltas (starts_at, ends_at, sessions, unlinked)
        SELECT starts_at, ends_at, count(*), count(*) FILTER (WHERE meeting_link_id IS NULL)
        FROM added WHERE payment_status = 'paid' GROUP BY starts_at, ends_at;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO paid_window_deltas (starts_at, ends_at, sessions, unlinked)
        SELECT starts_at, ends_at, -count(*), -count(*) FILTER (WHERE meeting_link_id IS NULL)
        FROM removed WHERE payment_status = 'paid' GROUP BY starts_at, ends_at;
    ELSE
        INSERT INTO paid_window_deltas (starts_at, ends_at, sessions, unlinked)
        SELECT starts_at, ends_at, sum(sessions), sum(unlinked) FROM (
            SELECT starts_at, ends_at, -1 AS sessions, -(meeting_link_id IS NULL)::int AS unlinked
            FROM prior WHERE payment_status = 'paid'
            UNION ALL
            SELECT starts_at, ends_at, 1, (meeting_link_id IS NULL)::int
            FROM changed WHERE payment_status = 'paid'
        ) d
        GROUP BY starts_at, ends_at
        HAVING sum(sessions) <> 0 OR sum(unlinked) <> 0;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER bookings_paid_windows_insert AFTER INSERT ON bookings
REFERENCING NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION meetpool_paid_windows_delta();
CREATE TRIGGER bookings_paid_windows_update AFTER UPDATE ON bookings
REFERENCING OLD TABLE AS prior NEW TABLE AS changed
FOR EACH STATEMENT EXECUTE FUNCTION meetpool_paid_windows_delta();
CREATE TRIGGER bookings_paid_windows_delete AFTER DELETE ON bookings
REFERENCING OLD TABLE AS removed
FOR EACH STATEMENT EXECUTE FUNCTION meetpool_paid_windows_delta();

-- TRUNCATE fires no row-level trigger and has no transition table.
CREATE FUNCTION meetpool_paid_windows_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM paid_window_deltas;
    RETURN NULL;
END
$$;
CREATE TRIGGER bookings_paid_windows_truncate AFTER TRUNCATE ON bookings
FOR EACH STATEMENT EXECUTE FUNCTION meetpool_paid_windows_truncate();

-- Folds up to `windows` windows written since the last fold, each into one
-- row holding its sum (none when it sums to nothing), in one statement:
-- rows appended meanwhile are not seen, not deleted, and still count.
-- Returns how many rows it removed. Concurrent folds stay right (a row is
-- deleted once), but one at a time does less work: a fold that finds
-- another under way returns 0.
CREATE FUNCTION meetpool_fold_paid_windows(windows integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    -- Below meetpool_lock_window's keys and its all-hours key.
    IF NOT pg_try_advisory_xact_lock(7885925471869730814) THEN
        RETURN 0;
    END IF;
    WITH due AS (
        SELECT DISTINCT starts_at, ends_at FROM paid_window_deltas WHERE NOT folded
        LIMIT windows
    ), gone AS (
        DELETE FROM paid_window_deltas d USING due
        WHERE d.starts_at = due.starts_at AND d.ends_at = due.ends_at
        RETURNING d.starts_at, d.ends_at, d.sessions, d.unlinked
    ), kept AS (
        INSERT INTO paid_window_deltas (starts_at, ends_at, sessions, unlinked, folded)
        SELECT starts_at, ends_at, sum(sessions), sum(unlinked), true FROM gone
        GROUP BY starts_at, ends_at
        HAVING sum(sessions) <> 0 OR sum(unlinked) <> 0
        -- In the readers' order: a month's windows on few pages.
        ORDER BY starts_at, ends_at
    )
    SELECT count(*) INTO n FROM gone;
    RETURN n;
END
$$;

-- The bookings already stored.
INSERT INTO paid_window_deltas (starts_at, ends_at, sessions, unlinked, folded)
SELECT starts_at, ends_at, count(*), count(*) FILTER (WHERE meeting_link_id IS NULL), true
FROM bookings WHERE payment_status = 'paid'
GROUP BY starts_at, ends_at ORDER BY starts_at, ends_at;
