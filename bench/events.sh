#!/usr/bin/env bash
# Outbound events under load: the 32-client paid-notification load against
# `meetpool serve` with MEETPOOL_EVENTS_URL pointing at a receiver in the load
# generator, and against the same server without events, in alternating
# rounds on one PostgreSQL (each server on a database of its own). Each round
# prints both rates and their ratio, and, with events, the time from each
# change to its delivery (p50, p99, max), counted over every event of the
# round; the load generator waits for the last event before it reports.
#
# FLOOR=1 adds two runs to each round, on a server that writes the events
# (`meetpool events on`) but has no MEETPOOL_EVENTS_URL: "written only"
# sends nothing; "floor" has the load generator send each answered
# notification's events to its own receiver itself (--imitate-events),
# signed, of the same size, gathered and sent concurrently as the server
# sends them, with no record kept: the least delivery can cost.
#
#   bash bench/events.sh
#
# Knobs (environment): ROUNDS=3 CLIENTS=32 BOOKINGS=6000 LINKS=32 FLOOR=
#   SKIP_BUILD=1 PGHOST/PGPORT/PGUSER.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
export MEETPOOL_ADMIN_TOKEN=bench-admin-token MIDTRANS_SERVER_KEY=SB-Mid-server-bench RUST_LOG=warn
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-32}
BOOKINGS=${BOOKINGS:-6000}
LINKS=${LINKS:-32}
PG_URL="postgres://$PGUSER@$PGHOST:$PGPORT"
RUN=$$
PORT=18197
RECEIVER=127.0.0.1:18198
SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
SERVER_PID=
DB_EVENTS=meetpool_events_on_$RUN
DB_PLAIN=meetpool_events_off_$RUN
DB_FLOOR=meetpool_events_floor_$RUN
DB_WRITTEN=meetpool_events_written_$RUN
cleanup() {
    [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    for db in "$DB_EVENTS" "$DB_PLAIN" "$DB_FLOOR" "$DB_WRITTEN"; do dropdb --if-exists "$db" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z "${SKIP_BUILD:-}" ]]; then
    cargo build --release -p meetpool -p meetpool-bench 2>&1 | tail -n 1
fi
createdb "$DB_EVENTS"
createdb "$DB_PLAIN"
if [[ -n "${FLOOR:-}" ]]; then
    for db in "$DB_FLOOR" "$DB_WRITTEN"; do
        createdb "$db"
        DATABASE_URL="$PG_URL/$db" target/release/meetpool migrate >/dev/null
        DATABASE_URL="$PG_URL/$db" target/release/meetpool events on >/dev/null
    done
fi
POSTMASTER=$(head -n 1 "$(psql -d postgres -Atc 'SHOW data_directory')/postmaster.pid" 2>/dev/null || true)

# One load against a server on $1, with the server's extra environment after it.
load() {
    local db=$1 round=$2
    shift 2
    env "$@" DATABASE_URL="$PG_URL/$db" MEETPOOL_LISTEN="127.0.0.1:$PORT" target/release/meetpool serve >/dev/null 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    local links=$LINKS receive=()
    [[ $round -gt 1 ]] && links=0
    [[ $db == "$DB_EVENTS" ]] && receive=(--receive-events "$RECEIVER")
    [[ $db == "$DB_FLOOR" ]] && receive=(--receive-events "$RECEIVER" --imitate-events)
    target/release/meetpool-bench load --url "http://127.0.0.1:$PORT" --clients "$CLIENTS" \
        --bookings "$BOOKINGS" --links "$links" \
        --start-date "$(date -d "2030-01-01 + $(((round - 1) * 400)) days" +%F)" \
        --database-url "$PG_URL/$db" --server-pid "$SERVER_PID" ${POSTMASTER:+--postgres-pid "$POSTMASTER"} \
        "${receive[@]}" --json
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

# One run's line: its rate against the run without events, its events, and
# its CPU per notification (database, meetpool serve, the load generator
# with its receiver).
report() {
    local name=$1 run=$2 plain=$3
    local cpu
    cpu=$(jq -r '[.cpu_us.postgres, .cpu_us.server, .cpu_us.generator] | map(if type == "number" then (round | tostring) else "?" end) | join(" / ")' <<<"$run")
    printf '  %-14s %5.0f notifications/s' "$name" "$(jq -r .rate <<<"$run")"
    [[ -n $plain ]] && printf ' (%.2fx)' "$(awk -v a="$(jq -r .rate <<<"$run")" -v b="$(jq -r .rate <<<"$plain")" 'BEGIN { print a / b }')"
    if [[ $(jq -r .events <<<"$run") != null ]]; then
        printf '; events %s of %s delivered (%s twice), change to delivery p50 %.1f ms, p99 %.1f ms, max %.1f ms, last %.2f s after the load' \
            "$(jq -r .events.delivered <<<"$run")" "$(jq -r .events.expected <<<"$run")" "$(jq -r .events.duplicates <<<"$run")" \
            "$(jq -r .events.lag_p50_ms <<<"$run")" "$(jq -r .events.lag_p99_ms <<<"$run")" "$(jq -r .events.lag_max_ms <<<"$run")" \
            "$(jq -r .events.drain_seconds <<<"$run")"
    fi
    printf '; CPU per notification (database / serve / load generator): %s us; errors %s, overlaps %s\n' \
        "$cpu" "$(jq -r .errors <<<"$run")" "$(jq -r .overlaps <<<"$run")"
}

ratios=()
floors=()
for round in $(seq 1 "$ROUNDS"); do
    on=$(load "$DB_EVENTS" "$round" MEETPOOL_EVENTS_URL="http://$RECEIVER/hooks" MEETPOOL_EVENTS_SECRET="$SECRET")
    off=$(load "$DB_PLAIN" "$round")
    ratios+=("$(awk -v a="$(jq -r .rate <<<"$on")" -v b="$(jq -r .rate <<<"$off")" 'BEGIN { printf "%.3f", a / b }')")
    echo "round $round:"
    report "without events" "$off" ""
    report "with events" "$on" "$off"
    if [[ -n "${FLOOR:-}" ]]; then
        written=$(load "$DB_WRITTEN" "$round")
        report "written only" "$written" "$off"
        floor=$(load "$DB_FLOOR" "$round")
        floors+=("$(awk -v a="$(jq -r .rate <<<"$floor")" -v b="$(jq -r .rate <<<"$off")" 'BEGIN { printf "%.3f", a / b }')")
        report "floor" "$floor" "$off"
    fi
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
printf 'median ratio with/without events: %sx\n' "$(median "${ratios[@]}")"
[[ -n "${FLOOR:-}" ]] && printf 'median ratio floor/without events: %sx\n' "$(median "${floors[@]}")"
exit 0
