#!/usr/bin/env bash
# Build pinned SPIRE server, agent and oidc-discovery-provider into
# $SPIRE_DIR/bin (default .tools/spire-v1.15.3/bin), once. Prints the bin
# directory. A cold build takes 10-15 minutes on two cores; the Go build
# cache makes later ones take seconds, and an existing set is reused as is.
#
# SPIRE is built through a scratch module because the module proxy refuses
# the version list `go install …@version` asks for. Its ejbca dependency is
# replaced by v1.0.2, which the proxy serves and which is API-compatible.
set -euo pipefail
version=v1.15.3
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${SPIRE_DIR:-$root/.tools/spire-$version}
bin=$dir/bin
tools=(spire-server spire-agent oidc-discovery-provider)

have_all() { for t in "${tools[@]}"; do [ -x "$bin/$t" ] || return 1; done; }
if have_all; then echo "$bin"; exit 0; fi

mkdir -p "$dir/mod" "$bin"
cd "$dir/mod"
cat >go.mod <<MOD
module spirebuild

go 1.26

require github.com/spiffe/spire $version

replace github.com/Keyfactor/ejbca-go-client-sdk => github.com/Keyfactor/ejbca-go-client-sdk v1.0.2
MOD
cat >tools.go <<'SRC'
//go:build tools

package tools

import (
	_ "github.com/spiffe/spire/cmd/spire-agent"
	_ "github.com/spiffe/spire/cmd/spire-server"
	_ "github.com/spiffe/spire/support/oidc-discovery-provider"
)
SRC
echo "building SPIRE $version into $bin (a cold build takes 10-15 minutes)" >&2
export GOFLAGS=-mod=mod
go mod tidy >&2
go build -trimpath -ldflags='-s -w' -o "$bin/" \
	github.com/spiffe/spire/cmd/spire-server \
	github.com/spiffe/spire/cmd/spire-agent \
	github.com/spiffe/spire/support/oidc-discovery-provider >&2
have_all
echo "$bin"
