#!/usr/bin/env bash
# Two or more meetpool servers against pgbench in alternating rounds, to
# compare builds (or settings) in one run on this noisy machine: each round
# runs pgbench -b simple-update, then the 32-client load against each server
# in turn, and prints its rate, ratio to that round's pgbench, p50 and CPU
# time per notification (database, meetpool serve).
#
#   bash bench/ab.sh NAME=BINARY[,VAR=VALUE...] NAME=BINARY ...
#   e.g. git worktree add /tmp/before HEAD~2 &&
#        (cd /tmp/before && CARGO_TARGET_DIR=/tmp/before-target cargo build --release -p meetpool) &&
#        bash bench/ab.sh before=/tmp/before-target/release/meetpool now=target/release/meetpool
#
# With outbound events: RECEIVE_EVENTS=127.0.0.1:18198 makes the load generator
# receive them there (and wait for every one), and each server is given
#   ,MEETPOOL_EVENTS_URL=http://127.0.0.1:18198/hooks,MEETPOOL_EVENTS_SECRET=whsec_...
#
# On SQLite: STORE=sqlite gives each server a database file of its own
# (/tmp/meetpool-ab-N-PID.db); pgbench still runs each round, as the yardstick
# of how fast the machine is at that moment, and "CPU per notification:
# database" is then not measured (SQLite runs inside meetpool serve).
#
# Knobs (environment): ROUNDS=3 CLIENTS=32 BOOKINGS=6000 LINKS=32 PGBENCH_SECONDS=10
#   STORE=postgres|sqlite RECEIVE_EVENTS= SKIP_BUILD=1 (of meetpool-bench) PGHOST/PGPORT/PGUSER.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
[[ $# -ge 1 ]] || { sed -n '2,16p' "$0"; exit 2; }
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
export MEETPOOL_ADMIN_TOKEN=bench-admin-token MIDTRANS_SERVER_KEY=SB-Mid-server-bench RUST_LOG=warn
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-32}
BOOKINGS=${BOOKINGS:-6000}
LINKS=${LINKS:-32}
PGBENCH_SECONDS=${PGBENCH_SECONDS:-10}
STORE=${STORE:-postgres}
[[ $STORE == postgres || $STORE == sqlite ]] || { echo "STORE is postgres or sqlite" >&2; exit 2; }
PGBENCH=$(command -v pgbench || echo /usr/lib/postgresql/15/bin/pgbench)
PG_URL="postgres://$PGUSER@$PGHOST:$PGPORT"
RUN=$$
PORT=18195
SERVER_PID=
DBS=("meetpool_ab_pgbench_$RUN")
cleanup() {
    [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    for db in "${DBS[@]}"; do dropdb --if-exists "$db" >/dev/null 2>&1 || true; done
    rm -f /tmp/meetpool-ab-*-"$RUN".db*
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z "${SKIP_BUILD:-}" ]]; then
    cargo build --release -p meetpool-bench 2>&1 | tail -n 1
fi
createdb "${DBS[0]}"
"$PGBENCH" -i -q -s 10 "${DBS[0]}" >/dev/null 2>&1
POSTMASTER=$(head -n 1 "$(psql -d postgres -Atc 'SHOW data_directory')/postmaster.pid" 2>/dev/null || true)
# The database of the Nth server.
database_url() {
    if [[ $STORE == sqlite ]]; then
        echo "sqlite:/tmp/meetpool-ab-$1-$RUN.db?mode=rwc"
    else
        echo "$PG_URL/meetpool_ab_$1_$RUN"
    fi
}
if [[ $STORE == postgres ]]; then
    for i in $(seq 1 $#); do
        createdb "meetpool_ab_${i}_$RUN"
        DBS+=("meetpool_ab_${i}_$RUN")
    done
fi

for round in $(seq 1 "$ROUNDS"); do
    tps=$("$PGBENCH" -b simple-update -c "$CLIENTS" -j 2 -T "$PGBENCH_SECONDS" "${DBS[0]}" 2>&1 | awk '/^tps/ { print $3; exit }')
    printf 'round %s: pgbench %.0f tps\n' "$round" "$tps"
    i=0
    for spec in "$@"; do
        i=$((i + 1))
        name=${spec%%=*}
        rest=${spec#*=}
        bin=${rest%%,*}
        vars=()
        [[ $rest == *,* ]] && IFS=, read -r -a vars <<<"${rest#*,}"
        url=$(database_url "$i")
        env "${vars[@]}" DATABASE_URL="$url" MEETPOOL_LISTEN="127.0.0.1:$PORT" "$bin" serve >/dev/null 2>&1 &
        SERVER_PID=$!
        for _ in $(seq 1 100); do
            curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
            sleep 0.1
        done
        links=$LINKS
        [[ $round -gt 1 ]] && links=0
        out=$(target/release/meetpool-bench load --url "http://127.0.0.1:$PORT" --clients "$CLIENTS" \
            --bookings "$BOOKINGS" --links "$links" \
            --start-date "$(date -d "2030-01-01 + $(((round - 1) * 400)) days" +%F)" \
            --database-url "$url" --server-pid "$SERVER_PID" \
            $([[ $STORE == postgres && -n $POSTMASTER ]] && echo --postgres-pid "$POSTMASTER") \
            ${RECEIVE_EVENTS:+--receive-events "$RECEIVE_EVENTS"} --json)
        kill "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
        rate=$(jq -r .rate <<<"$out")
        printf '  %-12s %6.0f notifications/s, ratio %.2fx, p50 %.1f ms, CPU per notification: database %s us, meetpool serve %s us; errors %s, overlaps %s\n' \
            "$name" "$rate" "$(awk -v a="$rate" -v b="$tps" 'BEGIN { print a / b }')" "$(jq -r .p50_ms <<<"$out")" \
            "$(jq -r '.cpu_us.postgres // "?" | if type == "number" then round else . end' <<<"$out")" \
            "$(jq -r '.cpu_us.server | round' <<<"$out")" "$(jq -r .errors <<<"$out")" "$(jq -r .overlaps <<<"$out")"
    done
done
