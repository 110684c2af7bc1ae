#!/usr/bin/env bash
# Build the pinned golangci-lint into $LINT_DIR/bin (default
# .tools/golangci-lint-<version>/bin), once, and print the binary's path.
# It is built with the local Go toolchain, so it understands the Go version
# go.mod names. As with SPIRE (test/spire/build.sh), it goes through a
# scratch module: the module proxy refuses the version list that
# `go install …@version` asks for.
set -euo pipefail
version=v2.15.0
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${LINT_DIR:-$root/.tools/golangci-lint-$version}
bin=$dir/bin/golangci-lint
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi

mkdir -p "$dir/mod" "$dir/bin"
cd "$dir/mod"
cat >go.mod <<MOD
module lintbuild

go 1.26
MOD
echo "building golangci-lint $version into $dir/bin (a cold build takes a few minutes)" >&2
export GOFLAGS=-mod=mod
go get "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$version" >&2
go build -trimpath -o "$bin" github.com/golangci/golangci-lint/v2/cmd/golangci-lint >&2
echo "$bin"
