#!/usr/bin/env bash
# Outbound events under load: the 32-client paid-notification load against
# `meetpool serve` with MEETPOOL_EVENTS_URL pointing at a receiver in the load
# generator, and against the same server without events, in alternating
# rounds on one PostgreSQL (each server on a database of its own). Each round
# prints both rates and their ratio, and, with events, the time from each
# change to its delivery (p50, p99, max), counted over every event of the
# round; the load generator waits for the last event before it reports.
#
#   bash bench/events.sh
#
# Knobs (environment): ROUNDS=3 CLIENTS=32 BOOKINGS=6000 LINKS=32 SKIP_BUILD=1
#   PGHOST/PGPORT/PGUSER.
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
cleanup() {
    [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    for db in "$DB_EVENTS" "$DB_PLAIN"; do dropdb --if-exists "$db" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z "${SKIP_BUILD:-}" ]]; then
    cargo build --release -p meetpool -p meetpool-bench 2>&1 | tail -n 1
fi
createdb "$DB_EVENTS"
createdb "$DB_PLAIN"
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
    target/release/meetpool-bench load --url "http://127.0.0.1:$PORT" --clients "$CLIENTS" \
        --bookings "$BOOKINGS" --links "$links" \
        --start-date "$(date -d "2030-01-01 + $(((round - 1) * 400)) days" +%F)" \
        --database-url "$PG_URL/$db" --server-pid "$SERVER_PID" ${POSTMASTER:+--postgres-pid "$POSTMASTER"} \
        "${receive[@]}" --json
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

ratios=()
for round in $(seq 1 "$ROUNDS"); do
    on=$(load "$DB_EVENTS" "$round" MEETPOOL_EVENTS_URL="http://$RECEIVER/hooks" MEETPOOL_EVENTS_SECRET="$SECRET")
    off=$(load "$DB_PLAIN" "$round")
    ratio=$(awk -v a="$(jq -r .rate <<<"$on")" -v b="$(jq -r .rate <<<"$off")" 'BEGIN { printf "%.3f", a / b }')
    ratios+=("$ratio")
    printf 'round %s: with events %.0f notifications/s, without %.0f: ratio %.2fx; events %s of %s delivered (%s twice), change to delivery p50 %.1f ms, p99 %.1f ms, max %.1f ms, last %.2f s after the load; CPU per notification with/without: database %s/%s us, meetpool serve %s/%s us; errors %s/%s, overlaps %s/%s\n' \
        "$round" "$(jq -r .rate <<<"$on")" "$(jq -r .rate <<<"$off")" "$ratio" \
        "$(jq -r .events.delivered <<<"$on")" "$(jq -r .events.expected <<<"$on")" "$(jq -r .events.duplicates <<<"$on")" \
        "$(jq -r .events.lag_p50_ms <<<"$on")" "$(jq -r .events.lag_p99_ms <<<"$on")" "$(jq -r .events.lag_max_ms <<<"$on")" \
        "$(jq -r .events.drain_seconds <<<"$on")" \
        "$(jq -r '.cpu_us.postgres // "?" | if type == "number" then round else . end' <<<"$on")" \
        "$(jq -r '.cpu_us.postgres // "?" | if type == "number" then round else . end' <<<"$off")" \
        "$(jq -r '.cpu_us.server | round' <<<"$on")" "$(jq -r '.cpu_us.server | round' <<<"$off")" \
        "$(jq -r .errors <<<"$on")" "$(jq -r .errors <<<"$off")" "$(jq -r .overlaps <<<"$on")" "$(jq -r .overlaps <<<"$off")"
done
printf 'median ratio with/without events: %sx\n' "$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')"
