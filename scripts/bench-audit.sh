#!/usr/bin/env bash
# The audit-log benchmark (BENCHMARKS.md, issue 7): seeds COUNT chained events into a fresh database
# (`portcullis seed audit`, progress on stderr), then
#  1. load-tests filtered first pages and a deep "next page" of GET /api/v1/audit-events next to an
#     empty endpoint (GET /healthz) as the baseline;
#  2. times a full NDJSON and CSV export over HTTP (events/s, the body streamed to disk);
#  3. times `portcullis audit verify` over the whole chain (events/s).
#
#   scripts/bench-audit.sh                                          # release build, SQLite
#   PORTCULLIS_BIN=/path/to/portcullis scripts/bench-audit.sh         # this binary, no build
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432 scripts/bench-audit.sh   # PostgreSQL
#
# Knobs (environment): COUNT=1000000 REUSE_DATABASE_URL (a PostgreSQL database seeded before; with
# the PORTCULLIS_MASTER_KEY it was seeded with) or REUSE_DATA_DIR (a SQLite data directory seeded
# before with `PORTCULLIS_DATA_DIR=… portcullis seed audit --count N`) RUNS=3 EXPORT_RUNS=$RUNS (export and verify) DURATION=10s WARMUP=3s THREADS=2 CONNECTIONS=8 KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=audit
COUNT=${COUNT:-1000000}
source scripts/bench-lib.sh

if [ -n "${REUSE_DATABASE_URL:-}${REUSE_DATA_DIR:-}" ]; then
  say "reusing the events already in $DB"
else
  say "seeding $COUNT audit events"
  "$PORTCULLIS_BIN" seed audit --count "$COUNT" >&2
fi
bench_start

HEAD=$(curl -sSf -H "$AUTH" "$URL/api/v1/audit-events?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["seq"])')
MID=$((HEAD / 2))
FROM=$(python3 -c 'import time; print(int((time.time() - 7 * 86400) * 1000))')

# --- part 1: pages -------------------------------------------------------------------------------
ENDPOINTS=(
  "healthz (baseline)|/healthz|"
  "newest page|/api/v1/audit-events?limit=50|$AUTH"
  "category+application|/api/v1/audit-events?limit=50&category=sign_in&application_id=seed-app-02|$AUTH"
  "…next page (deep)|/api/v1/audit-events?limit=50&category=sign_in&application_id=seed-app-02&before=$MID|$AUTH"
  "user|/api/v1/audit-events?limit=50&user_id=seed-user-0042|$AUTH"
  "user next page (deep)|/api/v1/audit-events?limit=50&user_id=seed-user-0042&before=$MID|$AUTH"
  "event+last 7 days|/api/v1/audit-events?limit=50&event=application.updated&from=$FROM|$AUTH"
  "outcome=failure+ip|/api/v1/audit-events?limit=50&outcome=failure&ip=10.0.3.8|$AUTH"
)
bench_probe
bench_endpoints "$COUNT events"

# --- part 2: export (RUNS times each; the median) ---------------------------------------------------
median() { python3 -c 'import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print("%.0f (runs: %s)" % (statistics.median(v), ", ".join("%.0f" % x for x in v)))' "$@"; }
EXPORT_RUNS=${EXPORT_RUNS:-$RUNS}
for format in ndjson csv; do
  rates=()
  for run in $(seq "$EXPORT_RUNS"); do
    start=$(date +%s.%N)
    curl -sSf -H "$AUTH" -o "$WORK/export.$format" "$URL/api/v1/audit-events/export?format=$format"
    secs=$(python3 -c "import time; print(time.time() - $start)")
    lines=$(wc -l <"$WORK/export.$format")
    [ "$format" = csv ] && lines=$((lines - 1))
    rates+=("$(python3 -c "print($lines / $secs)")")
    printf 'export %-6s run %d: %d events in %.1f s, %s\n' "$format" "$run" "$lines" "$secs" \
      "$(du -h "$WORK/export.$format" | cut -f1)"
    rm -f "$WORK/export.$format"
  done
  echo "export $format events/s, median: $(median "${rates[@]}")"
done

# --- part 3: verification (RUNS times; the CLI prints events/s) -------------------------------------
rates=()
for run in $(seq "$EXPORT_RUNS"); do
  out=$("$PORTCULLIS_BIN" audit verify 2>/dev/null | tail -1)
  echo "verify run $run: $out"
  rates+=("$(echo "$out" | sed -n 's/.*(\([0-9]*\) events\/s).*/\1/p')")
done
echo "verify events/s, median: $(median "${rates[@]}")"
