#!/usr/bin/env bash
# Side-by-side load benchmark: a bare httputil.ReverseProxy and the BFF (signed
# in through the real oidc-provider of e2e/idp) in front of the same tiny
# upstream, servers pinned to one CPU and wrk to the other, in alternating
# rounds. Every round must be all 2xx responses that reached the upstream
# (with a JWT bearer, for the BFF), or the script fails. See bench/README.md.
#
# Two floors: the bare proxy forwarding the same cookie(s) the BFF gets
# ("bare"), and the bare proxy without them ("bare-nocookie", alternating
# rounds only): the BFF must read the cookie, a proxy that needs none does not.
#
# With --simultaneous, every round loads all servers at the same time instead
# (each with its own wrk), so that they share whatever else the machine runs.
#
# Usage: bench/run.sh [--rounds N] [--duration SECONDS] [--connections N]
#                     [--threads N] [--soak-minutes N] [--with-oauth2-proxy]
#                     [--simultaneous] [--sessions N] [--cache-entries N]
#                     [--pad BYTES] [--revoked N]
#
# --sessions N loads N distinct sessions (minted by bench/cmd/mint with the
# BFF's key) round-robin instead of one signed-in session, on both servers
# (the bare proxy forwards the same cookies); --cache-entries sets
# session.cache_entries (-1: every request opens its cookie); --pad BYTES
# adds a claim of that size to each minted access token (3000: 2 cookie
# chunks, 10000: 4). --revoked N starts the BFF with N revoked sessions
# (none of the loaded ones) in its revocation list.
set -euo pipefail

ROUNDS=3
DURATION=10
CONNS=32
THREADS=2
SOAK_MIN=2
WITH_O2P=0
TOGETHER=0
SESSIONS=0
CACHE_ENTRIES=4096
PAD=0
REVOKED=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --soak-minutes) SOAK_MIN=$2; shift 2 ;;
    --with-oauth2-proxy) WITH_O2P=1; shift ;;
    --simultaneous) TOGETHER=1; shift ;;
    --sessions) SESSIONS=$2; shift 2 ;;
    --cache-entries) CACHE_ENTRIES=$2; shift 2 ;;
    --pad) PAD=$2; shift 2 ;;
    --revoked) REVOKED=$2; shift 2 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
CLK_TCK=$(getconf CLK_TCK)
O2P_VERSION=v7.15.6

need_tools
build_all

if [[ $WITH_O2P == 1 ]]; then
  O2P_BIN=$(go env GOPATH)/bin/oauth2-proxy
  if ! go version -m "$O2P_BIN" 2>/dev/null | grep -q "oauth2-proxy/v7[[:space:]]*$O2P_VERSION"; then
    log "go install oauth2-proxy $O2P_VERSION (takes a few minutes)"
    go install "github.com/oauth2-proxy/oauth2-proxy/v7@$O2P_VERSION" || die "go install of oauth2-proxy failed"
  fi
  O2P_PORT=$(free_port)
  EXTRA_REDIRECTS="http://localhost:$O2P_PORT/oauth2/callback"
fi

((PAD == 0 || SESSIONS > 0)) || die "--pad needs --sessions"
if ((REVOKED > 0)); then
  # The revocation log the BFF loads at start (revocation.snapshot_file).
  "$WORK/bin/mint" -revoked "$REVOKED" -revocation-file "$WORK/revoked" || die "writing $REVOKED revocations failed"
  log "revocation list: $REVOKED revoked sessions ($(($(wc -c <"$WORK/revoked") / 1024)) KiB of log)"
fi
start_stack
if ((REVOKED > 0)); then
  live=$(curl -sf "http://$BFF_METRICS/metrics" | awk '$1 == "bff_revocation_list_entries" {print $2; exit}')
  [[ ${live%.*} == "$REVOKED" ]] || die "the BFF loaded ${live:-no} revocation entries, want $REVOKED"
  log "the BFF loaded $live revocation entries, RSS $(rss_kib "$PID_bff") KiB before load"
fi
if ((SESSIONS > 0)); then
  mint_population "$SESSIONS" "$PAD"
  log "population: $SESSIONS sessions, Cookie header $(head -1 "$POPULATION_FILE" | wc -c) bytes and $(($(head -1 "$POPULATION_FILE" | grep -o '; ' | wc -l) + 1)) chunk(s) each, session.cache_entries $CACHE_ENTRIES"
