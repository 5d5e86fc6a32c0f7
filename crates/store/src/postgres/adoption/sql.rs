//! The SQL adoption installs beside the migrations: helper functions in the
//! platform's vocabulary, and the triggers that keep both sides in step.
use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{lit, AdoptOptions, AdoptReport, Platform, Vocabulary, DEFAULT_TYPE};

/// The tables and functions adoption adds beside the migrations'.
pub(super) fn helpers_sql(platform: &Platform, report: &AdoptReport) -> String {
    let to_state = |column: &str, values: &dyn Fn(&Vocabulary) -> Option<String>| {
        // A platform value names the state of the same name if there is one,
        // else the first of those mapped to it in this order.
        let order = [
            "pending",
            "paid",
            "refunded",
            "cancelled",
            "expired",
            "failed",
        ];
        let mut by_value: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for v in &report.vocabulary {
            if let Some(value) = values(v) {
                by_value.entry(value).or_default().push(&v.state);
            }
        }
        let mut case = format!("CASE {column}");
        for (value, states) in by_value {
            let state = if states.contains(&value.as_str()) {
                value.clone()
            } else {
                order
                    .iter()
                    .find(|s| states.contains(s))
                    .map(|s| (*s).to_owned())
                    .unwrap_or_default()
            };
            let _ = write!(case, " WHEN {} THEN {}", lit(&value), lit(&state));
        }
        case.push_str(" END");
        case
    };
    let from_state = |values: &dyn Fn(&Vocabulary) -> Option<String>| {
        let mut case = "CASE state".to_owned();
        for v in &report.vocabulary {
            if let Some(value) = values(v) {
                let _ = write!(case, " WHEN {} THEN {}", lit(&v.state), lit(&value));
            }
        }
        case.push_str(" END");
        case
    };
    let ps_state = to_state("ps", &|v| Some(v.payment_status.clone()));
    let st_state = if platform.status.is_some() {
        to_state("st", &|v| v.status.clone())
    } else {
        "NULL::text".to_owned()
    };
    let ps_value = from_state(&|v| Some(v.payment_status.clone()));
    let st_value = from_state(&|v| v.status.clone());
    format!(
        r#"
CREATE TABLE IF NOT EXISTS meetpool.adoption (
    id integer PRIMARY KEY CHECK (id = 1),
    platform_schema text NOT NULL,
    adopted_at timestamptz NOT NULL
);
-- The platform's changes, for the service to carry out with its use cases.
CREATE TABLE IF NOT EXISTS meetpool.platform_changes (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('payment', 'schedule', 'backfill', 'link')),
    booking_id uuid,
    link_id uuid,
    state text,
    booking_date date,
    booking_time text,
    session_type_id uuid,
    enabled boolean,
    claimed_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS platform_changes_booking ON meetpool.platform_changes (booking_id, id);
-- Platform rows meetpool could not take in (a time that does not parse or
-- does not exist, an unknown duration, an order id another booking has),
-- one per row while it stays so: the service raises an alert for each
-- (`alerted` once raised) and lists them; fixing the row adopts it and
-- deletes its problem. Earlier versions kept free-text notes in
-- adoption_problems; adopting again finds those rows again.
DROP TABLE IF EXISTS meetpool.adoption_problems;
CREATE TABLE IF NOT EXISTS meetpool.platform_problems (
    booking_id uuid PRIMARY KEY,
    order_id text,
    reason text NOT NULL CHECK (reason IN ('order_id_taken', 'unreadable_time',
        'nonexistent_time', 'unknown_duration', 'refused')),
    detail text NOT NULL DEFAULT '',
    paid boolean NOT NULL DEFAULT false,
    since timestamptz NOT NULL DEFAULT clock_timestamp(),
    alerted boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS platform_problems_to_alert ON meetpool.platform_problems (since)
    WHERE NOT alerted;

-- A platform's wall-clock time of day, or NULL when it is not one.
CREATE OR REPLACE FUNCTION meetpool.adopt_time(t text) RETURNS time
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN btrim(t) ~ '^([01]?[0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$'
        THEN btrim(t)::time END
$$;

CREATE OR REPLACE FUNCTION meetpool.adopt_earliest(local timestamp, tz text,
    a timestamptz, b timestamptz, c timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT least(CASE WHEN (a AT TIME ZONE tz) = local THEN a END,
                 CASE WHEN (b AT TIME ZONE tz) = local THEN b END,
                 CASE WHEN (c AT TIME ZONE tz) = local THEN c END)
$$;

-- meetpool_local_instant's rule without its error: NULL in a DST gap.
-- The candidates are the local time read with the offsets in force a day
-- either side and with PostgreSQL's own reading; those that read back as
-- the same local time are valid and the earliest wins. One expression,
-- so that the planner inlines it into a bulk copy.
CREATE OR REPLACE FUNCTION meetpool.adopt_instant(local timestamp, tz text) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT meetpool.adopt_earliest(local, tz,
        (local - ((((local AT TIME ZONE tz) - interval '24 hours') AT TIME ZONE tz)
                  - (((local AT TIME ZONE tz) - interval '24 hours') AT TIME ZONE 'UTC'))) AT TIME ZONE 'UTC',
        (local - ((((local AT TIME ZONE tz) + interval '24 hours') AT TIME ZONE tz)
                  - (((local AT TIME ZONE tz) + interval '24 hours') AT TIME ZONE 'UTC'))) AT TIME ZONE 'UTC',
        local AT TIME ZONE tz)
$$;

-- meetpool's state for the platform's payment_status and status.
CREATE OR REPLACE FUNCTION meetpool.platform_state(ps text, st text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN 'refunded' IN ({ps_state}, {st_state}) THEN 'refunded'
        WHEN {st_state} IN ('cancelled', 'expired', 'failed') THEN {st_state}
        WHEN {ps_state} IN ('cancelled', 'expired', 'failed') THEN {ps_state}
        WHEN 'paid' IN ({ps_state}, {st_state}) THEN 'paid'
        ELSE 'pending' END
$$;

CREATE OR REPLACE FUNCTION meetpool.platform_payment_status(state text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT {ps_value} $$;

CREATE OR REPLACE FUNCTION meetpool.platform_status(state text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT {st_value} $$;
"#
    )
}

/// The triggers that keep the two sides in step (see the module's doc).
pub(super) fn sync_sql(platform: &Platform, options: &AdoptOptions) -> String {
    let p = &platform.schema;
    let price = |r: &str| {
        platform.price.as_ref().map_or("0::bigint".to_owned(), |c| {
            format!("round(coalesce({r}.{c}, 0))::bigint")
        })
    };
    let status = |r: &str| {
        if platform.status.is_some() {
            format!("{r}.status::text")
        } else {
            "NULL::text".to_owned()
        }
    };
    let state = |r: &str| {
        format!(
            "meetpool.platform_state({r}.payment_status::text, {})",
            status(r)
        )
    };
    let default_type = if options.default_duration.is_some() {
        format!("{}::uuid", lit(DEFAULT_TYPE))
    } else {
        "NULL::uuid".to_owned()
    };
    let time_out = |e: &str| {
        if platform.time_is_text {
            format!("to_char({e}, 'HH24:MI')")
        } else {
            e.to_owned()
        }
    };
    let price_col = platform.price.clone();
    let url_insert = if platform.meeting_link {
        ", meeting_link"
    } else {
        ""
    };
    let url_value = if platform.meeting_link { ", url" } else { "" };
    let url_set = if platform.meeting_link {
        "meeting_link = url,"
    } else {
        ""
    };
    let url_keep = if platform.meeting_link {
        "NEW.meeting_link := OLD.meeting_link;"
    } else {
        ""
    };
    let url_clear = if platform.meeting_link {
        "NEW.meeting_link := NULL;"
    } else {
        ""
    };
    let paid_at = if platform.paid_at {
        "paid_at = CASE WHEN NEW.payment_status = 'paid' AND OLD.payment_status IS DISTINCT FROM 'paid' \
                        THEN coalesce(paid_at, now()) ELSE paid_at END,"
    } else {
        ""
    };
    let status_set = if platform.status.is_some() {
        "status = CASE WHEN NEW.payment_status IS DISTINCT FROM OLD.payment_status \
                       THEN meetpool.platform_status(NEW.payment_status) ELSE status END,"
    } else {
        ""
    };
    let status_insert = if platform.status.is_some() {
        ", status"
    } else {
        ""
    };
    let status_value = if platform.status.is_some() {
        ", meetpool.platform_status(NEW.payment_status)"
    } else {
        ""
    };
    let (price_insert, price_value) = match &price_col {
        Some(c) => (format!(", {c}"), ", NEW.price".to_owned()),
        None => (String::new(), String::new()),
    };
    let cast = |e: &str, t: &str| format!("({e})::{t}");
    let notes = if platform.link_notes { ", notes" } else { "" };
    let notes_value = if platform.link_notes {
        ", NEW.notes"
    } else {
        ""
    };
    let notes_set = if platform.link_notes {
        ", notes = excluded.notes"
    } else {
        ""
    };
    let notes_mirror = if platform.link_notes {
        "notes = NEW.notes::text,"
    } else {
        ""
    };
    let dur = &platform.duration;
    let order_t = &platform.order_type;
    let user_t = &platform.user_type;
    let expert_t = &platform.expert_type;
    let user_cast = cast("NEW.user_id", user_t);
    let expert_cast = cast("NEW.expert_id", expert_t);
    let order_cast = cast("NEW.order_id", order_t);
    let time_value = time_out("NEW.booking_time");
    let new_price = price("NEW");
    let new_state = state("NEW");
    let old_state = state("OLD");
    let b_price = price("b");
    let b_status = status("b");
    let b_state = state("b");
    format!(
        r#"
-- Marks a write that is one side's echo of the other, for this transaction.
CREATE OR REPLACE FUNCTION meetpool.syncing() RETURNS boolean
LANGUAGE sql STABLE AS $$ SELECT coalesce(current_setting('meetpool.sync', true), '') = 'on' $$;

-- Notes (or updates) the problem of a platform row meetpool cannot take
-- in; raised again when its reason changes or it becomes paid.
CREATE OR REPLACE FUNCTION meetpool.note_platform_problem(booking uuid, why text, words text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = meetpool, pg_catalog AS $$
BEGIN
    INSERT INTO meetpool.platform_problems AS p (booking_id, order_id, reason, detail, paid)
    SELECT b.id, b.order_id::text, why, words, {b_state} = 'paid'
    FROM {p}.bookings b WHERE b.id = booking
    ON CONFLICT (booking_id) DO UPDATE SET order_id = excluded.order_id, reason = excluded.reason,
        detail = excluded.detail, paid = excluded.paid,
        since = CASE WHEN p.reason = excluded.reason THEN p.since ELSE clock_timestamp() END,
        alerted = p.alerted AND p.reason = excluded.reason AND (p.paid OR NOT excluded.paid);
END
$$;

-- A platform booking that meetpool does not hold yet: mirrored now, or
-- noted as a problem (the platform's statement goes on either way).
CREATE OR REPLACE FUNCTION meetpool.mirror_platform_booking(booking uuid) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = meetpool, pg_catalog AS $$
DECLARE
    s text;
    why text;
BEGIN
    SELECT {b_state},
        CASE WHEN meetpool.adopt_time(b.booking_time::text) IS NULL THEN 'unreadable_time'
             WHEN t.id IS NULL THEN 'unknown_duration'
             WHEN meetpool.adopt_instant(b.booking_date + meetpool.adopt_time(b.booking_time::text),
                    (SELECT timezone FROM meetpool.meetpool_settings WHERE id = 1)) IS NULL
                 THEN 'nonexistent_time' END
    INTO s, why
    FROM {p}.bookings b
    LEFT JOIN meetpool.session_types t ON t.id = coalesce(b.session_type_id, {default_type})
    WHERE b.id = booking;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF why IS NOT NULL THEN
        PERFORM meetpool.note_platform_problem(booking, why, '');
        RETURN;
    END IF;
    BEGIN
        INSERT INTO meetpool.bookings (id, order_id, user_id, expert_id, session_type_id,
            booking_date, booking_time, price, payment_status, status)
        SELECT b.id, coalesce(b.order_id::text, b.id::text), coalesce(b.user_id::text, ''),
            coalesce(b.expert_id::text, ''), t.id, b.booking_date,
            meetpool.adopt_time(b.booking_time::text), {b_price},
            CASE WHEN s = 'paid' THEN 'pending' ELSE s END, coalesce({b_status}, 'pending')
        FROM {p}.bookings b
        JOIN meetpool.session_types t ON t.id = coalesce(b.session_type_id, {default_type})
        WHERE b.id = booking;
    EXCEPTION
        WHEN unique_violation THEN
            PERFORM meetpool.note_platform_problem(booking, 'order_id_taken', SQLERRM);
            RETURN;
        WHEN data_exception OR integrity_constraint_violation OR raise_exception THEN
            PERFORM meetpool.note_platform_problem(booking, 'refused', SQLERRM);
            RETURN;
    END;
    DELETE FROM meetpool.platform_problems WHERE booking_id = booking;
    IF s = 'paid' THEN
        INSERT INTO meetpool.platform_changes (kind, booking_id, state) VALUES ('payment', booking, 'paid');
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION meetpool.from_platform_booking() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = meetpool, pg_catalog AS $$
BEGIN
    IF meetpool.syncing() THEN RETURN NULL; END IF;
    PERFORM set_config('meetpool.sync', 'on', true);
    IF TG_OP = 'DELETE' THEN
        DELETE FROM meetpool.bookings WHERE id = OLD.id;
        DELETE FROM meetpool.platform_problems WHERE booking_id = OLD.id;
        INSERT INTO meetpool.platform_changes (kind) VALUES ('backfill');
    ELSIF NOT EXISTS (SELECT 1 FROM meetpool.bookings WHERE id = NEW.id) THEN
        PERFORM meetpool.mirror_platform_booking(NEW.id);
    ELSE
        BEGIN
            UPDATE meetpool.bookings SET order_id = coalesce(NEW.order_id::text, NEW.id::text),
                user_id = coalesce(NEW.user_id::text, ''), expert_id = coalesce(NEW.expert_id::text, ''),
                price = {new_price}
            WHERE id = NEW.id AND (order_id, user_id, expert_id, price) IS DISTINCT FROM
                (coalesce(NEW.order_id::text, NEW.id::text), coalesce(NEW.user_id::text, ''),
                 coalesce(NEW.expert_id::text, ''), {new_price});
            DELETE FROM meetpool.platform_problems WHERE booking_id = NEW.id AND reason = 'order_id_taken';
        EXCEPTION WHEN unique_violation THEN
            PERFORM meetpool.note_platform_problem(NEW.id, 'order_id_taken', SQLERRM);
        END;
        IF (NEW.booking_date, NEW.booking_time::text, NEW.session_type_id)
           IS DISTINCT FROM (OLD.booking_date, OLD.booking_time::text, OLD.session_type_id) THEN
            -- Moved again: the service notes it anew if it cannot follow.
            DELETE FROM meetpool.platform_problems WHERE booking_id = NEW.id AND reason <> 'order_id_taken';
            INSERT INTO meetpool.platform_changes (kind, booking_id, booking_date, booking_time, session_type_id)
            VALUES ('schedule', NEW.id, NEW.booking_date, NEW.booking_time::text,
                    coalesce(NEW.session_type_id, {default_type}));
        END IF;
        IF {new_state} IS DISTINCT FROM {old_state} THEN
            INSERT INTO meetpool.platform_changes (kind, booking_id, state)
            VALUES ('payment', NEW.id, {new_state});
        END IF;
    END IF;
    PERFORM set_config('meetpool.sync', '', true);
    PERFORM pg_notify('meetpool_platform', '');
    RETURN NULL;
END
$$;

-- meetpool alone writes the link columns: the platform's writes to them
-- keep what meetpool wrote.
CREATE OR REPLACE FUNCTION meetpool.keep_platform_link() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = meetpool, pg_catalog AS $$
BEGIN
    IF meetpool.syncing() THEN RETURN NEW; END IF;
    IF TG_OP = 'INSERT' THEN
        NEW.meeting_link_id := NULL; {url_clear}
    ELSE
        NEW.meeting_link_id := OLD.meeting_link_id; {url_keep}
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION meetpool.to_platform_booking() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = meetpool, pg_catalog AS $$
DECLARE
    url text;
BEGIN
    IF meetpool.syncing() THEN RETURN NULL; END IF;
    SELECT meeting_link INTO url FROM meetpool.meeting_links_pool WHERE id = NEW.meeting_link_id;
    PERFORM set_config('meetpool.sync', 'on', true);
    IF TG_OP = 'INSERT' THEN
        INSERT INTO {p}.bookings (id, order_id, user_id, expert_id, session_type_id, booking_date,
            booking_time{price_insert}, payment_status{status_insert}, meeting_link_id{url_insert})
        VALUES (NEW.id, {order_cast}, {user_cast}, {expert_cast},
            NULLIF(NEW.session_type_id, {default_type}), NEW.booking_date, {time_value}{price_value},
            meetpool.platform_payment_status(NEW.payment_status){status_value}, NEW.meeting_link_id{url_value})
        ON CONFLICT (id) DO NOTHING;
    ELSE
        UPDATE {p}.bookings SET
            payment_status = CASE WHEN NEW.payment_status IS DISTINCT FROM OLD.payment_status
                THEN meetpool.platform_payment_status(NEW.payment_status) ELSE payment_status END,
            {status_set}
            {paid_at}
            {url_set}
            meeting_link_id = NEW.meeting_link_id,
            booking_date = CASE WHEN NEW.booking_date IS DISTINCT FROM OLD.booking_date
                THEN NEW.booking_date ELSE booking_date END,
            booking_time = CASE WHEN NEW.booking_time IS DISTINCT FROM OLD.booking_time
                THEN {time_value} ELSE booking_time END
        WHERE id = NEW.id;
    END IF;
    PERFORM set_config('meetpool.sync', '', true);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION meetpool.from_platform_link() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = meetpool, pg_catalog AS $$
BEGIN
    IF meetpool.syncing() THEN RETURN NULL; END IF;
    PERFORM set_config('meetpool.sync', 'on', true);
    IF TG_OP = 'INSERT' THEN
        INSERT INTO meetpool.meeting_links_pool (id, meeting_link, is_available{notes})
        VALUES (NEW.id, NEW.meeting_link, coalesce(NEW.is_available, false){notes_value});
        INSERT INTO meetpool.platform_changes (kind) VALUES ('backfill');
    ELSIF TG_OP = 'DELETE' THEN
        DELETE FROM meetpool.meeting_links_pool WHERE id = OLD.id;
    ELSE
        UPDATE meetpool.meeting_links_pool SET {notes_mirror} meeting_link = NEW.meeting_link
        WHERE id = NEW.id;
        IF NEW.is_available IS DISTINCT FROM OLD.is_available THEN
            INSERT INTO meetpool.platform_changes (kind, link_id, enabled)
            VALUES ('link', NEW.id, coalesce(NEW.is_available, false));
        END IF;
    END IF;
    PERFORM set_config('meetpool.sync', '', true);
    PERFORM pg_notify('meetpool_platform', '');
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION meetpool.to_platform_link() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = meetpool, pg_catalog AS $$
BEGIN
    IF meetpool.syncing() THEN RETURN NULL; END IF;
    PERFORM set_config('meetpool.sync', 'on', true);
    INSERT INTO {p}.meeting_links_pool (id, meeting_link, is_available{notes})
    VALUES (NEW.id, NEW.meeting_link, NEW.is_available{notes_value})
    ON CONFLICT (id) DO UPDATE SET meeting_link = excluded.meeting_link,
        is_available = excluded.is_available{notes_set};
    PERFORM set_config('meetpool.sync', '', true);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION meetpool.from_platform_session_type() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = meetpool, pg_catalog AS $$
BEGIN
    IF meetpool.syncing() THEN RETURN NULL; END IF;
    PERFORM set_config('meetpool.sync', 'on', true);
    IF NEW.{dur} BETWEEN 1 AND 1440 THEN
        INSERT INTO meetpool.session_types (id, name, duration) VALUES (NEW.id, coalesce(NEW.name::text, ''), NEW.{dur})
        ON CONFLICT (id) DO UPDATE SET name = excluded.name, duration = excluded.duration;
    END IF;
    PERFORM set_config('meetpool.sync', '', true);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION meetpool.to_platform_session_type() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = meetpool, pg_catalog AS $$
BEGIN
    IF meetpool.syncing() THEN RETURN NULL; END IF;
    PERFORM set_config('meetpool.sync', 'on', true);
    INSERT INTO {p}.session_types (id, name, {dur}) VALUES (NEW.id, NEW.name, NEW.duration)
    ON CONFLICT (id) DO UPDATE SET name = excluded.name, {dur} = excluded.{dur};
    PERFORM set_config('meetpool.sync', '', true);
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER meetpool_keep_link BEFORE INSERT OR UPDATE ON {p}.bookings
    FOR EACH ROW EXECUTE FUNCTION meetpool.keep_platform_link();
CREATE OR REPLACE TRIGGER meetpool_sync AFTER INSERT OR UPDATE OR DELETE ON {p}.bookings
    FOR EACH ROW EXECUTE FUNCTION meetpool.from_platform_booking();
CREATE OR REPLACE TRIGGER meetpool_sync AFTER INSERT OR UPDATE OR DELETE ON {p}.meeting_links_pool
    FOR EACH ROW EXECUTE FUNCTION meetpool.from_platform_link();
CREATE OR REPLACE TRIGGER meetpool_sync AFTER INSERT OR UPDATE ON {p}.session_types
    FOR EACH ROW EXECUTE FUNCTION meetpool.from_platform_session_type();
CREATE OR REPLACE TRIGGER meetpool_to_platform AFTER INSERT OR UPDATE ON meetpool.bookings
    FOR EACH ROW EXECUTE FUNCTION meetpool.to_platform_booking();
CREATE OR REPLACE TRIGGER meetpool_to_platform AFTER INSERT OR UPDATE ON meetpool.meeting_links_pool
    FOR EACH ROW EXECUTE FUNCTION meetpool.to_platform_link();
CREATE OR REPLACE TRIGGER meetpool_to_platform AFTER INSERT OR UPDATE ON meetpool.session_types
    FOR EACH ROW EXECUTE FUNCTION meetpool.to_platform_session_type();
"#
    )
}
