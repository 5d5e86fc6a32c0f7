//! The statements of the PostgreSQL adapter that are more than a line,
//! written out in full. The hot path's are public so that the benchmark can
//! EXPLAIN and replay exactly what runs.

/// A booking's columns as the adapter's `booking_row` reads them, from the booking `b`
/// joined to its link `l`; spelled once, for the statements below.
macro_rules! booking_columns {
    () => {
        "b.id, b.order_id, b.user_id, b.expert_id, b.session_type_id, \
         b.booking_date, b.booking_time, b.price, b.payment_status, b.status, b.meeting_link_id, \
         l.meeting_link, b.starts_at, b.ends_at, b.join_token, b.payment_transaction_id, \
         b.reschedules, b.hold_expires_at, b.created_at, b.updated_at"
    };
}

pub const BOOKING_SELECT: &str = concat!(
    "SELECT ",
    booking_columns!(),
    " FROM bookings b LEFT JOIN meeting_links_pool l ON l.id = b.meeting_link_id"
);

/// The allocation's read ([`crate::Tx::candidates`], also for a group of payments at once):
/// for each wanted window (`$1` the booking looking, `$2` its start), every
/// enabled link with its nearest session on either side of that start, two
/// probes of (meeting_link_id, starts_at) per link however many sessions it
/// has held. `meeting_link_id IS NOT NULL` is implied by the join, but the
/// planner only uses the partial index bookings_link_starts when it is said.
/// Public so the benchmark can EXPLAIN exactly what runs.
pub const CANDIDATES_SQL: &str = "SELECT w.n AS want, l.id, nb.busy_start, nb.busy_end \
             FROM unnest($1::uuid[], $2::timestamptz[]) WITH ORDINALITY AS w(except_id, starts_at, n) \
             CROSS JOIN meeting_links_pool l \
             LEFT JOIN LATERAL ( \
               (SELECT lower(b.busy) AS busy_start, upper(b.busy) AS busy_end FROM bookings b \
                 WHERE b.meeting_link_id = l.id AND b.meeting_link_id IS NOT NULL AND b.id <> w.except_id \
                   AND b.starts_at < w.starts_at \
                 ORDER BY b.starts_at DESC LIMIT 1) \
               UNION ALL \
               (SELECT lower(b.busy), upper(b.busy) FROM bookings b \
                 WHERE b.meeting_link_id = l.id AND b.meeting_link_id IS NOT NULL AND b.id <> w.except_id \
                   AND b.starts_at >= w.starts_at \
                 ORDER BY b.starts_at LIMIT 1) \
             ) nb ON true \
             WHERE l.is_available \
             ORDER BY w.n, l.seq";

/// Locks a booking (`$1` its id) and reads it with its link.
///
/// After waiting for the lock, `FOR UPDATE` re-reads the locked row at its
/// newest version but not the rows joined to it: locking a join would show
/// a link assigned by the previous holder as absent. So the bare row is
/// locked first and the link joined afterwards.
pub const LOCK_BOOKING_SQL: &str = concat!(
    "WITH locked AS (SELECT * FROM bookings WHERE id = $1 FOR UPDATE) \
     SELECT ",
    booking_columns!(),
    " FROM locked b LEFT JOIN meeting_links_pool l ON l.id = b.meeting_link_id"
);

/// [`crate::Tx::lock_orders`] in one statement: `$1` the order ids, `$2` the
/// notification ids, `$3` buffer minutes, `$4` which of them take the hour
/// locks. The bookings are locked in the order of their ids (bare rows
/// first, as in `LOCK_BOOKING_SQL`); the notification ids are claimed;
/// then the windows are locked, long ones (the single exclusive lock) first
/// and the others by their start, so the new hours each window locks come
/// after every hour already held. A claim is the first when its id was
/// inserted here and no earlier item of this call has the same id.
pub const LOCK_ORDERS_SQL: &str = concat!(
    "WITH locked AS (SELECT * FROM bookings WHERE order_id = ANY($1) ORDER BY id FOR UPDATE), \
     i AS (SELECT * FROM unnest($1::text[], $2::text[], $4::bool[]) \
           WITH ORDINALITY AS t(order_id, dedup_key, lock_window, n)), \
     n AS (INSERT INTO payment_notifications (dedup_key, booking_id) \
           SELECT i.dedup_key, locked.id FROM i JOIN locked USING (order_id) \
           ON CONFLICT DO NOTHING RETURNING dedup_key), \
     w AS (SELECT meetpool_lock_window(r) FROM ( \
           SELECT r FROM (SELECT tstzrange(starts_at, ends_at + make_interval(mins => $3), '[)') AS r \
             FROM locked WHERE order_id IN (SELECT order_id FROM i WHERE lock_window)) x \
           ORDER BY ceil(extract(epoch FROM upper(r)) / 3600) - floor(extract(epoch FROM lower(r)) / 3600) > 168 DESC, r \
           OFFSET 0) s) \
     SELECT i.n AS item, \
       i.dedup_key IN (SELECT dedup_key FROM n) \
         AND i.n = (SELECT min(j.n) FROM i j WHERE j.dedup_key = i.dedup_key) AS fresh, \
       (SELECT count(*) FROM w) AS windows, ",
    booking_columns!(),
    " FROM i JOIN locked b USING (order_id) \
     LEFT JOIN meeting_links_pool l ON l.id = b.meeting_link_id \
     ORDER BY i.n"
);

