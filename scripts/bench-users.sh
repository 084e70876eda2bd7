#!/usr/bin/env bash
# The user-pool benchmark (docs/benchmarks/users.md): seeds COUNT users into a fresh database, then
#  1. load-tests user search (email and name prefix) through the API and the dashboard's SSR page,
#     next to an empty endpoint (GET /healthz) as the baseline;
#  2. saturates the CPU with hosted sign-ins (argon2id) and, at the same time, measures /readyz and a
#     dashboard read, to show that hashing runs on a bounded pool and does not starve the server.
#
#   scripts/bench-users.sh                                         # release build (make build), SQLite
#   PORTCULLIS_BIN=/path/to/portcullis scripts/bench-users.sh        # use this binary, skip the build
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432 scripts/bench-users.sh   # PostgreSQL
#
# Knobs (environment): COUNT=100000 RUNS=3 DURATION=10s WARMUP=3s THREADS=2 CONNECTIONS=8
# SIGNIN_DURATION=20s SIGNIN_CONNECTIONS=16 KEEP=1 (keep the temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=users
COUNT=${COUNT:-100000}
SIGNIN_DURATION=${SIGNIN_DURATION:-20s}
SIGNIN_CONNECTIONS=${SIGNIN_CONNECTIONS:-16}
source scripts/bench-lib.sh

say "seeding $COUNT users"
SEED_PASSWORD=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
export SEED_PASSWORD
"$PORTCULLIS_BIN" seed users --count "$COUNT" --password-env SEED_PASSWORD >&2
bench_start

# --- part 1: search ------------------------------------------------------------------------------
ENDPOINTS=(
  "healthz (baseline)|/healthz|"
  "api list (newest)|/api/v1/users|$AUTH"
  "api q=email prefix|/api/v1/users?q=grace.knuth.0123|$AUTH"
  "api q=name prefix|/api/v1/users?q=Barbara%20Liskov%201|$AUTH"
  "ssr /users?q=|/users?q=edsger.dijkstra.04|Cookie: $COOKIE"
)
bench_probe
bench_endpoints "$COUNT users"

# --- part 2: sign-ins saturating the CPU, reads alongside ----------------------------------------
# One seeded user; a hosted sign-in form's double-submit token (pc_csrf cookie + csrf field).
USER_EMAIL=$(curl -sSf -H "$AUTH" "$URL/api/v1/users?q=ada.lovelace&limit=1" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["email"])')
UJAR=$WORK/user-cookies
curl -sSf -c "$UJAR" -o "$WORK/signin.html" "$URL/u/sign-in"
FORM_CSRF=$(grep -o 'name="csrf"[^>]*value="[^"]*"' "$WORK/signin.html" | head -n 1 | sed 's/.*value="//; s/"$//')
[ -n "$FORM_CSRF" ] || die "no CSRF token on /u/sign-in"
BODY="email=$USER_EMAIL&password=$SEED_PASSWORD&csrf=$FORM_CSRF"
WHERE=$(curl -sS -o /dev/null -w '%{redirect_url}' -H "Origin: $URL" -H "Cookie: pc_csrf=$FORM_CSRF" \
  --data "$BODY" "$URL/u/auth/sign-in")
[[ "$WHERE" == */u/continue* ]] || die "a probe sign-in did not succeed: $WHERE"
cat >"$WORK/signin.lua" <<LUA
wrk.method = "POST"
wrk.body = "$BODY"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Cookie"] = "pc_csrf=$FORM_CSRF"
wrk.headers["Origin"] = "$URL"
LUA
cat "$WORK/report.lua" >>"$WORK/signin.lua"

say "sign-ins for $SIGNIN_DURATION with $SIGNIN_CONNECTIONS connections; reads alongside"
say "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
wrk -t2 -c"$SIGNIN_CONNECTIONS" -d"$SIGNIN_DURATION" --latency -s "$WORK/signin.lua" "$URL/u/auth/sign-in" \
  | grep '^RESULT ' | sed 's/^RESULT /sign-in (argon2id)      /' >"$WORK/signin.txt" &
SIGNIN_PID=$!
sleep 3 # let the sign-ins reach saturation before measuring the reads alongside
READ_SECS=$(( ${SIGNIN_DURATION%s} - 6 ))
{
  echo "readyz under load       $(THREADS=1 CONNECTIONS=2 bench "${READ_SECS}s" readyz /readyz "")"
  echo "api search under load   $(THREADS=1 CONNECTIONS=2 bench "${READ_SECS}s" search "/api/v1/users?q=grace.knuth.0123" "$AUTH")"
} >"$WORK/reads.txt"
wait "$SIGNIN_PID"
say "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "Sign-ins saturating the CPU, and reads alongside — $DB, $COUNT users"
cat "$WORK/signin.txt" "$WORK/reads.txt"
