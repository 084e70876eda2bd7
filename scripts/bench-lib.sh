#!/usr/bin/env bash
# Shared by the benchmark scripts (scripts/bench-*.sh): a release binary, wrk, a fresh database (SQLite,
# or PostgreSQL with DATABASE_URL=postgres://…), an owner and an admin key, the server on a free
# loopback port, a dashboard session, and wrk runs reported as p50/p95/p99 and requests/s with the
# median over runs. Source it after setting NAME; see docs/benchmarks/.
ROOT=$PWD
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-8}
SITE_ROOT=${SITE_ROOT:-$ROOT/target/site}

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# --- tools ---------------------------------------------------------------------------------------
if [ -z "${PORTCULLIS_BIN:-}" ]; then
  say "make build (release binary and site)"
  make build >&2
  PORTCULLIS_BIN=$ROOT/target/release/portcullis
fi
[ -x "$PORTCULLIS_BIN" ] || die "no executable at PORTCULLIS_BIN=$PORTCULLIS_BIN"
[ -f "$SITE_ROOT/pkg/portcullis.js" ] || die "no site at $SITE_ROOT (run make site or make build)"
if ! command -v wrk >/dev/null; then
  say "installing wrk from Debian"
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get install -y wrk >&2 || { $SUDO apt-get update >&2 && $SUDO apt-get install -y wrk >&2; }
fi
for tool in curl python3; do command -v "$tool" >/dev/null || die "$tool is required"; done