/// [`crate::Tx::write_bookings`] in one statement: `$1` the bookings' ids, and for
/// each, `$2` the new payment status or NULL, `$3` the transaction id or
/// NULL, `$4` whether the link changes, `$5` the new link or NULL, `$10`
/// the booking's new `status` or NULL; `$6`-`$9` the events: the number (from 1) of the change each belongs to, kind,
/// link and detail. One new row version per booking: the payment, the link
/// and the events together (two UPDATEs would write every index of the row
/// twice). Rows come back in the changes' order, numbered `item`.
pub const WRITE_BOOKINGS_SQL: &str = concat!(
    "WITH w AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bool[], $5::uuid[], \
           $10::text[]) WITH ORDINALITY AS w(booking, new_status, new_txn, set_link, new_link, \
           new_booking_status, item)), \
     u AS (UPDATE bookings SET \
         payment_status = COALESCE(w.new_status, payment_status), \
         payment_transaction_id = COALESCE(w.new_txn, payment_transaction_id), \
         status = COALESCE(w.new_booking_status, status), \
         meeting_link_id = CASE WHEN w.set_link THEN w.new_link ELSE meeting_link_id END, \
         assigned_at = CASE WHEN NOT w.set_link THEN assigned_at WHEN w.new_link IS NULL THEN NULL ELSE now() END \
       FROM w WHERE id = w.booking RETURNING bookings.*, w.item), \
     e AS (INSERT INTO booking_events (booking_id, kind, meeting_link_id, detail) \
       SELECT u.id, t.k, t.l, t.d::jsonb FROM u JOIN \
         unnest($6::int8[], $7::text[], $8::uuid[], $9::text[]) WITH ORDINALITY AS t(of_item, k, l, d, n) \
         ON t.of_item = u.item ORDER BY t.n) \
     SELECT b.item, ",
    booking_columns!(),
    " FROM u b LEFT JOIN meeting_links_pool l ON l.id = b.meeting_link_id ORDER BY b.item"
);

/// The statement of [`crate::Tx::lock_orders`], for the benchmark's EXPLAIN.
pub fn notification_lock_sql() -> &'static str {
    LOCK_ORDERS_SQL
}

/// The statement of [`crate::Tx::write_bookings`], for the benchmark's replay.
pub fn write_sql() -> &'static str {
    WRITE_BOOKINGS_SQL
}

pub const LINK_COLUMNS: &str = "id, meeting_link, notes, is_available, created_at, updated_at";

pub const SESSION_TYPE_SELECT: &str =
    "SELECT id, name, duration, price, created_at FROM session_types";

/// The pending bookings due for a payment check (`$1` now, `$2` the first
/// wait in seconds, `$3` every one whatever its schedule, `$4` how many),
/// as a CTE named `due`, each with its checks so far. A booking whose
/// order id is its own id has none (an adopted platform's row without
/// one): there is nothing to ask about. `FOR NO KEY UPDATE
/// SKIP LOCKED` (for a claim only) passes over a booking a notification
/// holds, and keeps out of the way of the foreign keys that reference it.
macro_rules! due_checks {
    ($lock:literal) => {
        concat!(
            "due AS (SELECT b.id, coalesce(c.attempts, 0) AS attempts, \
               coalesce(c.next_at, b.created_at + make_interval(secs => $2)) AS due_at \
             FROM bookings b LEFT JOIN payment_checks c ON c.booking_id = b.id \
             WHERE b.payment_status = 'pending' AND b.starts_at > $1 AND b.order_id <> b.id::text \
               AND (c.leased_until IS NULL OR c.leased_until <= $1) \
               AND ($3 OR coalesce(c.next_at, b.created_at + make_interval(secs => $2)) <= $1) \
             ORDER BY 3 LIMIT $4 ",
            $lock,
            ")"
        )
    };
}

/// [`crate::PaymentChecks::due`].
pub const DUE_CHECKS_SQL: &str = concat!(
    "WITH ",
    due_checks!(""),
    " SELECT due.attempts, ",
    booking_columns!(),
    " FROM due JOIN bookings b ON b.id = due.id \
     LEFT JOIN meeting_links_pool l ON l.id = b.meeting_link_id ORDER BY due.due_at"
);

/// [`crate::PaymentChecks::claim`] (`$5` the lease's end): the upsert
/// decides, on the latest version of each check, which of the due bookings
/// this claim takes, so that two claims racing for one booking never both
/// take it.
pub const CLAIM_CHECKS_SQL: &str = concat!(
    "WITH ",
    due_checks!("FOR NO KEY UPDATE OF b SKIP LOCKED"),
    ", claimed AS (INSERT INTO payment_checks (booking_id, next_at, leased_until) \
       SELECT id, $1, $5 FROM due \
       ON CONFLICT (booking_id) DO UPDATE SET leased_until = excluded.leased_until \
       WHERE (payment_checks.leased_until IS NULL OR payment_checks.leased_until <= $1) \
         AND ($3 OR payment_checks.next_at <= $1) \
       RETURNING booking_id, attempts) \
     SELECT claimed.attempts, ",
    booking_columns!(),
    " FROM claimed JOIN bookings b ON b.id = claimed.booking_id \
     LEFT JOIN meeting_links_pool l ON l.id = b.meeting_link_id ORDER BY b.starts_at"
);
