#!/usr/bin/env bash
# The token-endpoint benchmark (BENCHMARKS.md): client_credentials, refresh_token (with rotation) and
# the JWKS, each at saturation and client_credentials also paced at 80 % of its saturated rate,
# next to an empty endpoint (GET /healthz) measured in the same run as the baseline.
#
#   scripts/bench-tokens.sh                                            # release build, SQLite
#   PORTCULLIS_BIN=/path/to/portcullis scripts/bench-tokens.sh           # this binary, no build
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432 scripts/bench-tokens.sh   # PostgreSQL
#
# Knobs (environment): RUNS=3 DURATION=10s WARMUP=3s THREADS=2 CONNECTIONS=32 KEEP=1, and with oha
# installed RATES="4000 6000" for fixed constant-rate runs (each next to /healthz at that rate).
# wrk runs on the same 2 cores as the server (the targets are "load generator included").
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=tokens
CONNECTIONS=${CONNECTIONS:-32}
source scripts/bench-lib.sh
bench_start

api() { # method path [json]
  curl -sSf -X "$1" -H "$AUTH" -H 'content-type: application/json' ${3:+--data "$3"} "$URL$2"
}
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# --- clients: a machine client with a secret, an SPA and a user for refresh tokens ----------------
M2M_ID=$(api POST /api/v1/applications '{"name":"bench m2m","type":"m2m","allowed_scopes":["bench:read"]}' | json '["id"]')
M2M_CLIENT=$(api GET "/api/v1/applications/$M2M_ID" | json '["client_id"]')
M2M_SECRET=$(api POST "/api/v1/applications/$M2M_ID/secrets" '{}' | json '["secret"]')
SPA_CLIENT=$(api POST /api/v1/applications \
  '{"name":"bench spa","type":"spa","redirect_uris":["https://bench.example/cb"]}' | json '["client_id"]')
api POST /api/v1/users "{\"email\":\"bench-user@example.com\",\"name\":\"Bench\",\"password\":\"$BENCH_PASSWORD\"}" >/dev/null
BASIC=$(printf '%s:%s' "$M2M_CLIENT" "$M2M_SECRET" | base64 -w0)

# --- refresh tokens: one sign-in, then one code flow per connection (the session is shared). Each
# refresh run starts from fresh chains: the previous run's tokens have rotated away.
cat >"$WORK/mint.py" <<'PY'
import base64, hashlib, http.cookiejar, json, re, secrets, sys, urllib.parse, urllib.request
url, client_id, password, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k): return None
jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
def go(path, data=None):
    req = urllib.request.Request(url + path if path.startswith("/") else path,
                                 data=urllib.parse.urlencode(data).encode() if data else None,
                                 headers={"Origin": url})
    try:
        r = opener.open(req); return r.status, r.headers.get("location", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("location", ""), e.read().decode()
def code_flow():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    q = urllib.parse.urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": "https://bench.example/cb",
        "scope": "openid offline_access", "state": "s", "code_challenge": challenge, "code_challenge_method": "S256"})
    status, to, _ = go("/oauth/authorize?" + q)
    if to.startswith("/u/sign-in"):
        _, _, page = go(to)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        request = urllib.parse.parse_qs(urllib.parse.urlparse(to).query)["request"][0]
        _, to, _ = go("/u/auth/sign-in", {"client_id": client_id, "request": request, "email": "bench-user@example.com",
                                          "password": password, "csrf": csrf})
        _, to, _ = go(to)
    code = urllib.parse.parse_qs(urllib.parse.urlparse(to).query)["code"][0]
    _, _, body = go("/oauth/token", {"grant_type": "authorization_code", "code": code, "client_id": client_id,
                                     "redirect_uri": "https://bench.example/cb", "code_verifier": verifier})
    return json.loads(body)["refresh_token"]
for _ in range(n):
    print(code_flow())
PY
# One spare chain per wrk thread: wrk asks each thread for one request more than it sends.
CHAINS=$((CONNECTIONS + THREADS))
mint() {
  python3 "$WORK/mint.py" "$URL" "$SPA_CLIENT" "$BENCH_PASSWORD" "$CHAINS" >"$WORK/refresh-tokens"
  [ "$(wc -l <"$WORK/refresh-tokens")" -eq "$CHAINS" ] || die "could not mint refresh tokens"
}
say "minting $CHAINS refresh tokens per refresh run (one sign-in, $CHAINS code flows)"
mint


# --- wrk scripts ---------------------------------------------------------------------------------
REPORT=$(cat "$WORK/report.lua")
cat >"$WORK/cc.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=bench%3Aread"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $BASIC"
-- PACE_MS > 0: each connection waits that long between requests (a paced, not saturating, load).
local pace = tonumber(os.getenv("PACE_MS") or "0")
function delay() return pace end
$REPORT
LUA
# Refresh with rotation: each connection keeps its own token chain; a response's new refresh token
# is the one its next request uses (a reused token would revoke the family and count as non-2xx).
cat >"$WORK/refresh.lua" <<LUA
local counter = 0
local threads = {}
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  pool = {}
  local i = 0
  for line in io.lines("$WORK/refresh-tokens") do
    if i % $THREADS == tid then table.insert(pool, line) end
    i = i + 1
  end
end
function request()
  local token = table.remove(pool, 1) or "exhausted"
  last = token
  return wrk.format("POST", nil, {["Content-Type"] = "application/x-www-form-urlencoded"},
    "grant_type=refresh_token&client_id=$SPA_CLIENT&refresh_token=" .. token)
end
local shown = 0
function response(status, headers, body)
  local token = body:match('"refresh_token":"([^"]+)"')
  if token then table.insert(pool, token)
  elseif shown < 2 then shown = shown + 1; io.stderr:write("refresh answered ", status, " for ", (last or "?"), ": ", body, "\n") end
