#!/usr/bin/env bash
# Builds one identity provider of the interop matrix from the Go module proxy
# and prints the path of its binary. Each provider is a module of its own here
# (go.mod and go.sum pin every version), so nothing of it reaches the BFF's
# go.mod. The binary is cached under
#   ${BFF_PROVIDER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bff-e2e-providers}
# keyed by a hash of the module's files and the Go version: a warm run builds
# nothing, a changed pin builds again.
#
#   e2e/providers/build.sh hydra|dex|zitadel
set -euo pipefail
name="${1:?usage: build.sh hydra|dex|zitadel}"
dir="$(cd "$(dirname "$0")" && pwd)/$name"
[ -f "$dir/go.mod" ] || { echo "build.sh: no provider module $dir" >&2; exit 2; }

case "$name" in
hydra)
	# Hydra stores clients and sessions in SQL; DSN=memory is SQLite, which
	# needs the sqlite build tag (and cgo).
	pkg=github.com/ory/hydra/v2
	tags=sqlite
	;;
dex)
	pkg=github.com/dexidp/dex/cmd/dex
	tags=
	;;
zitadel)
	# Our own main around zitadel/oidc's example OP (see main.go there).
	pkg=.
	tags=
	;;
*)
	echo "build.sh: unknown provider $name" >&2
	exit 2
	;;
esac

cache="${BFF_PROVIDER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bff-e2e-providers}"
key=$( (cd "$dir" && cat go.mod go.sum $(ls *.go | sort) && go env GOVERSION && echo "$pkg $tags") | sha256sum | cut -c1-16)
out="$cache/$name-$key/$name"
if [ ! -x "$out" ]; then
	mkdir -p "$(dirname "$out")"
	echo "build.sh: building $name ($pkg) into $out" >&2
	start=$(date +%s)
	(cd "$dir" && GOFLAGS=-mod=readonly CGO_ENABLED=1 go build -tags "$tags" -o "$out.tmp" "$pkg")
	mv "$out.tmp" "$out"
	echo "build.sh: built $name in $(($(date +%s) - start)) s" >&2
fi
echo "$out"
