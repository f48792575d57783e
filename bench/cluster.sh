#!/usr/bin/env bash
# The BFF as a cluster under a refresh storm: K instances (`bff serve` with a
# cluster section, so each session's refresh goes to the instance that owns
# it) behind a real nginx round-robin balancer, loaded with a population of
# real sessions (signed in through the real oidc-provider of e2e/idp, each
# with a refresh token) while every session's access token expires, once.
# For each instance count it proves that the provider redeemed exactly one
# refresh per session, with no error anywhere, and measures requests/s,
# latency, CPU per request, memory and the session cache next to a bare
# reverse proxy behind the same nginx, with the same cookies. See
# bench/README.md ("cluster.sh").
#
# Usage: bench/cluster.sh [--instances "1 2 3"] [--sessions N] [--duration S]
#                         [--connections C] [--ttl S] [--refresh-margin S]
#                         [--login-parallel N] [--bare-duration S]
#
# --duration is the storm's length (default 60 s); the provider's access-token
# lifetime --ttl defaults to duration - 2 s (the storm is longer than the
# TTL). The sessions are signed in, then the storm starts at a moment that
# puts every session's first refresh inside it and its second after its end
# (bench/cmd/storm -plan); if the sign-ins took too long for that, the script
# says so and stops before loading. Environment as bench/run.sh: SERVER_CPU,
# LOAD_CPU, BFF_LOG_LEVEL, BFF_ENV, KEEP_WORK, CACHE_ENTRIES.
set -euo pipefail

INSTANCES="1 2 3"
SESSIONS=1000
DURATION=60
CONNS=32
TTL=""
MARGIN=2
LOGIN_PAR=8
BARE_DURATION=20
GUARD=2
while [[ $# -gt 0 ]]; do
  case $1 in
    --instances) INSTANCES=$2; shift 2 ;;
    --sessions) SESSIONS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNS=$2; shift 2 ;;
    --ttl) TTL=$2; shift 2 ;;
    --refresh-margin) MARGIN=$2; shift 2 ;;
    --login-parallel) LOGIN_PAR=$2; shift 2 ;;
    --bare-duration) BARE_DURATION=$2; shift 2 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "cluster.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
TTL=${TTL:-$((DURATION - 2))}
for v in SESSIONS DURATION CONNS TTL MARGIN LOGIN_PAR BARE_DURATION; do
  [[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || { echo "cluster.sh: --${v,,} must be a positive whole number" >&2; exit 2; }
done
for k in $INSTANCES; do
  [[ $k =~ ^[1-9][0-9]*$ ]] || { echo "cluster.sh: --instances takes counts like \"1 2 3\"" >&2; exit 2; }
done
((MARGIN + 2 < TTL)) || { echo "cluster.sh: --ttl must exceed --refresh-margin by more than 2 s" >&2; exit 2; }

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
CLK_TCK=$(getconf CLK_TCK)
NGINX=/usr/sbin/nginx
[[ -x $NGINX ]] || die "$NGINX not found: the cluster benchmark needs Debian's nginx as its balancer (apt-get install nginx-light)"
need_tools
build_all ./bench/cmd/storm

# nginx runs as nobody when we are root, so it must reach its directory.
if [[ $(id -u) == 0 ]]; then
  chmod 711 "$WORK"
  NGINX_AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
else
  NGINX_AS=()
fi

# free_gossip_port prints a loopback port that was free for both TCP and UDP
# a moment ago (memberlist binds both on one number).
free_gossip_port() {
  python3 -c '
import socket
while True:
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p))
    except OSError:
        t.close(); continue
    u.close(); t.close(); print(p); break'
}

