#!/usr/bin/env bash
# meetpool's benchmarks in one run (about 5 minutes on 2 cores):
#   1. Alternating rounds of pgbench -b simple-update at 32 clients and of meetpool's
#      paid-notification flow at 32 clients against `meetpool serve` on the same
#      PostgreSQL; each round's ratio, their median, and CPU time per transaction.
#   2. The same load on SQLite.
#   3. Single-client assignment latency with 10,000 and with 1,000,000 bookings stored,
#      two servers measured in alternating turns; the ratio, and EXPLAIN (ANALYZE) of
#      the hot queries.
#   4. Resident memory of `meetpool serve`, idle and under the 32-client load.
# Everything it creates (servers, databases, files) is removed on exit.
#
# Knobs (environment): CLIENTS=32 BOOKINGS=6000 ROUNDS=3 PGBENCH_SECONDS=10 PGBENCH_SCALE=10
#   HISTORY=1000000 LINKS=32 SKIP_BUILD=1 PGHOST/PGPORT/PGUSER.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
CLIENTS=${CLIENTS:-32}
BOOKINGS=${BOOKINGS:-6000}
PGBENCH_SECONDS=${PGBENCH_SECONDS:-10}
ROUNDS=${ROUNDS:-3}
PGBENCH_SCALE=${PGBENCH_SCALE:-10}
HISTORY=${HISTORY:-1000000}
LINKS=${LINKS:-32}
PGBENCH=$(command -v pgbench || echo /usr/lib/postgresql/15/bin/pgbench)
PG_URL="postgres://$PGUSER@$PGHOST:$PGPORT"

