//! The SQL the SQLite store shares between its reads and its
//! transactions, and the allocation's read.
use jiff::SignedDuration;
use meetpool_domain::{BookingId, LinkCandidate, Window};

use super::rows::{links_from, ts_out};
use crate::Result;

/// Sessions last at most a day and the buffer is at most a day, so a busy
/// window that overlaps `[a, b)` starts after `a - LOOKBACK`.
pub(super) const LOOKBACK: SignedDuration = SignedDuration::from_hours(48);

/// The allocation's read ([`Tx::candidates`]): every enabled link with its
/// nearest session on either side of `?2` (`?1`: the booking to leave out).
/// Public so the benchmark can EXPLAIN exactly what runs.
pub const CANDIDATES_SQL: &str = "WITH near AS ( \
               SELECT l.id, l.seq, \
                 (SELECT b.id FROM bookings b WHERE b.meeting_link_id = l.id AND b.meeting_link_id IS NOT NULL AND b.id <> ?1 \
                    AND b.starts_at < ?2 ORDER BY b.starts_at DESC LIMIT 1) AS before_id, \
                 (SELECT b.id FROM bookings b WHERE b.meeting_link_id = l.id AND b.meeting_link_id IS NOT NULL AND b.id <> ?1 \
                    AND b.starts_at >= ?2 ORDER BY b.starts_at LIMIT 1) AS after_id \
               FROM meeting_links_pool l WHERE l.is_available = 1) \
             SELECT near.id, b.starts_at, \
               datetime(b.ends_at, '+' || s.buffer_minutes || ' minutes') AS busy_end \
             FROM near CROSS JOIN meetpool_settings s \
             LEFT JOIN bookings b ON b.id IN (near.before_id, near.after_id) \
             WHERE s.id = 1 \
             ORDER BY near.seq, b.starts_at";

pub(super) const BOOKING_SELECT: &str = "SELECT b.id, b.order_id, b.user_id, b.expert_id, b.session_type_id, \
    b.booking_date, b.booking_time, b.price, b.payment_status, b.status, b.meeting_link_id, \
    l.meeting_link, b.starts_at, b.ends_at, b.join_token, b.payment_transaction_id, b.reschedules, b.hold_expires_at, b.created_at, b.updated_at \
    FROM bookings b LEFT JOIN meeting_links_pool l ON l.id = b.meeting_link_id";

pub(super) const LINK_SELECT: &str =
    "SELECT id, meeting_link, notes, is_available, created_at, updated_at FROM meeting_links_pool";

/// [`CANDIDATES_SQL`] for one wanted window, on any connection.
pub(super) async fn candidates_for(
    conn: &mut sqlx::SqliteConnection,
    want: Window,
    except: BookingId,
) -> Result<Vec<LinkCandidate>> {
    // SQLite has no LATERAL: each neighbour is found by a correlated
    // probe of (meeting_link_id, starts_at), then joined back.
    let rows = sqlx::query(CANDIDATES_SQL)
        .bind(except.to_string())
        .bind(ts_out(want.start))
        .fetch_all(conn)
        .await?;
    links_from(&rows)
}
