# Shared by bench/run.sh and bench/profile.sh: build, start and stop the
# benchmark's processes. Source it after `set -euo pipefail`; it defines
# functions and a few globals and registers an EXIT trap that stops every
# process it started (by pid) and removes the work directory.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
WORK=$(mktemp -d /tmp/bff-bench.XXXXXX)
PIDS=()
KEEP_WORK=${KEEP_WORK:-0}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
CLIENT_SECRET="bench-client-secret-7c1e0a9d52f4"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

cleanup() {
  local rc=$?
  local pid
  for pid in "${PIDS[@]}"; do
    pkill -TERM -P "$pid" 2>/dev/null || true # children of a background subshell (wrk)
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    reap "$pid" 30
  done
  if [[ $KEEP_WORK == 1 || $rc != 0 ]]; then
    log "work directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}

# reap PID TENTHS: waits up to TENTHS tenths of a second for PID (already
# sent TERM) to exit, then KILLs it, and collects it.
reap() {
  local pid=$1 tenths=$2
  for _ in $(seq 1 "$tenths"); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

trap cleanup EXIT
trap 'exit 130' INT TERM

# need_tools installs wrk if missing (as root, Debian) and checks the rest.
need_tools() {
  if ! command -v wrk >/dev/null; then
    [[ $(id -u) == 0 ]] || die "wrk is missing: apt-get install wrk (as root)"
    log "installing wrk"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  fi
  local t
  for t in go node npm taskset curl; do
    command -v "$t" >/dev/null || die "$t is required"
  done
  if [[ ! -f $ROOT/e2e/idp/node_modules/oidc-provider/package.json ]]; then
    log "npm ci in e2e/idp"
    (cd "$ROOT/e2e/idp" && npm ci --no-audit --no-fund >/dev/null)
  fi
  [[ $(nproc) -ge 2 ]] || log "warning: fewer than 2 CPUs; server and load generator will share one"
}

# build_all builds the BFF and the bench programs into $WORK/bin.
build_all() {
  log "building"
  mkdir -p "$WORK/bin"
  # BFF_PROF=1: the real binary with -tags pprof (/debug/pprof/ on metrics_listen).
  local tags=()
  [[ ${BFF_PROF:-0} == 1 ]] && tags=(-tags pprof)
  (cd "$ROOT" && go build "${tags[@]}" -o "$WORK/bin/bff" . &&
    go build -o "$WORK/bin/" ./bench/cmd/upstream ./bench/cmd/bareproxy ./bench/cmd/login ./bench/cmd/mint "$@")
}

# free_port prints a loopback port that was free a moment ago.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start NAME CMD... starts CMD pinned to the server CPU with stdout in
# $WORK/NAME.out and stderr in $WORK/NAME.err, records its pid in
# PID_<NAME>. taskset execs the command, so the pid is the server's own.
start() {
  local name=$1
  shift
  taskset -c "$SERVER_CPU" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  local pid=$!
  PIDS+=("$pid")
  printf -v "PID_$name" '%s' "$pid"
}

# wait_ready NAME: waits for a "READY ..." line on NAME's stdout and prints it.
wait_ready() {
  local name=$1 pidvar="PID_$1"
  for _ in $(seq 1 400); do
    if grep -q '^READY ' "$WORK/$name.out" 2>/dev/null; then
      grep -m1 '^READY ' "$WORK/$name.out"
      return 0
    fi
    kill -0 "${!pidvar}" 2>/dev/null || { tail -20 "$WORK/$name.err" >&2; die "$name exited"; }
    sleep 0.05
  done
  tail -20 "$WORK/$name.err" >&2
  die "$name not ready after 20s"
}

# start_stack starts the upstream, the bare proxy, the provider and the BFF
# (BFF_BIN, default the real binary: `bff serve -config`), then signs in.
# Sets UP_URL, STATS_URL, BARE_URL, BFF_URL, IDP_URL and COOKIE_FILE.
# Extra redirect URIs for the provider (oauth2-proxy) come from EXTRA_REDIRECTS.
start_stack() {
  local line
  start upstream "$WORK/bin/upstream"
  line=$(wait_ready upstream)
  UP_URL="http://$(awk '{print $2}' <<<"$line")"
  STATS_URL="http://$(awk '{print $3}' <<<"$line")/stats"

  start bare "$WORK/bin/bareproxy" -upstream "$UP_URL" ${BARE_PPROF:+-pprof "$BARE_PPROF"}
  line=$(wait_ready bare)
  BARE_URL="http://$(awk '{print $2}' <<<"$line")"

  local bff_port idp_port
  bff_port=$(free_port)
  idp_port=$(free_port)
  BFF_PUBLIC="http://localhost:$bff_port"
  BFF_URL="http://127.0.0.1:$bff_port"
  start idp env -C "$ROOT/e2e/idp" PORT="$idp_port" CLIENT_ID=bff CLIENT_SECRET="$CLIENT_SECRET" \
    REDIRECT_URIS="$BFF_PUBLIC/auth/callback${EXTRA_REDIRECTS:+,$EXTRA_REDIRECTS}" \
    POST_LOGOUT_REDIRECT_URIS="$BFF_PUBLIC/" ACCESS_TOKEN_TTL=86400 ROTATE_REFRESH=true \
    node server.js
  line=$(wait_ready idp)
  IDP_URL=$(awk '{print $2}' <<<"$line")

  local key
  key=$(head -c 32 /dev/urandom | base64 -w0)
  BFF_KEY=$key # bench/cmd/mint seals the population with it
  cat >"$WORK/bff.yaml" <<EOF
listen: "127.0.0.1:$bff_port"
public_url: "$BFF_PUBLIC"
oidc:
  issuer: "$IDP_URL"
  client_id: "bff"
  post_logout_redirect_url: "$BFF_PUBLIC/"
session:
  lifetime: "8h"
  cache_entries: ${CACHE_ENTRIES:-4096}
revocation:
  snapshot_file: "$WORK/revoked"
routes:
  - path: "/api/"
    upstream: "$UP_URL"
    token: "user"
log:
  format: "json"
  level: "${BFF_LOG_LEVEL:-info}"
EOF
  # Metrics (and /debug/pprof/ in a -tags pprof build) are only on
  # metrics_listen, never on the app's listener.
  BFF_METRICS="${BFF_PPROF:-127.0.0.1:$(free_port)}"
  echo "metrics_listen: \"$BFF_METRICS\"" >>"$WORK/bff.yaml"
  start bff env ${BFF_ENV:-} BFF_OIDC_CLIENT_SECRET="$CLIENT_SECRET" BFF_KEYS_SECRETS="$key" "$WORK/bin/bff" serve -config "$WORK/bff.yaml"
  for _ in $(seq 1 400); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$BFF_URL/readyz") == 200 ]] && break
    kill -0 "$PID_bff" 2>/dev/null || { tail -20 "$WORK/bff.err" "$WORK/bff.out" >&2; die "bff exited"; }
    sleep 0.05
  done
  [[ $(curl -s -o /dev/null -w '%{http_code}' "$BFF_URL/readyz") == 200 ]] || die "bff not ready"

  COOKIE_FILE="$WORK/cookie.bff"
  "$WORK/bin/login" -start "$BFF_PUBLIC/auth/login?returnTo=/" -callback-path /auth/callback \
    -cookie-prefix "__Host-Http-bff" -out "$COOKIE_FILE" || die "sign-in through the provider failed"
  [[ -s $COOKIE_FILE ]] || die "no session cookie after sign-in"
  log "signed in: $(tr ';' '\n' <"$COOKIE_FILE" | wc -l) session cookie chunk(s), $(($(wc -c <"$COOKIE_FILE") - 1)) bytes of Cookie header"
}

# upstream_counts prints "total bearer".
upstream_counts() {
  curl -sf "$STATS_URL" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["total"], d["bearer"])'
}

# probe NAME URL COOKIEFILE: one request like wrk's; must be 200 and reach the
# upstream (with a bearer unless NAME is bare).
probe() {
  local name=$1 url=$2 cookie_file=$3 before after code
  before=$(upstream_counts)
  code=$(curl -s -o "$WORK/probe.$name" -w '%{http_code}' -H "Cookie: $(cat "$cookie_file")" \
    -H 'X-CSRF: 1' -H 'Sec-Fetch-Site: same-origin' -H 'Accept: application/json' "$url")
  after=$(upstream_counts)
  [[ $code == 200 ]] || die "$name probe: status $code: $(head -c 300 "$WORK/probe.$name")"
  local dt db
  dt=$(($(cut -d' ' -f1 <<<"$after") - $(cut -d' ' -f1 <<<"$before")))
  db=$(($(cut -d' ' -f2 <<<"$after") - $(cut -d' ' -f2 <<<"$before")))
  [[ $dt == 1 ]] || die "$name probe: upstream saw $dt requests, want 1"
  if [[ $name != bare* ]]; then
    [[ $db == 1 ]] || die "$name probe: the upstream got no JWT bearer"
  fi
}

# lookups prints "hits opens": the BFF's session cookie lookups so far.
lookups() {
  curl -sf "http://$BFF_METRICS/metrics" | awk '$1 == "bff_session_cookie_lookups_total{result=\"hit\"}" {h=$2}
    $1 == "bff_session_cookie_lookups_total{result=\"open\"}" {o=$2} END {printf "%d %d\n", h, o}'
}

# cpu_ticks PID: utime+stime of the whole process, in clock ticks.
cpu_ticks() {
  # Fields after the ")" of the command name: state is $1, utime $12, stime $13.
  awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$1/stat"
}

# run_wrk SECONDS URL COOKIEFILE [NAME]: wrk pinned to the load CPU; prints
# its RESULT line. NAME (default "last") names its output file, so that
# several can run at once.
run_wrk() {
  local secs=$1 url=$2 cookie_file=$3 out="$WORK/wrk.${4:-last}"
  BENCH_COOKIE_FILE="$cookie_file" BENCH_COOKIES_FILE="${POPULATION_FILE:-}" BENCH_THREADS="$THREADS" taskset -c "$LOAD_CPU" wrk -t "$THREADS" -c "$CONNS" -d "${secs}s" \
    --timeout 5s -s "$BENCH_DIR/load.lua" "$url" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed"; }
  grep -m1 '^RESULT ' "$out" || { cat "$out" >&2; die "wrk printed no RESULT"; }
}

# field LINE KEY: the value of KEY=... in a RESULT line.
field() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k {print $2}'; }

# status_kib PID FIELD: VmRSS, or VmHWM (peak), of a process.
status_kib() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }

# rss_kib PID
rss_kib() { status_kib "$1" VmRSS; }

# mint_population N [PAD]: N sessions sealed with the BFF's key
# (bench/cmd/mint) into $WORK/population, which run_wrk then loads
# (POPULATION_FILE).
mint_population() {
  BFF_KEYS_SECRETS="$BFF_KEY" "$WORK/bin/mint" -n "$1" -issuer "$IDP_URL" -pad "${2:-0}" -out "$WORK/population" ||
    die "minting $1 sessions failed"
  POPULATION_FILE=$WORK/population
}

# goroutines URL: go_goroutines from a Prometheus endpoint.
goroutines() { curl -sf "$1" | awk '$1 == "go_goroutines" {print $2}'; }