end
$REPORT
LUA

run_wrk() { # duration script path [env]
  env ${4:-} wrk -t"$THREADS" -c"$CONNECTIONS" -d"$1" --latency -s "$2" "$URL$3" | grep '^RESULT ' | sed 's/^RESULT //'
}

# oha (crates.io: cargo install oha) drives constant-rate runs at 80 % when it is installed.
OHA=$(command -v oha || true)
run_oha() { # what (cc | healthz) [rate]: constant arrival rate; no rate: as fast as it goes
  local request
  if [ "$1" = cc ]; then
    request=(-m POST -T application/x-www-form-urlencoded -H "Authorization: Basic $BASIC"
      -d "grant_type=client_credentials&scope=bench%3Aread" "$URL/oauth/token")
  else
    request=("$URL/healthz")
  fi
  "$OHA" -z "$DURATION" ${2:+-q "$2" --latency-correction} -c "$CONNECTIONS" --no-tui --output-format json \
    "${request[@]}" |
    python3 -c '
import json, sys
d = json.load(sys.stdin); p = d["latencyPercentiles"]; s = d["summary"]
codes = d.get("statusCodeDistribution", {}); ok = sum(v for k, v in codes.items() if k.startswith("2"))
total = sum(codes.values()); errors = sum(d.get("errorDistribution", {}).values())
print("p50=%.2f p95=%.2f p99=%.2f rps=%.1f requests=%d non2xx=%d errors=%d" % (
    p["p50"] * 1000, p["p95"] * 1000, p["p99"] * 1000, s["requestsPerSec"], total, total - ok, errors))'
}
# Open loop at a constant arrival rate (oha -q, with latency correction: a request's time counts
# from when it was due, so a stall is not hidden by the generator waiting). oha spends more CPU per
# request than wrk on these shared cores, so its own saturated rate is measured first and the
# constant rate is 80 % of that. The same for /healthz gives the protocol's floor on these cores.
oha_pair() { # label what
  [ -n "$OHA" ] || return 0
  local line sat
  line="run=$run endpoint=\"$1 (oha)\" $(run_oha "$2")"
  echo "$line"; echo "$line" >>"$RESULTS"
  sat=$(sed -n 's/.*rps=\([0-9.]*\).*/\1/p' <<<"$line")
  line="run=$run endpoint=\"$1 @80% constant rate (oha)\" $(run_oha "$2" "$(python3 -c "print(round(0.8 * $sat))")")"
  echo "$line"; echo "$line" >>"$RESULTS"
}
RESULTS=$WORK/results.txt
: >"$RESULTS"
say "binary $PORTCULLIS_BIN; wrk -t$THREADS -c$CONNECTIONS -d$DURATION; $RUNS runs; $(nproc) cores"
say "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
say "warm-up"
run_wrk "$WARMUP" "$WORK/report.lua" /healthz >/dev/null
run_wrk "$WARMUP" "$WORK/cc.lua" /oauth/token >/dev/null
for run in $(seq "$RUNS"); do
  pg_maintain
  ENDPOINTS=${ENDPOINTS:-"healthz (baseline)|report.lua|/healthz;jwks|report.lua|/.well-known/jwks.json;client_credentials|cc.lua|/oauth/token;refresh_token (rotating)|refresh.lua|/oauth/token"}
  IFS=';' read -ra endpoints <<<"$ENDPOINTS"
  for e in "${endpoints[@]}"; do
    IFS='|' read -r name script path <<<"$e"
    [ "$script" != refresh.lua ] || mint
    line="run=$run endpoint=\"$name\" $(run_wrk "$DURATION" "$WORK/$script" "$path")"
    echo "$line"; echo "$line" >>"$RESULTS"
    [ "$name" != "healthz (baseline)" ] || oha_pair "healthz (baseline)" healthz
    if [ "$name" = client_credentials ]; then
      # Paced at 80 % of this run's saturated rate: each connection waits CONNECTIONS/(0.8·rate) s.
      rps=$(sed -n 's/.*rps=\([0-9.]*\).*/\1/p' <<<"$line")
      # wrk waits PACE_MS between a connection's requests, so the cycle is pace + latency: start
      # from the ideal cycle, measure 3 s, and shorten the pause by the measured overshoot.
      cycle=$(python3 -c "print($CONNECTIONS / (0.8 * $rps) * 1000)")
      probe=$(run_wrk 3s "$WORK/cc.lua" /oauth/token "PACE_MS=$(python3 -c "print(round($cycle))")")
      got=$(sed -n 's/.*rps=\([0-9.]*\).*/\1/p' <<<"$probe")
      pace=$(python3 -c "c=$cycle; g=$CONNECTIONS/$got*1000; print(max(0, round(2*c - g)))")
      line="run=$run endpoint=\"client_credentials @80%\" $(run_wrk "$DURATION" "$WORK/cc.lua" /oauth/token "PACE_MS=$pace")"
      echo "$line"; echo "$line" >>"$RESULTS"
      oha_pair client_credentials cc
      # RATES="4000 6000": also fixed constant rates, each next to /healthz at the same rate.
      for rate in ${RATES:-}; do
        [ -n "$OHA" ] || break
        for what in cc healthz; do
          label=$([ "$what" = cc ] && echo client_credentials || echo "healthz (baseline)")
          line="run=$run endpoint=\"$label at $rate/s (oha)\" $(run_oha "$what" "$rate")"
          echo "$line"; echo "$line" >>"$RESULTS"
        done
      done
    fi
  done
done
say "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
bench_medians "token endpoint"
AUDIT=$(api GET '/api/v1/audit-events?limit=1' | json '["data"][0]["seq"]')
echo "audit events written (chain length): $AUDIT"
