#!/usr/bin/env bash
# meetpool's benchmarks in one run (about 5 minutes on 2 cores):
#   1. pgbench -b simple-update at 32 clients, then meetpool's paid-notification
#      flow at 32 clients against `meetpool serve` on the same PostgreSQL; the ratio.
#   2. The same load on SQLite.
#   3. Single-client assignment latency with 10,000 and 1,000,000 bookings stored; the ratio,
#      and EXPLAIN (ANALYZE) of the hot queries.
#   4. Resident memory of `meetpool serve`, idle and under the 32-client load.
# Everything it creates (servers, databases, files) is removed on exit.
#
# Knobs (environment): CLIENTS=32 BOOKINGS=6000 PGBENCH_SECONDS=20 PGBENCH_SCALE=10
#   HISTORY=1000000 LINKS=32 SKIP_BUILD=1 PGHOST/PGPORT/PGUSER.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
CLIENTS=${CLIENTS:-32}
BOOKINGS=${BOOKINGS:-6000}
PGBENCH_SECONDS=${PGBENCH_SECONDS:-20}
PGBENCH_SCALE=${PGBENCH_SCALE:-10}
HISTORY=${HISTORY:-1000000}
LINKS=${LINKS:-32}
PGBENCH=$(command -v pgbench || echo /usr/lib/postgresql/15/bin/pgbench)
PG_URL="postgres://$PGUSER@$PGHOST:$PGPORT"

RUN=$$
DB_PGBENCH=meetpool_bench_pgbench_$RUN
DB_LOAD=meetpool_bench_load_$RUN
DB_HIST=meetpool_bench_hist_$RUN
SQLITE_FILE=/tmp/meetpool-bench-$RUN.db
OUT=$(mktemp -d /tmp/meetpool-bench-out.XXXXXX)
SERVER_PID=

export MEETPOOL_ADMIN_TOKEN=bench-admin-token
export MIDTRANS_SERVER_KEY=SB-Mid-server-bench
export MEETPOOL_LOG_FORMAT=${MEETPOOL_LOG_FORMAT:-text}
export RUST_LOG=${RUST_LOG:-warn}

BIN=target/release/meetpool
BENCH=target/release/meetpool-bench

stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=
}

