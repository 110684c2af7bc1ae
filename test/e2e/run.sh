#!/usr/bin/env bash
# The slow end-to-end suites (make e2e): the real Node Azure SDKs, pinned in
# test/node/package-lock.json, Debian's Python Azure clients and az
# (installed by test/python/install.sh), against a development gateway started
# as a process on free loopback ports and the sidecar's managed-identity
# endpoint; then real SPIRE (built once by
# test/spire/build.sh) in front of the gateway; then the image (make image),
# checked, unpacked with Debian's umoci and run read-only with runc; then a real
# Kubernetes control plane (built once by test/k8s/build.sh, in the background
# from the start) that installs the chart and applies the kustomizations.
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
k8s_build_pid=
cleanup() {
	# The build runs in a session of its own: its go processes stop with it.
	[ -z "$k8s_build_pid" ] || kill -- "-$k8s_build_pid" 2>/dev/null || true
	for pid in $sidecar_pid $gw_pid $k8s_build_pid; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

# The control plane's cold build is the longest step: it starts first, in the
# background, once etcd is installed (apt is not run by two steps at once).
test/k8s/build.sh etcd
setsid test/k8s/build.sh >"$work/k8s-build.out" 2>"$work/k8s-build.log" &
k8s_build_pid=$!

"$bin" serve --dev --data-dir "$work/data" --entra-addr 127.0.0.1:0 --oidc-addr 127.0.0.1:0 \
	>"$work/gateway.out" 2>"$work/gateway.log" &
gw_pid=$!
for _ in $(seq 1 300); do
	grep -q 'disable instance discovery' "$work/gateway.out" 2>/dev/null && break
	if ! kill -0 "$gw_pid" 2>/dev/null; then cat "$work/gateway.log" >&2; echo "the gateway exited" >&2; exit 1; fi
	sleep 0.1
done
grep -q 'disable instance discovery' "$work/gateway.out" || { cat "$work/gateway.log" >&2; echo "the gateway did not start" >&2; exit 1; }

# loadenv exports the development gateway's dev.env, in subshells only: the
# SPIRE suite below must not inherit its CA as the only trusted root.
loadenv() {
	set -a
	# shellcheck disable=SC1091
	. "$work/data/dev.env"
	set +a
	unset AZURE_REGIONAL_AUTHORITY_NAME
}

# The sidecar, as a pod would run it: the token file feeds
# WorkloadIdentityCredential, the managed-identity endpoint
# ManagedIdentityCredential; its environment file says where that is.
mkdir -p "$work/sidecar"
(
	loadenv
	exec "$bin" token --write "$work/sidecar/token" --socket "unix://$work/data/workload.sock" \
		--identity-endpoint 127.0.0.1:0 --env-file "$work/sidecar/env" \
		--tenant "$AZURE_TENANT_ID" --client-id "$AZURE_CLIENT_ID" --authority-host "$AZURE_AUTHORITY_HOST"
) 2>"$work/sidecar.log" &
sidecar_pid=$!
for _ in $(seq 1 100); do [ -s "$work/sidecar/token" ] && [ -s "$work/sidecar/env" ] && break; sleep 0.1; done
[ -s "$work/sidecar/token" ] && [ -s "$work/sidecar/env" ] || { cat "$work/sidecar.log" >&2; echo "the sidecar wrote no token or environment file" >&2; exit 1; }
GATEWAY_IDENTITY_ENDPOINT=$(. "$work/sidecar/env" && echo "$IDENTITY_ENDPOINT")
GATEWAY_IDENTITY_HEADER=$(. "$work/sidecar/env" && echo "$IDENTITY_HEADER")
export GATEWAY_IDENTITY_ENDPOINT GATEWAY_IDENTITY_HEADER

# stop_on_failure ends the run with the last suite's status, after the
# gateway's log, when that suite failed.
stop_on_failure() {
	if [ "$status" -ne 0 ]; then
		echo "== gateway log" >&2
		tail -n 50 "$work/gateway.log" >&2
		exit "$status"
	fi
}

echo "== node clients: @azure/identity, @azure/msal-node and @microsoft/microsoft-graph-client"
status=0
(
	loadenv
	export GATEWAY_BIN=$bin
	export AZURE_FEDERATED_TOKEN_FILE=$work/sidecar/token
	cd test/node && node --test --test-concurrency=1 clients.test.mjs graph.test.mjs identity.test.mjs
) || status=$?
stop_on_failure

echo "== python clients: Debian's azure-identity and MSAL"
test/python/install.sh
(
	loadenv
	export AZURE_FEDERATED_TOKEN_FILE=$work/sidecar/token
	# Debian's interpreter: the one that sees Debian's packages.
	cd test/python && /usr/bin/python3 -W ignore::ResourceWarning -m unittest -v clients_test
) || status=$?
stop_on_failure

echo "== az: Debian's azure-cli against the gateway and the managed-identity endpoint"
(
	loadenv
	export AZURE_FEDERATED_TOKEN_FILE=$work/sidecar/token
	test/az/az_test.sh
) || status=$?
stop_on_failure

echo "== Entra's own host names: clients with their defaults, in a namespace of their own"
test/hostnames/run.sh "$bin"

echo "== real SPIRE: server, agent and the gateway's discovery provider"
spire_bin=$(test/spire/build.sh)
GATEWAY_TEST_SPIRE_BIN=$spire_bin GATEWAY_BIN=$bin go test -count=1 -v ./test/spire/

echo "== image: built without a container runtime, checked, unpacked with umoci and run read-only with runc"
make -s image
eval "$(test/image/tools.sh)"
GATEWAY_IMAGE_LAYOUT=$root/bin/image go test -count=1 -v -run TestBuiltImage ./test/image/

echo "== a real control plane: the chart and the kustomizations on kube-apiserver"
if ! wait "$k8s_build_pid"; then
	cat "$work/k8s-build.log" >&2
	echo "test/k8s/build.sh failed" >&2
	exit 1
fi
k8s_build_pid=
GATEWAY_TEST_K8S_BIN=$(cat "$work/k8s-build.out") GATEWAY_BIN=$bin go test -count=1 -v ./test/k8s/...
