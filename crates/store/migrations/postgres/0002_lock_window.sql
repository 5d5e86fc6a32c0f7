-- The hour locks that serialise assignments for overlapping times, in one
-- place so that every statement that takes them takes the same ones.
--
-- Any two overlapping windows share a UTC hour, so locking every hour a
-- window touches (in ascending order: no cycles) makes assignments for
-- overlapping times run one after the other, each seeing the previous
-- one's commit. Keys live at an offset ("mpool" in ASCII) in the 64-bit
-- space shared with other applications. A window of a week or more takes one
-- exclusive lock instead, so it cannot exhaust the shared lock table; every
-- hour-locking transaction holds that key shared.
CREATE FUNCTION meetpool_lock_window(w tstzrange) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    ns CONSTANT bigint := 7885925471869730816; -- 0x6d706f6f6c000000
    all_hours CONSTANT bigint := 7885925471869730815; -- ns - 1
    first_hour bigint := floor(extract(epoch FROM lower(w)) / 3600)::bigint;
    -- The hour holding the last instant before the (exclusive) end.
    last_hour bigint := greatest(first_hour, ceil(extract(epoch FROM upper(w)) / 3600)::bigint - 1);
BEGIN
    IF last_hour - first_hour >= 168 THEN
        PERFORM pg_advisory_xact_lock(all_hours);
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock_shared(all_hours);
    FOR h IN first_hour..last_hour LOOP
        PERFORM pg_advisory_xact_lock(ns + h);
    END LOOP;
END
$$;