# stop_pid PID: TERM, then KILL after 5 s; forgets it for the EXIT trap.
stop_pid() {
  local pid=$1 p keep=()
  kill -TERM "$pid" 2>/dev/null || true
  reap "$pid" 50
  for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# tally K: what the storm on K instances did, as shell assignments, from the
# provider's /__test/stats and each instance's /metrics, before and after:
# rs, rc, re (refresh_token grants redeemed, called, refused at the
# provider); refreshed, forwarded, shared, successor, bad (error outcomes)
# of bff_refreshes_total summed over the instances; unreachable, refused,
# revoked (owner unreachable, internal requests refused, sessions revoked
# after a refused refresh); hits, opens (session cookie lookups); per
# (refreshed per instance).
tally() {
  python3 - "$WORK" "$1" "${NAMES[@]}" <<'PY'
import json, sys
work, k, names = sys.argv[1], sys.argv[2], sys.argv[3:]
def stats(when):
    d = json.load(open(f"{work}/idp.{k}.{when}"))
    return d["refresh_success"], d["token_calls"].get("refresh_token", 0), d["token_errors"].get("refresh_token", 0)
b, a = stats("before"), stats("after")
out = dict(rs=a[0] - b[0], rc=a[1] - b[1], re=a[2] - b[2])
def metrics(i, when):
    m = {}
    for line in open(f"{work}/metrics.{k}.{i}.{when}"):
        if line.strip() and not line.startswith("#"):
            series, _, value = line.strip().rpartition(" ")
            m[series] = float(value)
    return m
series = dict(
    refreshed=['bff_refreshes_total{outcome="refreshed"}'],
    forwarded=['bff_refreshes_total{outcome="forwarded"}'],
    shared=['bff_refreshes_total{outcome="shared"}'],
    successor=['bff_refreshes_total{outcome="successor"}'],
    bad=[f'bff_refreshes_total{{outcome="{o}"}}' for o in ("invalid_grant", "invalid_client", "provider_error", "error", "cooldown")],
    unreachable=["bff_refresh_owner_unreachable_total"],
    refused=["bff_internal_requests_refused_total"],
    revoked=['bff_revocations_total{kind="refresh_refused"}'],
    hits=['bff_session_cookie_lookups_total{result="hit"}'],
    opens=['bff_session_cookie_lookups_total{result="open"}'],
)
out.update({key: 0 for key in series})
per = []
for i, name in enumerate(names):
    b, a = metrics(i, "before"), metrics(i, "after")
    for key, ss in series.items():
        d = sum(round(a.get(s, 0) - b.get(s, 0)) for s in ss)
        out[key] += d
        if key == "refreshed":
            per.append(f"bff-{name}:{d}")
for key, v in out.items():
    print(f"{key}={int(v)}")
print("per='" + " ".join(per) + "'")
PY
}

# nginx_ticks: CPU ticks of the nginx master and its workers.
nginx_ticks() {
  local t p
  t=$(cpu_ticks "$PID_nginx")
  for p in $(pgrep -P "$PID_nginx"); do t=$((t + $(cpu_ticks "$p"))); done
  echo "$t"
}


# --- the fixed part of the stack: upstream, bare proxy, provider ---------
start upstream "$WORK/bin/upstream"
line=$(wait_ready upstream)
UP_URL="http://$(awk '{print $2}' <<<"$line")"
STATS_URL="http://$(awk '{print $3}' <<<"$line")/stats"
start bare "$WORK/bin/bareproxy" -upstream "$UP_URL"
line=$(wait_ready bare)
BARE_ADDR=$(awk '{print $2}' <<<"$line")

LB_PORT=$(free_port)
BARE_LB_PORT=$(free_port)
PUBLIC="http://localhost:$LB_PORT"
IDP_PORT=$(free_port)
start idp env -C "$ROOT/e2e/idp" PORT="$IDP_PORT" CLIENT_ID=bff CLIENT_SECRET="$CLIENT_SECRET" \
  REDIRECT_URIS="$PUBLIC/auth/callback" POST_LOGOUT_REDIRECT_URIS="$PUBLIC/" \
  ACCESS_TOKEN_TTL="$TTL" ROTATE_REFRESH=true node server.js
line=$(wait_ready idp)
IDP_URL=$(awk '{print $2}' <<<"$line")
log "provider $IDP_URL: access tokens live $TTL s, refresh tokens rotate; BFF refresh_margin ${MARGIN}s"

: >"$WORK/rows.tsv"
: >"$WORK/checks.txt"

# finding MESSAGE: something the benchmark must not paper over. Prints the
# evidence (the load generator's errors, the provider's counters, each
# instance's refresh metrics and warnings), then fails.
finding() {
  local msg=$1 i
  log "FINDING: $msg"
  {
    echo "--- storm stderr (last 40 lines)"
    tail -40 "$WORK/storm.$K.err" 2>/dev/null || true
    echo "--- provider /__test/stats before and after the storm"
    cat "$WORK/idp.$K.before" 2>/dev/null; echo
    curl -sf "$IDP_URL/__test/stats" || true; echo
    for ((i = 0; i < K; i++)); do
      echo "--- bff-${NAMES[$i]} (pid ${BFF_PIDS[$i]}): refresh metrics now"
      curl -sf "http://127.0.0.1:${METRICS[$i]}/metrics" |
        grep -E '^bff_(refreshes_total|refresh_forwarded_total|refresh_owner_unreachable_total|internal_requests_refused_total|revocations_total|refused_total)' || true
      echo "--- bff-${NAMES[$i]}: WARN/ERROR log lines (first 20)"
      grep -h -E '"level":"(WARN|ERROR)"' "$WORK/bff${K}_${NAMES[$i]}.out" "$WORK/bff${K}_${NAMES[$i]}.err" 2>/dev/null | head -20 || true
    done
  } >&2
  KEEP_WORK=1
  die "$msg"
}

# check CONDITION-TEXT: a line for the report.
check() { echo "$*" >>"$WORK/checks.txt"; log "ok: $*"; }

LETTERS=({a..z})
for K in $INSTANCES; do
  ((K <= 26)) || die "at most 26 instances"
  log "=== $K instance(s) ==="
  KEY=$(head -c 32 /dev/urandom | base64 -w0)
  CSECRET=$(head -c 32 /dev/urandom | base64 -w0)
  NAMES=() PORTS=() GOSSIP=() METRICS=() BFF_PIDS=()
  for ((i = 0; i < K; i++)); do
    NAMES+=("${LETTERS[$i]}")
    PORTS+=("$(free_port)")
    GOSSIP+=("$(free_gossip_port)")
    METRICS+=("$(free_port)")
  done
  # Every instance joins the first two (the e2e cluster's layout).
  JOIN=""
  if ((K > 1)); then
    JOIN="\"127.0.0.1:${GOSSIP[0]}\", \"127.0.0.1:${GOSSIP[1]}\""
  fi
  for ((i = 0; i < K; i++)); do
    dir="$WORK/bff${K}_${NAMES[$i]}.d"
    mkdir -p "$dir"
    cat >"$dir/bff.yaml" <<EOF
listen: "127.0.0.1:${PORTS[$i]}"
public_url: "$PUBLIC"
trusted_proxies: ["127.0.0.1/32"]
metrics_listen: "127.0.0.1:${METRICS[$i]}"
oidc:
  issuer: "$IDP_URL"
  client_id: "bff"
  post_logout_redirect_url: "$PUBLIC/"
session:
  lifetime: "8h"
  refresh_margin: "${MARGIN}s"
  cache_entries: ${CACHE_ENTRIES:-4096}
revocation:
  snapshot_file: "$dir/revoked"
routes:
  - path: "/api/"
    upstream: "$UP_URL"
    token: "user"
cluster:
  bind: "127.0.0.1:${GOSSIP[$i]}"
  join: [$JOIN]
  name: "bff-${NAMES[$i]}"
  internal_url: "http://127.0.0.1:${PORTS[$i]}"
log:
  format: "json"
  level: "${BFF_LOG_LEVEL:-info}"
EOF
    start "bff${K}_${NAMES[$i]}" env ${BFF_ENV:-} BFF_OIDC_CLIENT_SECRET="$CLIENT_SECRET" BFF_KEYS_SECRETS="$KEY" \
      BFF_CLUSTER_SECRET="$CSECRET" "$WORK/bin/bff" serve -config "$dir/bff.yaml"
    pidvar="PID_bff${K}_${NAMES[$i]}"
    BFF_PIDS+=("${!pidvar}")
  done
  for ((i = 0; i < K; i++)); do
    ok=0
    for _ in $(seq 1 600); do
      [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PORTS[$i]}/readyz") == 200 ]] && { ok=1; break; }
      kill -0 "${BFF_PIDS[$i]}" 2>/dev/null || { tail -20 "$WORK/bff${K}_${NAMES[$i]}".{out,err} >&2; die "bff-${NAMES[$i]} exited"; }
      sleep 0.05
    done
    ((ok)) || die "bff-${NAMES[$i]} not ready after 30 s"
  done

  ndir="$WORK/nginx-$K"
  mkdir -p "$ndir"
  servers=""
  for ((i = 0; i < K; i++)); do servers+="    server 127.0.0.1:${PORTS[$i]};"$'\n'; done
  # As deploy/nginx.conf (header room for chunked cookies, keep-alive to
  # the instances, X-Forwarded-For from the edge), without TLS; round robin,
  # no stickiness; every path in the work directory (e2e's runNginx).
  cat >"$ndir/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $ndir/nginx.pid;
error_log $ndir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $ndir/client_body;
  proxy_temp_path $ndir/proxy;
  fastcgi_temp_path $ndir/fastcgi;
  uwsgi_temp_path $ndir/uwsgi;
  scgi_temp_path $ndir/scgi;
  large_client_header_buffers 4 32k;
  proxy_buffer_size 32k;
  proxy_buffers 8 32k;
  proxy_busy_buffers_size 64k;
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header Host \$http_host;
  proxy_set_header X-Forwarded-For \$remote_addr;
  upstream bffs {
$servers    keepalive 64;
  }
  upstream bare {
    server $BARE_ADDR;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$LB_PORT;
    location / { proxy_pass http://bffs; }
  }
  server {
    listen 127.0.0.1:$BARE_LB_PORT;
    location / { proxy_pass http://bare; }
  }
}
EOF
  [[ ${#NGINX_AS[@]} -gt 0 ]] && chown -R nobody:nogroup "$ndir"
  start nginx "${NGINX_AS[@]}" "$NGINX" -p "$ndir" -c "$ndir/nginx.conf" -e "$ndir/error.log"
  ok=0
  for _ in $(seq 1 200); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$LB_PORT/readyz") == 200 ]] && { ok=1; break; }
    kill -0 "$PID_nginx" 2>/dev/null || { cat "$WORK/nginx.err" "$ndir/error.log" >&2; die "nginx exited"; }
    sleep 0.05
  done
  ((ok)) || { cat "$ndir/error.log" >&2; die "nginx not serving after 10 s"; }
  log "$K instance(s) ready behind nginx at $PUBLIC (pids ${BFF_PIDS[*]}; nginx $PID_nginx)"

  # Sign in the population through nginx, and plan the storm's start.
  log "signing in $SESSIONS sessions through nginx and the provider ($LOGIN_PAR at a time)"
  s0=$(cpu_ticks "$PID_idp"); s0b=0
  for p in "${BFF_PIDS[@]}"; do s0b=$((s0b + $(cpu_ticks "$p"))); done
  taskset -c "$LOAD_CPU" "$WORK/bin/storm" -login "$PUBLIC/auth/login?returnTo=/" -n "$SESSIONS" \
    -login-parallel "$LOGIN_PAR" -save "$WORK/cookies.$K" -times "$WORK/times.$K" \
    -ttl "${TTL}s" -refresh-margin "${MARGIN}s" -guard "${GUARD}s" -d "${DURATION}s" -plan \
    >"$WORK/plan.$K" 2>"$WORK/plan.$K.err" || { cat "$WORK/plan.$K.err" >&2; die "sign-in or planning failed"; }
  signin=$(grep -m1 '^SIGNIN ' "$WORK/plan.$K")
  plan=$(grep -m1 '^PLAN ' "$WORK/plan.$K")
  s1=$(cpu_ticks "$PID_idp"); s1b=0
  for p in "${BFF_PIDS[@]}"; do s1b=$((s1b + $(cpu_ticks "$p"))); done
  log "signed in: $signin; CPU per sign-in: provider $(((s1 - s0) * 1000000 / CLK_TCK / SESSIONS)) us, BFF instances $(((s1b - s0b) * 1000000 / CLK_TCK / SESSIONS)) us"
  log "plan: $plan"

  # Before: the counters the checks compare, read before the wait (nothing
  # moves them until the storm) so that the storm starts on time; the CPU
  # times just before it.
  curl -sf "$IDP_URL/__test/stats" >"$WORK/idp.$K.before"
  for ((i = 0; i < K; i++)); do curl -sf "http://127.0.0.1:${METRICS[$i]}/metrics" >"$WORK/metrics.$K.$i.before"; done
  c0=$(upstream_counts)
  start_ms=$(field "$plan" start_ms)
  wait_ms=$((start_ms - $(date +%s%3N) - 50))
  ((wait_ms > 0)) && sleep "$(awk -v ms="$wait_ms" 'BEGIN {printf "%.3f", ms / 1000}')"
  t0=0
  for p in "${BFF_PIDS[@]}"; do t0=$((t0 + $(cpu_ticks "$p"))); done
  n0=$(nginx_ticks); i0=$(cpu_ticks "$PID_idp")
  log "storm: ${DURATION} s, $CONNS connections, round robin over $SESSIONS sessions, through nginx to $K instance(s)"
  if ! taskset -c "$LOAD_CPU" "$WORK/bin/storm" -cookies "$WORK/cookies.$K" -times "$WORK/times.$K" \
    -ttl "${TTL}s" -refresh-margin "${MARGIN}s" -guard "${GUARD}s" -d "${DURATION}s" \
    -url "$PUBLIC/api/items?page=2" -c "$CONNS" -expect-renewals 1 >"$WORK/storm.$K.out" 2>"$WORK/storm.$K.err"; then
    cat "$WORK/storm.$K.out" >&2
    finding "the storm on $K instance(s) failed: $(tail -1 "$WORK/storm.$K.err")"
  fi
  t1=0
  for p in "${BFF_PIDS[@]}"; do t1=$((t1 + $(cpu_ticks "$p"))); done
  n1=$(nginx_ticks); i1=$(cpu_ticks "$PID_idp")
  c1=$(upstream_counts)
  rss="" hwm=""
  for p in "${BFF_PIDS[@]}"; do
    rss+="${rss:+,}$(($(status_kib "$p" VmRSS) / 1024))"
    hwm+="${hwm:+,}$(($(status_kib "$p" VmHWM) / 1024))"
  done
  sleep 0.5 # let the last refresh answers' metrics land
  curl -sf "$IDP_URL/__test/stats" >"$WORK/idp.$K.after"
  for ((i = 0; i < K; i++)); do curl -sf "http://127.0.0.1:${METRICS[$i]}/metrics" >"$WORK/metrics.$K.$i.after"; done
  res=$(grep -m1 '^RESULT ' "$WORK/storm.$K.out")
  log "storm: $res"

  # --- the checks -------------------------------------------------------
  req=$(field "$res" requests)
  dt=$(($(cut -d' ' -f1 <<<"$c1") - $(cut -d' ' -f1 <<<"$c0")))
  db=$(($(cut -d' ' -f2 <<<"$c1") - $(cut -d' ' -f2 <<<"$c0")))
  ((dt == req)) || finding "$K instance(s): the upstream served $dt requests, the load generator completed $req"
  ((db == dt)) || finding "$K instance(s): $((dt - db)) of $dt upstream requests had no JWT bearer"
  check "$K instance(s): $req requests, all 2xx, each reached the upstream with a JWT bearer"
  # One pass over the provider's counters and every instance's metrics
  # (before and after): shell assignments.
  t=$(tally "$K") || die "reading the counters failed"
  eval "$t"
  ((re == 0)) || finding "$K instance(s): the provider refused $re refresh_token grants"
  ((rs == SESSIONS && rc == SESSIONS)) ||
    finding "$K instance(s): the provider redeemed $rs refresh tokens ($rc refresh_token calls) for $SESSIONS sessions each due exactly one refresh"
  ((bad == 0)) || finding "$K instance(s): $bad refreshes failed at the BFF (bff_refreshes_total error outcomes)"
  ((unreachable == 0)) || finding "$K instance(s): $unreachable refreshes went local because the owner did not answer (bff_refresh_owner_unreachable_total)"
  ((refused == 0)) || finding "$K instance(s): $refused internal refresh requests refused (bff_internal_requests_refused_total)"
  ((revoked == 0)) || finding "$K instance(s): $revoked sessions revoked after a refused refresh"
  ((refreshed == SESSIONS)) || finding "$K instance(s): the instances redeemed $refreshed refresh tokens (outcome refreshed) for $SESSIONS sessions"
  if ((K > 1)); then
    ((forwarded > 0)) || finding "$K instance(s): no refresh was forwarded to its owner: owner routing is not in effect"
  fi
  check "$K instance(s): provider refresh_success +$rs = token calls +$rc = $SESSIONS sessions, 0 refresh errors; refreshed by the owners ($per), forwarded $forwarded, shared $shared, successor $successor; owner unreachable 0, internal refused 0, renewals per session exactly 1 ($(field "$res" renewed1)/$SESSIONS), late cookie updates $(field "$res" late_updates)"
  printf 'bff\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$K" "$req" \
    "$(field "$res" duration_us)" "$(field "$res" p50_us)" "$(field "$res" p99_us)" "$((t1 - t0))" "$((n1 - n0))" \
    "$rss" "$hwm" "$hits" "$opens" "$rs" "$forwarded" "$(field "$res" renew_first_ms)" "$(field "$res" renew_last_ms)" \
    "$(field "$signin" duration_ms)" "$((i1 - i0))" "$(field "$res" client_cpu_us)" >>"$WORK/rows.tsv"

  # The floor: the bare proxy behind the same nginx, the same cookies.
  log "bare proxy: ${BARE_DURATION} s through the same nginx, the same cookies"
  c0=$(upstream_counts); b0=$(cpu_ticks "$PID_bare"); n0=$(nginx_ticks)
  taskset -c "$LOAD_CPU" "$WORK/bin/storm" -cookies "$WORK/cookies.$K" -d "${BARE_DURATION}s" \
    -url "http://127.0.0.1:$BARE_LB_PORT/api/items?page=2" -c "$CONNS" -expect-renewals 0 \
    >"$WORK/bare.$K.out" 2>"$WORK/bare.$K.err" || { cat "$WORK/bare.$K.err" >&2; die "the bare proxy's load failed"; }
  c1=$(upstream_counts); b1=$(cpu_ticks "$PID_bare"); n1=$(nginx_ticks)
  res=$(grep -m1 '^RESULT ' "$WORK/bare.$K.out")
  log "bare: $res"
  req=$(field "$res" requests)
  dt=$(($(cut -d' ' -f1 <<<"$c1") - $(cut -d' ' -f1 <<<"$c0")))
  ((dt == req)) || die "bare: the upstream served $dt requests, the load generator completed $req"
  printf 'bare\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$K" "$req" \
    "$(field "$res" duration_us)" "$(field "$res" p50_us)" "$(field "$res" p99_us)" "$((b1 - b0))" "$((n1 - n0))" \
    "$(($(status_kib "$PID_bare" VmRSS) / 1024))" "$(($(status_kib "$PID_bare" VmHWM) / 1024))" 0 0 0 0 -1 -1 0 0 \
    "$(field "$res" client_cpu_us)" >>"$WORK/rows.tsv"

  stop_pid "$PID_nginx"
  for p in "${BFF_PIDS[@]}"; do stop_pid "$p"; done
done

echo
echo "machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo); $(go version | awk '{print $3}'); $(date -u '+%Y-%m-%d %H:%M UTC'); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "servers (every BFF instance, nginx with 1 worker, the bare proxy, the upstream, the provider) on CPU $SERVER_CPU; bench/cmd/storm on CPU $LOAD_CPU."
echo "On this 2-CPU machine nginx and all K instances share ONE core: more instances add no capacity here, only"
echo "their coordination (gossip, forwarded refreshes) and less cache sharing; the figures show that overhead, not scaling."
echo "storm: $DURATION s, $CONNS connections, $SESSIONS real sessions round robin (a cookie jar each); provider access-token TTL $TTL s,"
echo "BFF refresh_margin $MARGIN s: every session's token enters the margin once during the storm. Bare proxy: $BARE_DURATION s, same nginx, same cookies."
python3 - "$WORK/rows.tsv" "$CLK_TCK" "$SESSIONS" <<'EOF'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
tck, sessions = int(sys.argv[2]), int(sys.argv[3])
by = {}
for r in rows:
    kind, k, req, dur, p50, p99, cpu, ngx, rss, hwm, hits, opens, rs, fwd, rf, rl, signin, idp, client = r
    req, dur = int(req), int(dur)
    by[(kind, k)] = dict(rps=req / (dur / 1e6), p50=int(p50) / 1000, p99=int(p99) / 1000,
        cpu=int(cpu) * 1e6 / tck / req, ngx=int(ngx) * 1e6 / tck / req, rss=rss, hwm=hwm,
        hit=int(hits) / max(1, int(hits) + int(opens)), rs=int(rs), fwd=int(fwd), rf=int(rf), rl=int(rl),
        signin=int(signin) / 1000, idp=int(idp) * 1e6 / tck, client=int(client) / req, req=req)
print()
print(f"{'':<7}{'inst':>5}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'CPU us/req':>11}{'nginx us/req':>13}"
      f"{'RSS MiB (peak)':>22}{'cache hit':>10}{'refreshes/sessions':>20}{'forwarded':>10}")
ks = sorted({k for _, k in by}, key=int)
for k in ks:
    for kind in ("bff", "bare"):
        m = by.get((kind, k))
        if not m:
            continue
        rss = f"{m['rss']} ({m['hwm']})"
        extra = (f"{m['hit']:>10.3f}{str(m['rs']) + '/' + str(sessions):>20}{m['fwd']:>10}" if kind == "bff" else "")
        print(f"{kind:<7}{k:>5}{m['rps']:>8.0f}{m['p50']:>8.2f}{m['p99']:>8.2f}{m['cpu']:>11.1f}{m['ngx']:>13.1f}{rss:>22}{extra}")
print()
print("CPU us/req: the BFF instances' (summed) or the bare proxy's user+system time / requests; nginx's apart.")
for k in ks:
    b, f = by.get(("bare", k)), by.get(("bff", k))
    if not (b and f):
        continue
    print(f"{k} instance(s) vs the bare proxy: req/s {f['rps'] / b['rps']:.2f}x, p50 {f['p50'] / b['p50']:.2f}x, "
          f"p99 {f['p99'] / b['p99']:.2f}x, CPU/req {f['cpu'] / b['cpu']:.2f}x, (proxy + nginx) CPU/req "
          f"{(f['cpu'] + f['ngx']) / (b['cpu'] + b['ngx']):.2f}x; sign-in {f['signin']:.1f} s "
          f"({sessions / max(f['signin'], 1e-9):.0f}/s); refreshes landed {f['rf'] / 1000:.1f}-{f['rl'] / 1000:.1f} s into the storm; "
          f"provider CPU during the storm {f['idp'] / max(1, f['rs']):.0f} us per refresh; load generator {f['client']:.0f} us/req")
EOF
echo
echo "checks passed:"
sed 's/^/  /' "$WORK/checks.txt"
