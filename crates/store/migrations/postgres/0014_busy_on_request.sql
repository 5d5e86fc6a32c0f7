-- A write that sets `busy` explicitly asks for it to be computed again with
-- the buffer now in force (changing the settings does so for every coming
-- session, so that the exclusion constraint checks them against the new
-- buffer). Any other write keeps the range as before: an unrelated update
-- after the buffer grew must not collide with a neighbour.
CREATE OR REPLACE FUNCTION bookings_derive() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    settings meetpool_settings%ROWTYPE;
    minutes integer;
BEGIN
    SELECT * INTO settings FROM meetpool_settings WHERE id = 1;

    IF TG_OP = 'UPDATE' THEN
        NEW.updated_at := now();
        -- A moved slot (or changed session type) written without an explicit
        -- window gets its window recomputed, as an insert would.
        IF NEW.starts_at IS NOT DISTINCT FROM OLD.starts_at
           AND (NEW.booking_date IS DISTINCT FROM OLD.booking_date
                OR NEW.booking_time IS DISTINCT FROM OLD.booking_time
                OR NEW.session_type_id IS DISTINCT FROM OLD.session_type_id) THEN
            NEW.starts_at := NULL;
            IF NEW.ends_at IS NOT DISTINCT FROM OLD.ends_at THEN
                NEW.ends_at := NULL;
            END IF;
        END IF;
    END IF;

    IF NEW.starts_at IS NULL THEN
        NEW.starts_at := meetpool_local_instant(NEW.booking_date + NEW.booking_time, settings.timezone);
    END IF;
    IF NEW.ends_at IS NULL THEN
        SELECT duration INTO minutes FROM session_types WHERE id = NEW.session_type_id;
        IF minutes IS NULL THEN
            -- NOT NULL on ends_at would fire before the foreign key and hide
            -- the real problem.
            RAISE EXCEPTION 'meetpool: session type % does not exist', NEW.session_type_id
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'bookings_session_type_id_fkey';
        END IF;
        NEW.ends_at := NEW.starts_at + make_interval(mins => minutes);
    END IF;

    IF NEW.meeting_link_id IS NULL THEN
        NEW.busy := NULL;
    ELSIF TG_OP = 'INSERT'
          OR NEW.meeting_link_id IS DISTINCT FROM OLD.meeting_link_id
          OR NEW.starts_at IS DISTINCT FROM OLD.starts_at
          OR NEW.ends_at IS DISTINCT FROM OLD.ends_at
          OR OLD.busy IS NULL
          OR NEW.busy IS DISTINCT FROM OLD.busy THEN
        NEW.busy := tstzrange(NEW.starts_at, NEW.ends_at + make_interval(mins => settings.buffer_minutes), '[)');
    END IF;
    -- A longer busy range than any before raises the bound; another writer
    -- raising it at once waits here for that one's commit, then raises it
    -- further or not at all.
    IF upper(NEW.busy) - lower(NEW.busy) > settings.longest_busy THEN
        UPDATE meetpool_settings SET longest_busy = upper(NEW.busy) - lower(NEW.busy)
        WHERE id = 1 AND longest_busy < upper(NEW.busy) - lower(NEW.busy);
    END IF;
    RETURN NEW;
END
$$;
