#!/usr/bin/env bash
# The slow end-to-end suites (make e2e): the real Node Azure SDKs, pinned in
# test/node/package-lock.json, against a development gateway started as a
# process on free loopback ports; then real SPIRE (built once by
# test/spire/build.sh) in front of the gateway; then the image (make image),
# checked and run from its own root filesystem with Debian's runc.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

make -s build
bin=$root/bin/spiffe-entra-gateway

echo "== node clients: installing the pinned packages"
(cd test/node && npm ci --no-audit --no-fund --loglevel=error)

work=$(mktemp -d)
gw_pid=
sidecar_pid=
cleanup() {
	for pid in $sidecar_pid $gw_pid; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

"$bin" serve --dev --data-dir "$work/data" --entra-addr 127.0.0.1:0 --oidc-addr 127.0.0.1:0 \
	>"$work/gateway.out" 2>"$work/gateway.log" &
gw_pid=$!
for _ in $(seq 1 300); do
	grep -q 'disable instance discovery' "$work/gateway.out" 2>/dev/null && break
	if ! kill -0 "$gw_pid" 2>/dev/null; then cat "$work/gateway.log" >&2; echo "the gateway exited" >&2; exit 1; fi
	sleep 0.1
done
grep -q 'disable instance discovery' "$work/gateway.out" || { cat "$work/gateway.log" >&2; echo "the gateway did not start" >&2; exit 1; }

# The token-file sidecar, as a pod would run it, feeds WorkloadIdentityCredential.
mkdir -p "$work/sidecar"
"$bin" token --write "$work/sidecar/token" --socket "unix://$work/data/workload.sock" 2>"$work/sidecar.log" &
sidecar_pid=$!
for _ in $(seq 1 100); do [ -s "$work/sidecar/token" ] && break; sleep 0.1; done
[ -s "$work/sidecar/token" ] || { cat "$work/sidecar.log" >&2; echo "the sidecar wrote no token" >&2; exit 1; }

echo "== node clients: @azure/identity, @azure/msal-node and @microsoft/microsoft-graph-client"
status=0
(
	set -a
	# shellcheck disable=SC1091
	. "$work/data/dev.env"
	set +a
	export GATEWAY_BIN=$bin
	export AZURE_FEDERATED_TOKEN_FILE=$work/sidecar/token
	unset AZURE_REGIONAL_AUTHORITY_NAME
	cd test/node && node --test --test-concurrency=1 clients.test.mjs graph.test.mjs
) || status=$?
if [ "$status" -ne 0 ]; then
	echo "== gateway log" >&2
	tail -n 50 "$work/gateway.log" >&2
	exit "$status"
fi

echo "== real SPIRE: server, agent and the gateway's discovery provider"
spire_bin=$(test/spire/build.sh)
GATEWAY_TEST_SPIRE_BIN=$spire_bin GATEWAY_BIN=$bin go test -count=1 -v ./test/spire/

echo "== image: built without a container runtime, checked, and run read-only with runc"
make -s image
GATEWAY_IMAGE_LAYOUT=$root/bin/image GATEWAY_TEST_RUNC=$(test/image/runc.sh) go test -count=1 -v -run TestBuiltImage ./test/image/
