#!/usr/bin/env bash
# The database's share of a paid notification, without meetpool's process or
# HTTP: pgbench replays the statements `meetpool serve` runs for a paid
# settlement (printed by `meetpool-bench sql`, so they are the store's own),
# at 32 clients, in alternating rounds with `pgbench -b simple-update` on the
# same server. Each replayed transaction:
#   BEGIN; lock + de-duplicate + hour locks; candidates; write; COMMIT
# plus one lookup of the replay's own plan (which booking, which link) before
# it. The link is planned in advance (no two overlapping bookings share one)
# instead of chosen by best-fit in Rust.
#
# Knobs (environment): CLIENTS=32 SECONDS_PER_RUN=8 ROUNDS=2 PER_CLIENT=2000
#   SKIP_CANDIDATES=1 (leave the candidates statement out)
#   BATCH=k (k notifications to a transaction; rates are per notification)
#   VARIANT=file.sql (run after the migrations, to try a schema change)
#   SKIP_BUILD=1 PGHOST/PGPORT/PGUSER.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
CLIENTS=${CLIENTS:-32}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-8}
ROUNDS=${ROUNDS:-2}
PER_CLIENT=${PER_CLIENT:-2000}
BATCH=${BATCH:-1}
PGBENCH=$(command -v pgbench || echo /usr/lib/postgresql/15/bin/pgbench)
DB=meetpool_replay_$$
DB_PGBENCH=meetpool_replay_pgbench_$$
OUT=$(mktemp -d /tmp/meetpool-replay.XXXXXX)
cleanup() {
    dropdb --if-exists "$DB" >/dev/null 2>&1 || true
    dropdb --if-exists "$DB_PGBENCH" >/dev/null 2>&1 || true
    rm -rf "$OUT"
}
trap cleanup EXIT

if [[ -z "${SKIP_BUILD:-}" ]]; then
    cargo build --release -p meetpool -p meetpool-bench 2>&1 | tail -n 1
fi
BENCH=target/release/meetpool-bench

createdb "$DB"
DATABASE_URL="postgres://$PGUSER@$PGHOST:$PGPORT/$DB" target/release/meetpool migrate >/dev/null
psql -q -v ON_ERROR_STOP=1 -d "$DB" -c "UPDATE meetpool_settings SET timezone = 'UTC', buffer_minutes = 10"
if [[ -n "${VARIANT:-}" ]]; then
    psql -q -v ON_ERROR_STOP=1 -d "$DB" -f "$VARIANT" >/dev/null
fi
# Each client pays its own bookings in order, 4 to an hourly slot, its slots
# far from every other client's; the 4 bookings of a slot get 4 different
# links, and neighbouring slots different groups of 4.
psql -q -v ON_ERROR_STOP=1 -d "$DB" >/dev/null <<SQL
INSERT INTO session_types (id, name, duration, price)
    VALUES ('11111111-1111-1111-1111-111111111111', 'replay', 60, 100000);
INSERT INTO meeting_links_pool (meeting_link)
    SELECT 'https://meet.example.com/replay-' || i FROM generate_series(0, 31) i;
CREATE TABLE replay_plan AS
    SELECT c, n, 'c' || c || '-' || n AS order_id, k / 4 AS slot, ((k / 4) % 8) * 4 + (k % 4) AS link_no
    FROM generate_series(0, $CLIENTS - 1) c, generate_series(1, $PER_CLIENT) n,
         LATERAL (SELECT c * $PER_CLIENT + n - 1 AS k) x;
INSERT INTO bookings (order_id, user_id, expert_id, session_type_id, booking_date, booking_time, price)
    SELECT order_id, 'user-' || c, 'expert-' || c, '11111111-1111-1111-1111-111111111111',
           date '2030-01-01' + (slot / 24)::int, make_time((slot % 24)::int, 0, 0), 100000
    FROM replay_plan;
ALTER TABLE replay_plan ADD COLUMN link uuid;
UPDATE replay_plan p SET link = l.id
    FROM (SELECT id, row_number() OVER (ORDER BY seq) - 1 AS no FROM meeting_links_pool) l
    WHERE l.no = p.link_no;
CREATE UNIQUE INDEX ON replay_plan (c, n);
VACUUM ANALYZE;
SQL

