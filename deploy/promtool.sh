#!/usr/bin/env bash
# Prints the path of a promtool for checking alerts.yml: $PROMTOOL when set,
# else the one in Debian's prometheus package, downloaded with apt-get and
# unpacked (never installed: no service, no user) into
#   ${BFF_PROMTOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bff-promtool}
# once; a warm run asks apt nothing. Runs apt-get update first when apt
# has no package lists yet (root only).
#
#   deploy/promtool.sh
set -euo pipefail
if [ -n "${PROMTOOL:-}" ]; then
	echo "$PROMTOOL"
	exit 0
fi
cache="${BFF_PROMTOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bff-promtool}"
out="$cache/promtool"
if [ -x "$out" ]; then
	echo "$out"
	exit 0
fi
for tool in apt-get dpkg-deb; do
	command -v "$tool" >/dev/null 2>&1 || { echo "promtool.sh: $tool not found: fetch promtool by hand and set PROMTOOL" >&2; exit 1; }
done
mkdir -p "$cache"
tmp=$(mktemp -d "$cache/tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# As root, apt would download as its sandbox user _apt, who cannot write
# under a home directory: download as root (one .deb, checked by apt as usual).
sandbox=()
[ "$(id -u)" != 0 ] || sandbox=(-o APT::Sandbox::User=root)
download() { (cd "$tmp" && apt-get download -q "${sandbox[@]}" prometheus >&2); }
if ! download; then
	if [ "$(id -u)" != 0 ]; then
		echo "promtool.sh: apt-get download prometheus failed; as root, apt-get update and run again, or set PROMTOOL" >&2
		exit 1
	fi
	echo "promtool.sh: apt-get update" >&2
	apt-get update -qq >&2
	download
fi
dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"
"$tmp/x/usr/bin/promtool" --version >/dev/null
mv "$tmp/x/usr/bin/promtool" "$out.tmp"
mv "$out.tmp" "$out"
echo "promtool.sh: $(basename "$tmp"/prometheus_*.deb) unpacked; promtool in $out" >&2
echo "$out"
