#!/usr/bin/env bash
# Clients with their defaults against a development gateway answering as
# Entra's own host names (serve --dev --entra-host-names), run by
# test/e2e/run.sh. Everything runs inside a network and mount namespace of
# its own (unshare, as root): only loopback is up, so no Microsoft host is
# reachable; a private hosts file bound over /etc/hosts sends Entra's, ARM's
# and Graph's names to 127.0.0.1, where the gateway listens on port 443;
# 169.254.169.254 is added to loopback for the sidecar's IMDS endpoint.
# The clients are given the development CA to trust and the tenant, client
# id and token file, and no authority, discovery or endpoint setting.
#   test/hostnames/run.sh GATEWAY_BIN
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
bin=${1:?usage: test/hostnames/run.sh GATEWAY_BIN}

if [ -z "${GATEWAY_IN_NAMESPACE:-}" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "test/hostnames/run.sh: root is needed for unshare --net --mount" >&2
		exit 1
	fi
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	go test -c -o "$work/hostnames.test" ./test/hostnames/
	GATEWAY_IN_NAMESPACE=$work exec unshare --net --mount "$0" "$bin"
fi

work=$GATEWAY_IN_NAMESPACE
ip link set lo up
ip addr add 169.254.169.254/32 dev lo
printf '127.0.0.1 localhost login.microsoftonline.com login.windows.net sts.windows.net management.azure.com graph.microsoft.com\n::1 localhost\n' >"$work/hosts"
mount --bind "$work/hosts" /etc/hosts

pids=()
cleanup() {
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
}
trap cleanup EXIT

"$bin" serve --dev --entra-host-names --data-dir "$work/data" --entra-addr 127.0.0.1:443 --oidc-addr 127.0.0.1:0 \
	>"$work/gateway.out" 2>"$work/gateway.log" &
pids+=($!)
for _ in $(seq 1 300); do
	grep -q 'disable instance discovery' "$work/gateway.out" 2>/dev/null && break
	sleep 0.1
done
grep -q 'STANDING IN FOR MICROSOFT ENTRA ID' "$work/gateway.log" || { cat "$work/gateway.log" >&2; echo "the gateway did not start or did not warn" >&2; exit 1; }

set -a
# shellcheck disable=SC1091
. "$work/data/dev.env"
set +a
# No authority: the clients' default, Entra's own host name, is the gateway here.
unset AZURE_AUTHORITY_HOST AZURE_REGIONAL_AUTHORITY_NAME
export AZURE_FEDERATED_TOKEN_FILE=$work/token

"$bin" token --write "$AZURE_FEDERATED_TOKEN_FILE" --identity-endpoint 169.254.169.254:80 \
	--tenant "$AZURE_TENANT_ID" --client-id "$AZURE_CLIENT_ID" 2>"$work/sidecar.log" &
pids+=($!)
for _ in $(seq 1 100); do [ -s "$AZURE_FEDERATED_TOKEN_FILE" ] && break; sleep 0.1; done

status=0
run() {
	"$@" || { status=$?; echo "== gateway log" >&2; tail -n 30 "$work/gateway.log" >&2; echo "== sidecar log" >&2; tail -n 10 "$work/sidecar.log" >&2; exit "$status"; }
}
echo "== go: azidentity with its defaults"
run env GATEWAY_TEST_ENTRA_HOSTNAMES=1 "$work/hostnames.test" -test.v -test.count=1
echo "== node: @azure/identity with its defaults"
run sh -c 'cd test/node && node hostnames.mjs'
echo "== python: azure-identity 1.13 and MSAL 1.21 with their defaults"
run /usr/bin/python3 -W ignore::ResourceWarning test/hostnames/clients.py
echo "== az 2.45 with its default cloud"
export AZURE_CONFIG_DIR=$work/az AZURE_CORE_COLLECT_TELEMETRY=no AZURE_CORE_ONLY_SHOW_ERRORS=1
run az login --service-principal -u "$AZURE_CLIENT_ID" --tenant "$AZURE_TENANT_ID" --federated-token "$(cat "$AZURE_FEDERATED_TOKEN_FILE")" -o none
[ "$(az account show --query id -o tsv)" = "$AZURE_SUBSCRIPTION_ID" ] || { echo "FAIL - az login --service-principal: not the seeded subscription" >&2; exit 1; }
echo "ok - az login --service-principal --federated-token (AzureCloud)"
run az account get-access-token -o none
echo "ok - az account get-access-token"
run az login --identity -o none
[ "$(az account show --query user.assignedIdentityInfo -o tsv)" = "MSI" ] || { echo "FAIL - az login --identity" >&2; exit 1; }
echo "ok - az login --identity (IMDS at 169.254.169.254)"
cd "$root"