cleanup() {
    stop_server
    for db in "$DB_PGBENCH" "$DB_LOAD" "$DB_HIST"; do
        dropdb --if-exists "$db" >/dev/null 2>&1 || true
    done
    rm -f "$SQLITE_FILE" "$SQLITE_FILE-wal" "$SQLITE_FILE-shm"
    rm -rf "$OUT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

section() { printf '\n== %s\n' "$*"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
# kB of VmRSS / VmHWM (peak) of a process.
mem() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# start_server DATABASE_URL PORT
start_server() {
    DATABASE_URL="$1" MEETPOOL_LISTEN="127.0.0.1:$2" "$BIN" serve >"$OUT/server-$2.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        if curl -fsS "http://127.0.0.1:$2/healthz" >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "meetpool serve did not start:" >&2
    cat "$OUT/server-$2.log" >&2
    exit 1
}

if [[ -z "${SKIP_BUILD:-}" ]]; then
    section "build (release)"
    cargo build --release -p meetpool -p meetpool-bench 2>&1 | tail -n 1
fi

section "machine"
echo "cores: $(nproc); memory: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "PostgreSQL: $(psql -d postgres -Atc 'SHOW server_version') (synchronous_commit=$(psql -d postgres -Atc 'SHOW synchronous_commit'), shared_buffers=$(psql -d postgres -Atc 'SHOW shared_buffers'))"
echo "clients: $CLIENTS; bookings per load run: $BOOKINGS; links: $LINKS"

# ---------------------------------------------------------------------------
section "1. pgbench -b simple-update -c $CLIENTS -j 2 -T $PGBENCH_SECONDS (scale $PGBENCH_SCALE)"
createdb "$DB_PGBENCH"
"$PGBENCH" -i -q -s "$PGBENCH_SCALE" "$DB_PGBENCH" >"$OUT/pgbench-init.log" 2>&1
"$PGBENCH" -b simple-update -c "$CLIENTS" -j 2 -T "$PGBENCH_SECONDS" "$DB_PGBENCH" >"$OUT/pgbench.log" 2>&1
grep -E '^(latency average|tps)' "$OUT/pgbench.log"
PGBENCH_TPS=$(awk '/^tps/ { print $3; exit }' "$OUT/pgbench.log")
dropdb "$DB_PGBENCH"

section "1. meetpool on PostgreSQL: $CLIENTS clients, $BOOKINGS signed settlement notifications"
createdb "$DB_LOAD"
start_server "$PG_URL/$DB_LOAD" 18181
sleep 1
IDLE_RSS_PG=$(mem "$SERVER_PID" VmRSS)
"$BENCH" load --url http://127.0.0.1:18181 --clients "$CLIENTS" --bookings "$BOOKINGS" \
    --links "$LINKS" --database-url "$PG_URL/$DB_LOAD" --json >"$OUT/load-pg.json"
LOAD_HWM_PG=$(mem "$SERVER_PID" VmHWM)
LOAD_RSS_PG=$(mem "$SERVER_PID" VmRSS)
stop_server
dropdb "$DB_LOAD"
PG_RATE=$(jq -r .rate "$OUT/load-pg.json")
PG_OVERLAPS=$(jq -r .overlaps "$OUT/load-pg.json")

# ---------------------------------------------------------------------------
section "2. meetpool on SQLite: $CLIENTS clients, $BOOKINGS notifications"
start_server "sqlite:$SQLITE_FILE?mode=rwc" 18182
sleep 1
IDLE_RSS_SQLITE=$(mem "$SERVER_PID" VmRSS)
"$BENCH" load --url http://127.0.0.1:18182 --clients "$CLIENTS" --bookings "$BOOKINGS" \
    --links "$LINKS" --database-url "sqlite:$SQLITE_FILE" --json >"$OUT/load-sqlite.json"
LOAD_HWM_SQLITE=$(mem "$SERVER_PID" VmHWM)
stop_server
SQLITE_RATE=$(jq -r .rate "$OUT/load-sqlite.json")
SQLITE_OVERLAPS=$(jq -r .overlaps "$OUT/load-sqlite.json")

# ---------------------------------------------------------------------------
section "3. assignment latency against history size (PostgreSQL, one client)"
createdb "$DB_HIST"
start_server "$PG_URL/$DB_HIST" 18183
"$BENCH" seed-history --database-url "$PG_URL/$DB_HIST" --bookings 10000 --links "$LINKS"
# New bookings go into the odd hours the history leaves free, in its densest
# stretch, so both runs see neighbours on every link; only the table size differs.
"$BENCH" latency --url http://127.0.0.1:18183 --links 0 --odd-hours --per-slot 8 \
    --start-date 2030-01-03 --database-url "$PG_URL/$DB_HIST" --no-explain --json >"$OUT/lat-10k.json"
"$BENCH" seed-history --database-url "$PG_URL/$DB_HIST" --bookings $((HISTORY - 10000)) --links "$LINKS"
"$BENCH" latency --url http://127.0.0.1:18183 --links 0 --odd-hours --per-slot 8 \
    --start-date 2030-01-13 --database-url "$PG_URL/$DB_HIST" --json >"$OUT/lat-1m.json"
stop_server
dropdb "$DB_HIST"
P50_SMALL=$(jq -r .p50_ms "$OUT/lat-10k.json")
P50_LARGE=$(jq -r .p50_ms "$OUT/lat-1m.json")

# ---------------------------------------------------------------------------
section "summary"
printf 'PostgreSQL  pgbench simple-update: %8.1f tps\n' "$PGBENCH_TPS"
printf 'PostgreSQL  meetpool (%s clients):  %8.1f notifications/s, p50 %s ms, p95 %s ms, p99 %s ms, errors %s, overlaps %s\n' \
    "$CLIENTS" "$PG_RATE" "$(jq -r '.p50_ms*100|round/100' "$OUT/load-pg.json")" \
    "$(jq -r '.p95_ms*100|round/100' "$OUT/load-pg.json")" "$(jq -r '.p99_ms*100|round/100' "$OUT/load-pg.json")" \
    "$(jq -r .errors "$OUT/load-pg.json")" "$PG_OVERLAPS"
RATIO_PG=$(ratio "$PG_RATE" "$PGBENCH_TPS")
echo "ratio meetpool / pgbench: ${RATIO_PG}x (target >= 0.5x)"
printf 'SQLite      meetpool (%s clients):  %8.1f notifications/s, p50 %s ms, p95 %s ms, p99 %s ms, errors %s, overlaps %s\n' \
    "$CLIENTS" "$SQLITE_RATE" "$(jq -r '.p50_ms*100|round/100' "$OUT/load-sqlite.json")" \
    "$(jq -r '.p95_ms*100|round/100' "$OUT/load-sqlite.json")" "$(jq -r '.p99_ms*100|round/100' "$OUT/load-sqlite.json")" \
    "$(jq -r .errors "$OUT/load-sqlite.json")" "$SQLITE_OVERLAPS"
printf 'latency p50 with %s bookings stored: %.2f ms; with %s: %.2f ms; ratio %sx (target <= 1.3x)\n' \
    "$(jq -r .stored "$OUT/lat-10k.json")" "$P50_SMALL" "$(jq -r .stored "$OUT/lat-1m.json")" "$P50_LARGE" \
    "$(ratio "$P50_LARGE" "$P50_SMALL")"
echo "memory (PostgreSQL): idle RSS $(mb "$IDLE_RSS_PG") MB (target < 30); peak under load (VmHWM) $(mb "$LOAD_HWM_PG") MB, RSS after $(mb "$LOAD_RSS_PG") MB (target < 100)"
echo "memory (SQLite):     idle RSS $(mb "$IDLE_RSS_SQLITE") MB; peak under load (VmHWM) $(mb "$LOAD_HWM_SQLITE") MB"

FAIL=0
[[ "$PG_OVERLAPS" == 0 && "$SQLITE_OVERLAPS" == 0 ]] || { echo "FAIL: overlapping assignments"; FAIL=1; }
exit $FAIL
