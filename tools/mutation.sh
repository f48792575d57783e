#!/usr/bin/env bash
# Mutation testing of the security-critical packages with gremlins (pinned),
# using each package's own tests: the score says how many injected
# regressions the tests a developer runs first would catch.
#
#   tools/mutation.sh                 # every package below (slow: see README)
#   tools/mutation.sh ./proxy ./keys  # some of them
#   MUTATION_WORKERS=2 tools/mutation.sh ./server   # two mutants at a time
#   MUTATION_ARGS="-E reload.go" MUTATION_TAG=part tools/mutation.sh ./server
#                       # more gremlins flags; log tools/mutation/server-part.log
#
# Writes tools/mutation/<pkg>.log (every mutant and its status) and prints
# one line per package: killed, lived, timed out, not covered, efficacy.
# A LIVED mutant is a regression no package test notices: kill it with a
# test, or record in tools/mutation/EQUIVALENT why it cannot change behaviour.
# Not part of ./test.sh: it takes tens of minutes on 2 CPUs.
set -euo pipefail
cd "$(dirname "$0")/.."

GREMLINS_VERSION=v0.6.0
packages=("$@")
if [ ${#packages[@]} -eq 0 ]; then
	packages=(./crypto ./keys ./session ./oauth ./proxy ./server ./revocation ./cluster ./config)
fi

bin="$(go env GOPATH)/bin/gremlins-$GREMLINS_VERSION"
if [ ! -x "$bin" ]; then
	echo "== installing gremlins $GREMLINS_VERSION (Go module proxy)"
	GOBIN="$(mktemp -d)" sh -c "go install github.com/go-gremlins/gremlins/cmd/gremlins@$GREMLINS_VERSION && mv \"\$GOBIN/gremlins\" '$bin'"
fi

mkdir -p tools/mutation
printf '%-14s %7s %6s %9s %12s %9s\n' package killed lived timed_out not_covered efficacy
for pkg in "${packages[@]}"; do
	name=$(basename "$pkg")
	log="tools/mutation/$name${MUTATION_TAG:+-$MUTATION_TAG}.log"
	# The timeout is a multiple of how long the coverage run took, so that
	# run must really run the tests: a cached result (a second or so) made
	# every mutant of a slow package "time out" while it was still compiling.
	# -count=1 applies to the mutants' runs too, which are never cached anyway.
	# The multiple is generous: a mutant whose tests merely run slowly on a
	# loaded machine must not count as caught.
	GOFLAGS="${GOFLAGS:+$GOFLAGS }-count=1" "$bin" unleash "$pkg" --workers "${MUTATION_WORKERS:-1}" \
		--timeout-coefficient 20 ${MUTATION_ARGS:-} >"$log" 2>&1 || true
	count() { grep -cE "^[[:space:]]+$1 " "$log" || true; }
	killed=$(count KILLED); lived=$(count LIVED); timed=$(count "TIMED OUT"); nc=$(count "NOT COVERED")
	eff=$(awk -v k="$killed" -v l="$lived" 'BEGIN { if (k + l == 0) print "-"; else printf "%.1f%%", 100 * k / (k + l) }')
	printf '%-14s %7s %6s %9s %12s %9s\n' "$name" "$killed" "$lived" "$timed" "$nc" "$eff"
done
echo "survivors: grep -h LIVED tools/mutation/*.log"