fi
KINDS=(bare bff)
declare -A URL PID COOKIE
URL[bare]="$BARE_URL/api/items?page=2"; PID[bare]=$PID_bare; COOKIE[bare]=$COOKIE_FILE
# The second floor: the same bare proxy, requests without the session
# cookie (what a proxy that needs no cookie costs). Alternating rounds only.
if [[ $TOGETHER == 0 ]]; then
  : >"$WORK/no-cookie"
  KINDS=(bare bare-nocookie bff)
  URL[bare-nocookie]=${URL[bare]}; PID[bare-nocookie]=$PID_bare; COOKIE[bare-nocookie]=$WORK/no-cookie
fi
URL[bff]="$BFF_URL/api/items?page=2"; PID[bff]=$PID_bff; COOKIE[bff]=$COOKIE_FILE

if [[ $WITH_O2P == 1 ]]; then
  # Cookie-session mode (the default store), passing the ID token upstream as
  # Authorization: Bearer; PKCE S256 because the provider requires it. The
  # access token is for the API's audience, so the provider's userinfo
  # refuses it: take every claim from the ID token. Request logging off, as
  # the BFF logs each request... at info; see README for the log-level note.
  start o2p "$O2P_BIN" --http-address="127.0.0.1:$O2P_PORT" --provider=oidc \
    --oidc-issuer-url="$IDP_URL" --client-id=bff --client-secret="$CLIENT_SECRET" \
    --redirect-url="http://localhost:$O2P_PORT/oauth2/callback" --upstream="$UP_URL/" \
    --cookie-secret="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" --cookie-secure=false \
    --email-domain='*' --scope="openid email profile" --code-challenge-method=S256 \
    --skip-provider-button=true --pass-authorization-header=true --pass-access-token=true \
    --skip-claims-from-profile-url=true --request-logging=false --silence-ping-logging=true
  for _ in $(seq 1 200); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$O2P_PORT/ping") == 200 ]] && break
    kill -0 "$PID_o2p" 2>/dev/null || { tail -20 "$WORK/o2p.err" >&2; die "oauth2-proxy exited"; }
    sleep 0.1
  done
  "$WORK/bin/login" -start "http://localhost:$O2P_PORT/oauth2/start?rd=/" -callback-path /oauth2/callback \
    -cookie-prefix _oauth2_proxy -out "$WORK/cookie.o2p" || { tail -20 "$WORK/o2p.err" >&2; die "oauth2-proxy sign-in failed"; }
  KINDS+=(oauth2-proxy)
  URL[oauth2-proxy]="http://127.0.0.1:$O2P_PORT/api/items?page=2"; PID[oauth2-proxy]=$PID_o2p
  COOKIE[oauth2-proxy]=$WORK/cookie.o2p
fi

for k in "${KINDS[@]}"; do
  probe "$k" "${URL[$k]}" "${COOKIE[$k]}"
done
log "probes ok: each answered 200 and reached the upstream$([[ ${#KINDS[@]} -gt 1 ]] && echo ' (BFF with a JWT bearer)')"

