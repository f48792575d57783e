#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs what is missing
# (Go modules, the test identity provider's npm packages), checks formatting and
# vet, runs all tests with the race detector, then each fuzz target briefly.
# Under CI=true a missing part fails the run; nothing is silently skipped.
set -euo pipefail
cd "$(dirname "$0")"

# A count, not a duration: with a duration, Go 1.26's fuzz coordinator can fail a
# target with a bare "context deadline exceeded" as the time runs out, having
# found nothing (golang/go#75804, fixed in Go 1.27). A count has no deadline.
# 10000 runs take 1-15 s per target here (FuzzConfig is the slow one).
FUZZTIME="${FUZZTIME:-10000x}"

# Debian packages the tests drive: Chromium (browser suite), nginx (load
# balancer in the cluster suite), systemd-analyze (deploy unit check), Node.js
# and npm (the test identity provider).
missing=()
command -v go >/dev/null 2>&1 || { echo "test.sh: Go 1.26 is required" >&2; exit 1; }
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "== installing ${missing[*]} (apt-get)"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	else
		echo "test.sh: missing ${missing[*]}; install them (Debian: apt-get install ${missing[*]}) and run again" >&2
		exit 1
	fi
fi

echo "== Go modules"
go mod download

echo "== identity provider for the end-to-end tests (oidc-provider, pinned in e2e/idp/package-lock.json)"
if [ ! -d e2e/idp/node_modules/oidc-provider ]; then
	(cd e2e/idp && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "== identity providers of the interop matrix (pinned in e2e/providers/*/go.mod; built once, cached)"
for provider in hydra dex zitadel; do
	e2e/providers/build.sh "$provider" >/dev/null
done

echo "== promtool for deploy/alerts.yml (Debian's prometheus package unpacked, not installed; cached)"
deploy/promtool.sh >/dev/null

echo "== release build (nfpm pinned in release/release.sh, cached; warms the Go build cache for TestRelease)"
(out=$(mktemp -d) && trap 'rm -rf "$out"' EXIT && release/release.sh -o "$out" >/dev/null)

echo "== gofmt, go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './e2e/idp/*'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...
go vet -tags pprof .   # pprof.go, the profiling build bench/profile.sh uses

echo "== tests (race detector on)"
go test -race -count=1 -timeout 15m ./...

echo "== fuzz targets, -fuzztime=$FUZZTIME each"
for target in $(grep -rhoE '^func (Fuzz[A-Za-z0-9_]+)' --include='*_test.go' . | sed 's/^func //' | sort -u); do
	pkg=$(grep -rlE "^func ${target}\(" --include='*_test.go' . | head -n1 | xargs dirname)
	echo "-- $pkg $target"
	go test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" "$pkg"
done
echo "== all tests passed"