# The store's statements, \$n replaced by pgbench variables.
params() { sed -E "$1" <<<"$2"; }
LOCK=$(params 's/\$1\b/(ARRAY[:p_order]::text[])/g; s/\$2\b/(ARRAY[:p_dedup]::text[])/g; s/\$3\b/10/g; s/\$4\b/(ARRAY[true])/g' "$("$BENCH" sql lock)")
CANDIDATES=$(params 's/\$1\b/(ARRAY[:id]::uuid[])/g; s/\$2\b/(ARRAY[:starts_at]::timestamptz[])/g' "$("$BENCH" sql candidates)")
WRITE=$(params 's/\$1\b/(ARRAY[:id]::uuid[])/g; s/\$2\b/(ARRAY[:p_status]::text[])/g; s/\$3\b/(ARRAY[:p_txn]::text[])/g; s/\$4\b/(ARRAY[true])/g; s/\$5\b/(ARRAY[:p_link]::uuid[])/g; s/\$6\b/'"'"'{1,1}'"'"'/g; s/\$7\b/:p_kinds/g; s/\$8\b/:p_links/g; s/\$9\b/:p_details/g; s/\$10\b/(ARRAY[NULL]::text[])/g' "$("$BENCH" sql write)")
[[ -n "${SKIP_CANDIDATES:-}" ]] && CANDIDATES="SELECT 1"
# The details meetpool writes: the payment event with the notification's body.
BODY='{"order_id":"ORDER","status_code":"200","gross_amount":"100000.00","signature_key":"'$(printf 'f%.0s' $(seq 128))'","transaction_status":"settlement","transaction_id":"TXN","fraud_status":"accept","payment_type":"bank_transfer","transaction_time":"2030-01-01 10:00:00","currency":"IDR"}'
one_notification() {
    cat <<SQL
\\set n :n + 1
SELECT order_id AS p_order, order_id || '|txn-' || n || '|settlement' AS p_dedup, 'paid' AS p_status,
       'txn-' || n AS p_txn, link AS p_link, '{payment,assigned}' AS p_kinds,
       ARRAY[NULL, link]::text AS p_links,
       ARRAY[jsonb_build_object('from', 'pending', 'to', 'paid', 'source', 'midtrans', 'outcome', 'applied',
                                'status_code', '200', 'transaction_status', 'settlement', 'fraud_status', 'accept',
                                'transaction_id', 'txn-' || n, 'body', replace('$BODY', 'ORDER', order_id))::text,
             '{"policy": "best-fit"}']::text AS p_details
FROM replay_plan WHERE c = :client_id AND n = :n
\\gset
$LOCK
\\gset
$CANDIDATES;
$WRITE;
SQL
}
{
    echo 'BEGIN;'
    for _ in $(seq 1 "$BATCH"); do one_notification; done
    echo 'COMMIT;'
} >"$OUT/replay.sql"

createdb "$DB_PGBENCH"
"$PGBENCH" -i -q -s 10 "$DB_PGBENCH" >/dev/null 2>&1
RATIOS=()
for round in $(seq 1 "$ROUNDS"); do
    "$PGBENCH" -b simple-update -c "$CLIENTS" -j 2 -T "$SECONDS_PER_RUN" "$DB_PGBENCH" >"$OUT/pgbench.log" 2>&1
    base=$(awk '/^tps/ { print $3; exit }' "$OUT/pgbench.log")
    # Each round starts past every booking an earlier round paid.
    done_per_client=$(psql -d "$DB" -Atc "SELECT coalesce(max(paid), 0) FROM (SELECT count(*) AS paid FROM bookings WHERE payment_status = 'paid' GROUP BY user_id) c")
    "$PGBENCH" -n -M prepared -c "$CLIENTS" -j 2 -T "$SECONDS_PER_RUN" -D n="$done_per_client" \
        -f "$OUT/replay.sql" "$DB" >"$OUT/replay.log" 2>&1 || { tail -n 20 "$OUT/replay.log"; exit 1; }
    if grep -q 'failed transactions: [1-9]' "$OUT/replay.log"; then
        tail -n 20 "$OUT/replay.log"
        exit 1
    fi
    rate=$(awk -v k="$BATCH" '/^tps/ { print $3 * k; exit }' "$OUT/replay.log")
    r=$(awk -v a="$rate" -v b="$base" 'BEGIN { printf "%.2f", a / b }')
    RATIOS+=("$r")
    printf 'round %s: pgbench simple-update %.0f tps; replayed notification %.0f tps; ratio %sx\n' "$round" "$base" "$rate" "$r"
done
overlaps=$(psql -d "$DB" -Atc "SELECT count(*) FROM bookings a JOIN bookings b ON a.meeting_link_id = b.meeting_link_id AND a.id < b.id AND a.busy && b.busy")
paid=$(psql -d "$DB" -Atc "SELECT count(*) FROM bookings WHERE payment_status = 'paid' AND meeting_link_id IS NOT NULL")
echo "replayed: $paid bookings paid and linked, $overlaps overlapping pairs; ratios ${RATIOS[*]}"
[[ "$overlaps" == 0 ]]