# measure KIND ROUND SECONDS: one wrk run, checked, appended to $WORK/rounds.tsv.
measure() {
  local k=$1 round=$2 secs=$3
  local c0 c1 p0 p1 u0 u1 res
  c0=$(upstream_counts); p0=$(cpu_ticks "${PID[$k]}"); u0=$(cpu_ticks "$PID_upstream")
  local l0 l1
  [[ $k == bff ]] && l0=$(lookups)
  if [[ $k == bare-nocookie ]]; then
    res=$(POPULATION_FILE='' run_wrk "$secs" "${URL[$k]}" "${COOKIE[$k]}")
  else
    res=$(run_wrk "$secs" "${URL[$k]}" "${COOKIE[$k]}")
  fi
  c1=$(upstream_counts); p1=$(cpu_ticks "${PID[$k]}"); u1=$(cpu_ticks "$PID_upstream")
  if [[ $k == bff ]]; then
    l1=$(lookups)
    local hits=$(($(cut -d' ' -f1 <<<"$l1") - $(cut -d' ' -f1 <<<"$l0"))) opens=$(($(cut -d' ' -f2 <<<"$l1") - $(cut -d' ' -f2 <<<"$l0")))
    log "bff round $round: session cache hit rate $(python3 -c "print(f'{$hits/max(1,$hits+$opens):.3f}')") ($hits hits, $opens opens), RSS $(rss_kib "${PID[bff]}") KiB"
  fi
  local req dt db
  req=$(field "$res" requests)
  dt=$(($(cut -d' ' -f1 <<<"$c1") - $(cut -d' ' -f1 <<<"$c0")))
  db=$(($(cut -d' ' -f2 <<<"$c1") - $(cut -d' ' -f2 <<<"$c0")))
  local f
  for f in non2xx connect read write timeout status; do
    [[ $(field "$res" "$f") == 0 ]] || die "$k round $round: wrk saw $f=$(field "$res" "$f") ($res)"
  done
  [[ $req -gt 0 ]] || die "$k round $round: no requests"
  # wrk stops with up to one request in flight per connection: the upstream
  # served those but wrk never counted their responses.
  ((dt >= req && dt <= req + CONNS)) ||
    die "$k round $round: upstream served $dt requests, wrk completed $req (allowed: $req..$((req + CONNS)))"
  if [[ $k != bare* ]]; then
    [[ $db == "$dt" ]] || die "$k round $round: $((dt - db)) of $dt upstream requests had no JWT bearer"
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$k" "$round" "$req" "$(field "$res" duration_us)" \
    "$(field "$res" p50_us)" "$(field "$res" p99_us)" "$((p1 - p0))" "$((u1 - u0))" "$dt" "$((dt - req))" >>"$WORK/rounds.tsv"
  log "$k round $round: $req requests, $(field "$res" non2xx) non-2xx, upstream +$dt ($((dt - req)) in flight at stop)"
}