# --- a fresh environment, torn down on exit ------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-$NAME.XXXXXX")
SERVER_PID=
PG_DB=
PG_ADMIN=
cleanup() {
  local rc=$?
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ] && [ -f "$WORK/server.log" ]; then
    echo "--- last lines of the server log ---" >&2
    tail -n 30 "$WORK/server.log" >&2 || true
  fi
  if [ -n "$PG_DB" ]; then
    psql "$PG_ADMIN" -qc "drop database if exists $PG_DB with (force)" >/dev/null 2>&1 ||
      echo "warning: could not drop database $PG_DB" >&2
  fi
  if [ "${KEEP:-}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

unset PORTCULLIS_CONFIG
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
# REUSE_DATA_DIR: a data directory (SQLite file and master key) seeded by an earlier run and kept.
export PORTCULLIS_ADDR=127.0.0.1:$PORT PORTCULLIS_PUBLIC_URL=$URL PORTCULLIS_DATA_DIR=${REUSE_DATA_DIR:-$WORK/data}
export PORTCULLIS_SITE_ROOT=$SITE_ROOT LEPTOS_SITE_ROOT=$SITE_ROOT

if [ -n "${REUSE_DATABASE_URL:-}" ]; then
  # A database seeded by an earlier run and kept (seeding 10 M events takes a quarter of an hour):
  # used as it is and not dropped. Its signing keys are sealed with PORTCULLIS_MASTER_KEY, which
  # must be the one it was seeded with.
  [ -n "${PORTCULLIS_MASTER_KEY:-}" ] || die "REUSE_DATABASE_URL needs the PORTCULLIS_MASTER_KEY it was seeded with"
  export DATABASE_URL=$REUSE_DATABASE_URL
  DB="PostgreSQL (kept: ${REUSE_DATABASE_URL##*/})"
elif [[ "${DATABASE_URL:-}" == postgres://* || "${DATABASE_URL:-}" == postgresql://* ]]; then
  command -v psql >/dev/null || die "psql is required for PostgreSQL"
  PG_ADMIN=postgres://postgres@127.0.0.1:5432/postgres
  PG_DB=bench_${NAME}_$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')
  psql "$PG_ADMIN" -qc "create database $PG_DB" >/dev/null || die "cannot create $PG_DB on 127.0.0.1:5432"
  export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$PG_DB
  DB="PostgreSQL ($PG_DB)"
else
  unset DATABASE_URL
  DB="SQLite ($PORTCULLIS_DATA_DIR/portcullis.db)"
fi

# --- data: an owner, an admin key, COUNT applications (before the server starts) -----------------
EMAIL=bench-owner-$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')@example.com
BENCH_PASSWORD=$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')
export BENCH_PASSWORD
say "database: $DB"
"$PORTCULLIS_BIN" staff create --email "$EMAIL" --role owner --password-env BENCH_PASSWORD >&2
KEY=$("$PORTCULLIS_BIN" api-key create --role owner --name bench | tail -n 1)
[[ "$KEY" == pcadm_* ]] || die "unexpected api-key output"
bench_start() {
# --- the server ----------------------------------------------------------------------------------
say "starting $PORTCULLIS_BIN on $URL"
"$PORTCULLIS_BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
# Ready when /readyz answers 200; curl's own retry waits for the port to open. Give up if the
# server exits or after 60 attempts.
for _ in $(seq 60); do
  kill -0 "$SERVER_PID" 2>/dev/null || die "the server exited"
  if curl -sf -o /dev/null --retry 10 --retry-connrefused --retry-delay 1 --max-time 5 "$URL/readyz"; then
    break
  fi
done
curl -sf -o /dev/null "$URL/readyz" || die "the server did not become ready"

# --- a dashboard session: GET /login (pc_csrf cookie + hidden csrf field), POST /auth/login -------
JAR=$WORK/cookies
curl -sSf -c "$JAR" -b "$JAR" -o "$WORK/login.html" "$URL/login"
jar_value() { awk -v n="$1" '$6 == n { v = $7 } END { print v }' "$JAR"; }
CSRF=$(grep -o 'name="csrf"[^>]*value="[^"]*"' "$WORK/login.html" | head -n 1 | sed 's/.*value="//; s/"$//' || true)
[ -n "$CSRF" ] || CSRF=$(jar_value pc_csrf)
[ -n "$CSRF" ] || die "no CSRF token on /login"
STATUS=$(curl -sS -c "$JAR" -b "$JAR" -H "Origin: $URL" -o /dev/null -w '%{http_code} %{redirect_url}' \
  --data-urlencode "email=$EMAIL" --data-urlencode "password=$BENCH_PASSWORD" \
  --data-urlencode "csrf=$CSRF" "$URL/auth/login")
SESSION=$(jar_value pc_session)
[ -n "$SESSION" ] || die "sign-in failed: $STATUS"
COOKIE="pc_session=$SESSION; pc_csrf=$(jar_value pc_csrf)"

AUTH="Authorization: Bearer $KEY"
}

cat >"$WORK/report.lua" <<'LUA'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT p50=%.2f p95=%.2f p99=%.2f rps=%.1f requests=%d non2xx=%d errors=%d\n",
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.requests / (summary.duration / 1e6), summary.requests, e.status,
    e.connect + e.read + e.write + e.timeout))
end
LUA

bench() { # duration name path header
  local args=(-t"$THREADS" -c"$CONNECTIONS" -d"$1" --latency -s "$WORK/report.lua")
  [ -z "$4" ] || args+=(-H "$4")
  wrk "${args[@]}" "$URL$3" | grep '^RESULT ' | sed 's/^RESULT //'
}

# Checks that every endpoint in ENDPOINTS ("name|path|header") answers 200.
bench_probe() {
for e in "${ENDPOINTS[@]}"; do
  IFS='|' read -r name path header <<<"$e"
  args=(-sS -o "$WORK/probe" -w '%{http_code} %{size_download}\n')
  [ -z "$header" ] || args+=(-H "$header")
  read -r code size < <(curl "${args[@]}" "$URL$path")
  printf '    %-22s %s  %s bytes\n' "$name" "$code" "$size" >&2
  [ "$code" = 200 ] || die "$name answered $code, not 200"
done

}

# Warms up, then measures every endpoint in ENDPOINTS RUNS times, and prints the medians.
bench_endpoints() { # description
RESULTS=${RESULTS:-$WORK/results.txt}
: >"$RESULTS"
say "binary $PORTCULLIS_BIN; $1; wrk -t$THREADS -c$CONNECTIONS -d$DURATION; $RUNS runs"
say "$(nproc) cores, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
say "warm-up ($WARMUP per endpoint)"
for e in "${ENDPOINTS[@]}"; do
  IFS='|' read -r name path header <<<"$e"
  bench "$WARMUP" "$name" "$path" "$header" >/dev/null
done
# Each run measures every endpoint in turn, so the baseline shares each run's machine conditions.
for run in $(seq "$RUNS"); do
  pg_maintain
  for e in "${ENDPOINTS[@]}"; do
    IFS='|' read -r name path header <<<"$e"
    line="run=$run endpoint=\"$name\" $(bench "$DURATION" "$name" "$path" "$header")"
    echo "$line"
    echo "$line" >>"$RESULTS"
  done
done
say "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

  bench_medians "$1"
}

# PostgreSQL with autovacuum off (this machine's server is configured for CI that way) never
# gathers statistics or clears dead rows, which a deployment's autovacuum does; without them the
# token benchmark's refresh fell run over run (BENCHMARKS.md, fifth pass). Before each run, do by
# hand what autovacuum would have done.
pg_maintain() {
  [[ "${DATABASE_URL:-}" == postgres* ]] || return 0
  [ "$(psql "$DATABASE_URL" -Atc 'show autovacuum')" = off ] || return 0
  say "autovacuum is off on this PostgreSQL: vacuum analyze before the run"
  psql "$DATABASE_URL" -qc 'vacuum analyze' >/dev/null
}

bench_medians() { # description
echo
echo "Medians over $RUNS runs — $DB, $1, wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
python3 - "$RESULTS" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name = re.search(r'endpoint="([^"]*)"', line).group(1)
    vals = dict(kv.split("=") for kv in re.sub(r'endpoint="[^"]*"', "", line).split())
    rows.setdefault(name, []).append(vals)
print(f"| {'endpoint':<22} | {'p50 ms':>7} | {'p95 ms':>7} | {'p99 ms':>7} | {'req/s':>8} | {'non-2xx':>7} |")
print(f"|{'-'*24}|{'-'*9}|{'-'*9}|{'-'*9}|{'-'*10}|{'-'*9}|")
for name, runs in rows.items():
    med = lambda k: statistics.median(float(r[k]) for r in runs)
    bad = sum(int(r["non2xx"]) + int(r["errors"]) for r in runs)
    print(f"| {name:<22} | {med('p50'):7.2f} | {med('p95'):7.2f} | {med('p99'):7.2f} | {med('rps'):8.1f} | {bad:7d} |")
PY
}
