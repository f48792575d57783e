#!/usr/bin/env bash
# CPU and allocation profiles of the proxied path, BFF next to the bare
# proxy: the same stack as bench/run.sh, with the BFF built with -tags pprof
# (the same `bff serve`, plus /debug/pprof/ on its metrics_listen port). For
# each server a 20 s wrk load, during which a 15 s CPU profile is taken; then the
# allocation profile (cumulative since start). Writes bench/profiles/:
#   NAME.cpu.pprof, NAME.allocs.pprof   for `go tool pprof`
#   NAME.cpu.top.txt, NAME.allocs.top.txt   the top functions, as text
#
# Usage: bench/profile.sh [--connections N] [--threads N] [--sessions N]
#                         [--cache-entries N] [--out DIR]
#
# --sessions and --cache-entries as in run.sh (a population of minted
# sessions, e.g. --cache-entries -1 to profile a cookie opened on every
# request); --out writes the profiles elsewhere than bench/profiles/.
set -euo pipefail

CONNS=32
THREADS=2
SESSIONS=0
CACHE_ENTRIES=4096
OUT=
while [[ $# -gt 0 ]]; do
  case $1 in
    --connections) CONNS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --sessions) SESSIONS=$2; shift 2 ;;
    --cache-entries) CACHE_ENTRIES=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "profile.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
OUT=${OUT:-$BENCH_DIR/profiles}
mkdir -p "$OUT"

need_tools
BFF_PROF=1
build_all
BFF_PPROF=127.0.0.1:$(free_port)
BARE_PPROF=127.0.0.1:$(free_port)
start_stack
if ((SESSIONS > 0)); then
  mint_population "$SESSIONS"
  log "population: $SESSIONS sessions, session.cache_entries $CACHE_ENTRIES"
fi
probe bare "$BARE_URL/api/items" "$COOKIE_FILE"
probe bff "$BFF_URL/api/items" "$COOKIE_FILE"

# profile NAME URL PPROF_ADDR
profile() {
  local name=$1 url=$2 addr=$3
  log "$name: 20 s load, 15 s CPU profile"
  ( run_wrk 20 "$url" "$COOKIE_FILE" >"$WORK/$name.result" ) &
  local w=$!
  PIDS+=("$w")
  sleep 3
  curl -sf -o "$OUT/$name.cpu.pprof" "http://$addr/debug/pprof/profile?seconds=15" || die "$name: CPU profile failed"
  wait "$w" || die "$name: wrk failed"
  [[ $(field "$(cat "$WORK/$name.result")" non2xx) == 0 ]] || die "$name: non-2xx responses under load"
  curl -sf -o "$OUT/$name.allocs.pprof" "http://$addr/debug/pprof/allocs" || die "$name: allocs profile failed"
  go tool pprof -top -nodecount=35 "$OUT/$name.cpu.pprof" >"$OUT/$name.cpu.top.txt" 2>/dev/null
  go tool pprof -top -nodecount=35 -sample_index=alloc_space "$OUT/$name.allocs.pprof" >"$OUT/$name.allocs.top.txt" 2>/dev/null
  log "$name: $(field "$(cat "$WORK/$name.result")" requests) requests; wrote $OUT/$name.*"
}

profile bare "$BARE_URL/api/items?page=2" "$BARE_PPROF"
profile bff "$BFF_URL/api/items?page=2" "$BFF_PPROF"
