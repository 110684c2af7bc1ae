#!/usr/bin/env bash
# A bounded soak on loopback: builds the gateway and runs test/soak against
# a development gateway process for DURATION (default 10m) at half the
# capacity it measures first. The table it prints goes to docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tools/soak
go build -o .tools/soak/spiffe-entra-gateway ./cmd/spiffe-entra-gateway
exec go run ./test/soak -bin .tools/soak/spiffe-entra-gateway -duration "${DURATION:-10m}" "$@"