RUN=$$
DB_PGBENCH=meetpool_bench_pgbench_$RUN
DB_LOAD=meetpool_bench_load_$RUN
DB_HIST=meetpool_bench_hist_$RUN
DB_HIST_SMALL=meetpool_bench_hist_small_$RUN
SQLITE_FILE=/tmp/meetpool-bench-$RUN.db
OUT=$(mktemp -d /tmp/meetpool-bench-out.XXXXXX)
SERVER_PID=
SMALL_PID=

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
    SERVER_PID=${SMALL_PID:-}
    stop_server
    for db in "$DB_PGBENCH" "$DB_LOAD" "$DB_HIST" "$DB_HIST_SMALL"; do
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
# CPU ticks (1/100 s) used so far by the PostgreSQL server: the postmaster,
# its exited children (cutime, cstime) and its live ones.
pg_ticks() {
    [[ -n "$POSTMASTER" && -r /proc/$POSTMASTER/stat ]] || return 0
    local total child
    total=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$POSTMASTER/stat")
    for child in $(pgrep -P "$POSTMASTER"); do
        total=$((total + $(awk '{ print $14 + $15 }' "/proc/$child/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}

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
# 1. Alternating rounds of pgbench and of meetpool's load, so that the machine
#    getting faster or slower during the run (it is shared) moves both alike;
#    each round's ratio is printed, and their median is the figure.
section "1. pgbench -b simple-update -c $CLIENTS -j 2 -T $PGBENCH_SECONDS (scale $PGBENCH_SCALE) against meetpool at $CLIENTS clients, $ROUNDS rounds"
createdb "$DB_PGBENCH"
"$PGBENCH" -i -q -s "$PGBENCH_SCALE" "$DB_PGBENCH" >"$OUT/pgbench-init.log" 2>&1
createdb "$DB_LOAD"
start_server "$PG_URL/$DB_LOAD" 18181
sleep 1
IDLE_RSS_PG=$(mem "$SERVER_PID" VmRSS)
POSTMASTER=$(head -n 1 "$(psql -d postgres -Atc 'SHOW data_directory')/postmaster.pid" 2>/dev/null || true)
RATIOS=()
for round in $(seq 1 "$ROUNDS"); do
    before=$(pg_ticks)
    "$PGBENCH" -b simple-update -c "$CLIENTS" -j 2 -T "$PGBENCH_SECONDS" "$DB_PGBENCH" >"$OUT/pgbench-$round.log" 2>&1
    after=$(pg_ticks)
    tps=$(awk '/^tps/ { print $3; exit }' "$OUT/pgbench-$round.log")
    txns=$(awk '/number of transactions actually processed/ { split($6, a, "/"); print a[1] }' "$OUT/pgbench-$round.log")
    pg_us=$(awk -v a="$after" -v b="$before" -v n="$txns" 'BEGIN { if (a != "" && n > 0) printf "%.0f", (a - b) * 10000 / n; else print "?" }')
    # Each round's bookings go to their own days; the links are added once.
    links=$LINKS
    [[ $round -gt 1 ]] && links=0
    "$BENCH" load --url http://127.0.0.1:18181 --clients "$CLIENTS" --bookings "$BOOKINGS" \
        --links "$links" --start-date "$(date -d "2030-01-01 + $(((round - 1) * 400)) days" +%F)" \
        --database-url "$PG_URL/$DB_LOAD" --server-pid "$SERVER_PID" ${POSTMASTER:+--postgres-pid "$POSTMASTER"} \
        --json >"$OUT/load-pg-$round.json"
    rate=$(jq -r .rate "$OUT/load-pg-$round.json")
    r=$(ratio "$rate" "$tps")
    RATIOS+=("$r")
    printf 'round %s: pgbench %.1f tps (database CPU %s us/transaction); meetpool %.1f notifications/s (database %s us, meetpool serve %s us, load generator %s us of CPU each), p50 %s ms, errors %s, overlaps %s; ratio %sx\n' \
        "$round" "$tps" "$pg_us" "$rate" \
        "$(jq -r '.cpu_us.postgres // "?" | if type == "number" then round else . end' "$OUT/load-pg-$round.json")" \
        "$(jq -r '.cpu_us.server | round' "$OUT/load-pg-$round.json")" \
        "$(jq -r '.cpu_us.generator | round' "$OUT/load-pg-$round.json")" \
        "$(jq -r '.p50_ms*100|round/100' "$OUT/load-pg-$round.json")" \
        "$(jq -r .errors "$OUT/load-pg-$round.json")" "$(jq -r .overlaps "$OUT/load-pg-$round.json")" "$r"
done
LOAD_HWM_PG=$(mem "$SERVER_PID" VmHWM)
LOAD_RSS_PG=$(mem "$SERVER_PID" VmRSS)
stop_server
dropdb "$DB_LOAD"
dropdb "$DB_PGBENCH"
PG_OVERLAPS=$(jq -s 'map(.overlaps) | add' "$OUT"/load-pg-*.json)
RATIO_PG=$(printf '%s\n' "${RATIOS[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')

# ---------------------------------------------------------------------------
section "2. meetpool on SQLite: $CLIENTS clients, $BOOKINGS notifications"
start_server "sqlite:$SQLITE_FILE?mode=rwc" 18182
sleep 1
IDLE_RSS_SQLITE=$(mem "$SERVER_PID" VmRSS)
"$BENCH" load --url http://127.0.0.1:18182 --clients "$CLIENTS" --bookings "$BOOKINGS" --server-pid "$SERVER_PID" \
    --links "$LINKS" --database-url "sqlite:$SQLITE_FILE" --json >"$OUT/load-sqlite.json"
LOAD_HWM_SQLITE=$(mem "$SERVER_PID" VmHWM)
stop_server
SQLITE_RATE=$(jq -r .rate "$OUT/load-sqlite.json")
SQLITE_OVERLAPS=$(jq -r .overlaps "$OUT/load-sqlite.json")

# ---------------------------------------------------------------------------
section "3. assignment latency against history size (PostgreSQL, one client)"
# Two databases, one with 10,000 bookings and one with $HISTORY, each with its
# own server; the latency probe alternates between them in turns of 10, so
# that both are measured under the same conditions.
createdb "$DB_HIST_SMALL"
createdb "$DB_HIST"
start_server "$PG_URL/$DB_HIST_SMALL" 18183
SMALL_PID=$SERVER_PID
start_server "$PG_URL/$DB_HIST" 18184
"$BENCH" seed-history --database-url "$PG_URL/$DB_HIST_SMALL" --bookings 10000 --links "$LINKS"
"$BENCH" seed-history --database-url "$PG_URL/$DB_HIST" --bookings "$HISTORY" --links "$LINKS"
# New bookings go into the odd hours the history leaves free, in its densest
# stretch, so both see neighbours on every link; only the table size differs.
"$BENCH" latency --url http://127.0.0.1:18184 --database-url "$PG_URL/$DB_HIST" \
    --baseline-url http://127.0.0.1:18183 --baseline-database-url "$PG_URL/$DB_HIST_SMALL" \
    --links 0 --odd-hours --per-slot 8 --start-date 2030-01-03 --json >"$OUT/lat.json"
stop_server
SERVER_PID=$SMALL_PID
stop_server
dropdb "$DB_HIST"
dropdb "$DB_HIST_SMALL"
P50_SMALL=$(jq -r .baseline.p50_ms "$OUT/lat.json")
P50_LARGE=$(jq -r .p50_ms "$OUT/lat.json")

# ---------------------------------------------------------------------------
section "summary"
echo "PostgreSQL, $ROUNDS alternating rounds of pgbench simple-update and meetpool at $CLIENTS clients:"
echo "    ratio meetpool / pgbench per round: ${RATIOS[*]}; median ${RATIO_PG}x (target >= 0.5x); overlaps $PG_OVERLAPS"
printf 'SQLite      meetpool (%s clients):  %8.1f notifications/s, p50 %s ms, p95 %s ms, p99 %s ms, errors %s, overlaps %s\n' \
    "$CLIENTS" "$SQLITE_RATE" "$(jq -r '.p50_ms*100|round/100' "$OUT/load-sqlite.json")" \
    "$(jq -r '.p95_ms*100|round/100' "$OUT/load-sqlite.json")" "$(jq -r '.p99_ms*100|round/100' "$OUT/load-sqlite.json")" \
    "$(jq -r .errors "$OUT/load-sqlite.json")" "$SQLITE_OVERLAPS"
printf 'latency p50 with %s bookings stored: %.2f ms; with %s: %.2f ms; ratio %sx (target <= 1.3x)\n' \
    "$(jq -r .baseline.stored "$OUT/lat.json")" "$P50_SMALL" "$(jq -r .stored "$OUT/lat.json")" "$P50_LARGE" \
    "$(ratio "$P50_LARGE" "$P50_SMALL")"
echo "memory (PostgreSQL): idle RSS $(mb "$IDLE_RSS_PG") MB (target < 30); peak under load (VmHWM) $(mb "$LOAD_HWM_PG") MB, RSS after $(mb "$LOAD_RSS_PG") MB (target < 100)"
echo "memory (SQLite):     idle RSS $(mb "$IDLE_RSS_SQLITE") MB; peak under load (VmHWM) $(mb "$LOAD_HWM_SQLITE") MB"

FAIL=0
[[ "$PG_OVERLAPS" == 0 && "$SQLITE_OVERLAPS" == 0 ]] || { echo "FAIL: overlapping assignments"; FAIL=1; }
exit $FAIL