# measure_together ROUND SECONDS: one wrk per server, all at once, checked;
# a row per server in $WORK/rounds.tsv. The upstream's CPU is shared out by
# requests. Every request but the bare proxy's must carry a JWT bearer: the
# upstream's requests without one must be the bare proxy's count (up to one
# in flight per connection).
measure_together() {
  local round=$1 secs=$2 k
  local -A p0 p1 res
  local c0 c1 u0 u1 pids=()
  c0=$(upstream_counts); u0=$(cpu_ticks "$PID_upstream")
  for k in "${KINDS[@]}"; do p0[$k]=$(cpu_ticks "${PID[$k]}"); done
  for k in "${KINDS[@]}"; do
    ( run_wrk "$secs" "${URL[$k]}" "${COOKIE[$k]}" "$k" >"$WORK/result.$k" ) &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || die "round $round: a wrk failed"; done
  c1=$(upstream_counts); u1=$(cpu_ticks "$PID_upstream")
  for k in "${KINDS[@]}"; do p1[$k]=$(cpu_ticks "${PID[$k]}"); res[$k]=$(cat "$WORK/result.$k"); done
  local dt db total=0 f
  dt=$(($(cut -d' ' -f1 <<<"$c1") - $(cut -d' ' -f1 <<<"$c0")))
  db=$(($(cut -d' ' -f2 <<<"$c1") - $(cut -d' ' -f2 <<<"$c0")))
  for k in "${KINDS[@]}"; do
    for f in non2xx connect read write timeout status; do
      [[ $(field "${res[$k]}" "$f") == 0 ]] || die "$k round $round: wrk saw $f=$(field "${res[$k]}" "$f")"
    done
    total=$((total + $(field "${res[$k]}" requests)))
  done
  local n=${#KINDS[@]} bare_req
  bare_req=$(field "${res[bare]}" requests)
  ((dt >= total && dt <= total + n * CONNS)) ||
    die "round $round: upstream served $dt requests, wrks completed $total (allowed: $total..$((total + n * CONNS)))"
  ((dt - db >= bare_req && dt - db <= bare_req + CONNS)) ||
    die "round $round: $((dt - db)) upstream requests without a JWT bearer, the bare proxy sent $bare_req"
  for k in "${KINDS[@]}"; do
    local req
    req=$(field "${res[$k]}" requests)
    # The upstream's ticks shared out by requests; the server's own ticks
    # per its own completed requests.
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$k" "$round" "$req" "$(field "${res[$k]}" duration_us)" \
      "$(field "${res[$k]}" p50_us)" "$(field "${res[$k]}" p99_us)" "$((p1[$k] - p0[$k]))" \
      "$(((u1 - u0) * req / total))" "$req" 0 >>"$WORK/rounds.tsv"
  done
  log "round $round (all at once): $(for k in "${KINDS[@]}"; do printf '%s %s, ' "$k" "$(field "${res[$k]}" requests)"; done)upstream +$dt, without bearer +$((dt - db))"
}

log "warm-up (2 s each, not measured)"
for k in "${KINDS[@]}"; do measure "$k" 0 2; done
: >"$WORK/rounds.tsv"
# The order turns every round (bare bff, bff bare, ... with two servers), so
# that no server always runs first after the other's load.
n=${#KINDS[@]}
for r in $(seq 1 "$ROUNDS"); do
  if [[ $TOGETHER == 1 ]]; then
    measure_together "$r" "$DURATION"
    continue
  fi
  for ((i = 0; i < n; i++)); do
    k=${KINDS[$(((i + r - 1) % n))]}
    measure "$k" "$r" "$DURATION"
  done
done

# Memory and goroutines under a longer load on the BFF.
SOAK_LINE=""
if [[ $SOAK_MIN -gt 0 ]]; then
  secs=$((SOAK_MIN * 60))
  log "soak: ${SOAK_MIN} min of load on the BFF"
  idle_rss0=$(rss_kib "$PID_bff"); idle_g0=$(goroutines "http://$BFF_METRICS/metrics")
  c0=$(upstream_counts)
  ( run_wrk "$secs" "${URL[bff]}" "$COOKIE_FILE" >"$WORK/soak.result" ) &
  soak_pid=$!
  PIDS+=("$soak_pid")
  sleep 10
  rss0=$(rss_kib "$PID_bff"); g0=$(goroutines "http://$BFF_METRICS/metrics")
  : >"$WORK/soak.tsv"
  for ((t = 10; t < secs - 10; t += 10)); do
    printf '%s\t%s\t%s\n' "$t" "$(rss_kib "$PID_bff")" "$(goroutines "http://$BFF_METRICS/metrics")" >>"$WORK/soak.tsv"
    sleep 10
  done
  rss1=$(rss_kib "$PID_bff"); g1=$(goroutines "http://$BFF_METRICS/metrics")
  wait "$soak_pid" || die "soak wrk failed"
  res=$(cat "$WORK/soak.result")
  c1=$(upstream_counts)
  sleep 2
  idle_rss1=$(rss_kib "$PID_bff"); idle_g1=$(goroutines "http://$BFF_METRICS/metrics")
  req=$(field "$res" requests)
  dt=$(($(cut -d' ' -f1 <<<"$c1") - $(cut -d' ' -f1 <<<"$c0")))
  db=$(($(cut -d' ' -f2 <<<"$c1") - $(cut -d' ' -f2 <<<"$c0")))
  for f in non2xx connect read write timeout status; do
    [[ $(field "$res" "$f") == 0 ]] || die "soak: wrk saw $f=$(field "$res" "$f")"
  done
  ((dt >= req && dt <= req + CONNS && db == dt)) || die "soak: upstream +$dt (bearer +$db), wrk $req"
  rss_min=$(cut -f2 "$WORK/soak.tsv" | sort -n | head -1)
  rss_max=$(cut -f2 "$WORK/soak.tsv" | sort -n | tail -1)
  g_min=$(cut -f3 "$WORK/soak.tsv" | sort -n | head -1)
  g_max=$(cut -f3 "$WORK/soak.tsv" | sort -n | tail -1)
  # One sample a minute, to see a trend rather than two end points.
  g_series=$(awk -F'\t' '$1 % 60 == 0 {printf "%s%ss:%s", sep, $1, $3; sep=" "}' "$WORK/soak.tsv")
  SOAK_LINE=$(printf 'soak %d min on the BFF: %d requests, all 2xx with a bearer; RSS %d MiB at 10 s -> %d MiB at %d s (min %d, max %d MiB while loaded; idle %d -> %d MiB); go_goroutines %s -> %s loaded (min %s, max %s; per minute: %s), %s -> %s idle' \
    "$SOAK_MIN" "$req" $((rss0 / 1024)) $((rss1 / 1024)) $((secs - 10)) $((rss_min / 1024)) $((rss_max / 1024)) \
    $((idle_rss0 / 1024)) $((idle_rss1 / 1024)) "$g0" "$g1" "$g_min" "$g_max" "$g_series" "$idle_g0" "$idle_g1")
fi

echo
echo "machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo); $(go version | awk '{print $3}'); $(date -u '+%Y-%m-%d %H:%M UTC')"
if [[ $TOGETHER == 1 ]]; then
  echo "load: wrk -t$THREADS -c$CONNS per server, ${ROUNDS} rounds x ${DURATION} s, all servers loaded at once; servers on CPU $SERVER_CPU, the wrks on CPU $LOAD_CPU"
else
  echo "load: wrk -t$THREADS -c$CONNS, ${ROUNDS} rounds x ${DURATION} s per server, alternating (order turned each round); servers on CPU $SERVER_CPU, wrk on CPU $LOAD_CPU"
fi
python3 - "$WORK/rounds.tsv" "$CLK_TCK" <<'EOF'
import sys, statistics as st
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
tck = int(sys.argv[2])
by = {}
for k, rnd, req, dur, p50, p99, cpu, up, dt, inflight in rows:
    req, dur, p50, p99, cpu, up, dt = map(int, (req, dur, p50, p99, cpu, up, dt))
    by.setdefault(k, []).append(dict(rnd=rnd, rps=req / (dur / 1e6), p50=p50, p99=p99,
        cpu=cpu * 1e6 / tck / dt, up=up * 1e6 / tck / dt, req=req))
print()
print("per round:")
print(f"{'server':<13}{'round':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/req':>12}{'upstream us/req':>17}")
for k, rs in by.items():
    for r in rs:
        print(f"{k:<13}{r['rnd']:>6}{r['rps']:>10.0f}{r['p50']/1000:>9.2f}{r['p99']/1000:>9.2f}{r['cpu']:>12.1f}{r['up']:>17.1f}")
print()
print("median of rounds:")
print(f"{'server':<13}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/req':>12}{'upstream us/req':>17}")
med = {}
for k, rs in by.items():
    m = {f: st.median(r[f] for r in rs) for f in ("rps", "p50", "p99", "cpu", "up")}
    med[k] = m
    print(f"{k:<13}{m['rps']:>10.0f}{m['p50']/1000:>9.2f}{m['p99']/1000:>9.2f}{m['cpu']:>12.1f}{m['up']:>17.1f}")
b = med["bare"]
print()
for k in med:
    if k.startswith("bare"):
        continue
    m = med[k]
    print(f"{k}/bare: req/s {m['rps']/b['rps']:.2f}x, p50 {m['p50']/b['p50']:.2f}x, p99 {m['p99']/b['p99']:.2f}x, CPU/req {m['cpu']/b['cpu']:.2f}x; "
          f"CPU-bound req/s ratio (bare proxy+upstream CPU / {k}+upstream CPU) {(b['cpu']+b['up'])/(m['cpu']+m['up']):.2f}x")
if "oauth2-proxy" in med:
    o = med["oauth2-proxy"]
    print(f"bff/oauth2-proxy: req/s {med['bff']['rps']/o['rps']:.2f}x; CPU-bound req/s ratio {(o['cpu']+o['up'])/(med['bff']['cpu']+med['bff']['up']):.2f}x")
# Paired: each ratio compares two servers measured minutes apart at most,
# which cancels most of a shared host's drift (the upstream's own CPU per
# request, identical work in every row, moves by up to 1.6x between rounds).
print()
print("paired, per round (the medians of these are the headline figures):")
def paired(k, base):
    out = {}
    for f in ("rps", "p99", "cpu"):
        out[f] = [c[f] / a[f] for a, c in zip(by[base], by[k]) if a[f]]
    return out
for k, base in (("bff", "bare"), ("bff", "bare-nocookie"), ("bare", "bare-nocookie"), ("oauth2-proxy", "bare"), ("bff", "oauth2-proxy")):
    if k not in by or base not in by:
        continue
    p = paired(k, base)
    print(f"{k}/{base}: req/s median {st.median(p['rps']):.2f}x (per round {', '.join(f'{x:.2f}' for x in p['rps'])}); "
          f"p99 median {st.median(p['p99']):.2f}x (per round {', '.join(f'{x:.2f}' for x in p['p99'])}); "
          f"CPU/req median {st.median(p['cpu']):.2f}x")
EOF
if [[ -n $SOAK_LINE ]]; then
  echo
  echo "$SOAK_LINE"
fi
