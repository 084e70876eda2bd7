#!/usr/bin/env bash
# The applications-list benchmark (docs/benchmarks/applications.md): seeds COUNT applications into a
# fresh database, then load-tests the list API and the dashboard's SSR list page with wrk, next to
# an empty endpoint (GET /healthz) measured in the same run as the baseline.
#
#   scripts/bench-applications.sh                                   # release build (make build), SQLite
#   PORTCULLIS_BIN=/path/to/portcullis scripts/bench-applications.sh  # use this binary, skip the build
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432 scripts/bench-applications.sh   # PostgreSQL
#
# Knobs (environment): COUNT=10000 RUNS=3 DURATION=10s WARMUP=3s THREADS=2 CONNECTIONS=8
# SITE_ROOT=target/site RESULTS=<file to keep the per-run lines> KEEP=1 (keep the temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=apps
COUNT=${COUNT:-10000}
source scripts/bench-lib.sh

say "seeding $COUNT applications"
"$PORTCULLIS_BIN" seed applications --count "$COUNT" >&2
bench_start

# --- a cursor from a real page -------------------------------------------------------------------
AUTH="Authorization: Bearer $KEY"
CURSOR=$(curl -sSf -H "$AUTH" "$URL/api/v1/applications?sort=name&limit=50" |
  python3 -c 'import json,sys; p=json.load(sys.stdin); print(p["next_cursor"] or ""); print(p["total"], file=sys.stderr)' 2>"$WORK/total")
[ -n "$CURSOR" ] || die "no next_cursor on the first page sorted by name"
say "applications in the database: $(cat "$WORK/total")"

# --- the endpoints: name|path|header -------------------------------------------------------------
ENDPOINTS=(
  "healthz (baseline)|/healthz|"
  "api list (newest)|/api/v1/applications|$AUTH"
  "api search q+type|/api/v1/applications?q=app%2000123&type=spa|$AUTH"
  "api sort=name+after|/api/v1/applications?sort=name&after=$CURSOR|$AUTH"
  "ssr /applications|/applications|Cookie: $COOKIE"
)
bench_probe
bench_endpoints "$COUNT applications"
