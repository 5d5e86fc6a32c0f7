#!/usr/bin/env bash
# How concurrent assignments for overlapping times are coordinated on
# PostgreSQL, measured under contention: the same load, in one run, with
# hour advisory locks (the default) and with the exclusion constraint alone.
# Many bookings share each slot and there are fewer links than bookings per
# slot, so most notifications race for the last free link of their slot.
# Knobs: CLIENTS=32 BOOKINGS=2000 PER_SLOT=100 LINKS=10 SKIP_BUILD=1
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${CLIENTS:-32}
BOOKINGS=${BOOKINGS:-2000}
PER_SLOT=${PER_SLOT:-100}
LINKS=${LINKS:-10}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
RUN=$$
export MEETPOOL_ADMIN_TOKEN=bench-admin-token MIDTRANS_SERVER_KEY=SB-Mid-server-bench RUST_LOG=${RUST_LOG:-warn}
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -q -p meetpool -p meetpool-bench
SERVER=
cleanup() {
  [ -z "$SERVER" ] || kill "$SERVER" 2>/dev/null || true
  for mode in hour-locks constraint-only; do
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS mpb_contention_${mode//-/_}_$RUN" 2>/dev/null || true
  done
}
trap cleanup EXIT
echo "clients $CLIENTS, bookings $BOOKINGS, $PER_SLOT per slot, $LINKS links"
for mode in hour-locks constraint-only; do
  db=mpb_contention_${mode//-/_}_$RUN
  psql "$PG/postgres" -qc "CREATE DATABASE $db"
  DATABASE_URL="$PG/$db" MEETPOOL_PG_COORDINATION=$mode MEETPOOL_LISTEN=127.0.0.1:18191 \
    target/release/meetpool serve >/tmp/mpb-contention-$mode.log 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18191/readyz >/dev/null && break; sleep 0.1; done
  printf '%-16s ' "$mode"
  target/release/meetpool-bench load --url http://127.0.0.1:18191 --links "$LINKS" --per-slot "$PER_SLOT" \
    --clients "$CLIENTS" --bookings "$BOOKINGS" --database-url "$PG/$db" 2>&1 | grep -E "^notifications:|overlapping" | tr '\n' ' '
  echo
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=
done
