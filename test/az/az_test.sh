#!/usr/bin/env bash
# Debian's azure-cli 2.45 (installed by test/python/install.sh) against a
# development gateway and the sidecar's managed-identity endpoint, run by
# test/e2e/run.sh with the gateway's dev.env loaded, AZURE_FEDERATED_TOKEN_FILE
# naming the sidecar's token file and GATEWAY_IDENTITY_ENDPOINT its endpoint.
#
# az 2.45 validates any authority other than Entra's own hosts at
# login.microsoftonline.com and cannot be told not to, except an ADFS-shaped
# one: the gateway's https://HOST/adfs (its default tenant) is the cloud's
# activeDirectory. microsoftGraphResourceId is both Graph's address and the
# token resource az asks for, so it is the gateway's address too.
set -euo pipefail

: "${AZURE_AUTHORITY_HOST:?run this through test/e2e/run.sh}" "${GATEWAY_IDENTITY_ENDPOINT:?}" "${AZURE_FEDERATED_TOKEN_FILE:?}"
host=${AZURE_AUTHORITY_HOST%/}
tenant=$AZURE_TENANT_ID client=$AZURE_CLIENT_ID subscription=$AZURE_SUBSCRIPTION_ID
token_file=$AZURE_FEDERATED_TOKEN_FILE
svid() { cat "$token_file"; }
# az reads these as its own settings; the test gives it none but its cloud.
unset AZURE_CLIENT_ID AZURE_TENANT_ID AZURE_AUTHORITY_HOST AZURE_FEDERATED_TOKEN_FILE AZURE_SUBSCRIPTION_ID
export AZURE_CORE_COLLECT_TELEMETRY=no AZURE_CORE_NO_COLOR=1 AZURE_CORE_ONLY_SHOW_ERRORS=1 AZURE_CORE_SURVEY_MESSAGE=no
export REQUESTS_CA_BUNDLE # the development CA, from dev.env
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
expect() { # expect WHAT GOT WANT
	[ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
	echo "ok - $1"
}
claim() { # claim JWT NAME
	python3 -c 'import base64,json,sys; p=sys.argv[1].split(".")[1]; print(json.loads(base64.urlsafe_b64decode(p+"="*(-len(p)%4)))[sys.argv[2]])' "$1" "$2"
}

echo "== az $(az version --query '"azure-cli"' -o tsv)"

# A service principal's login with the workload's JWT-SVID.
export AZURE_CONFIG_DIR=$work/sp
az cloud register -n gateway --cloud-config "{\"endpoints\": {\"activeDirectory\": \"$host/adfs\",
	\"activeDirectoryResourceId\": \"https://management.core.windows.net/\", \"activeDirectoryGraphResourceId\": \"$host/\",
	\"resourceManager\": \"$host/\", \"microsoftGraphResourceId\": \"$host/\"}}" >/dev/null
az cloud set -n gateway
az login --service-principal -u "$client" --tenant "$tenant" --federated-token "$(svid)" >/dev/null
expect "az login --service-principal --federated-token: the seeded subscription" "$(az account show --query id -o tsv)" "$subscription"
token=$(az account get-access-token --query accessToken -o tsv)
expect "az account get-access-token: ARM's audience" "$(claim "$token" aud)" "https://management.core.windows.net/"
expect "az account get-access-token: the client" "$(claim "$token" appid)" "$client"
token=$(az account get-access-token --resource-type ms-graph --query accessToken -o tsv)
expect "az account get-access-token --resource-type ms-graph: Graph's audience" "$(claim "$token" aud)" "https://graph.microsoft.com"

# Graph: an application, its service principal and a federated credential.
name=az-e2e-$RANDOM$RANDOM
app=$(az ad app create --display-name "$name" --query appId -o tsv)
[ -n "$app" ] || fail "az ad app create printed no appId"
echo "ok - az ad app create"
expect "az ad app create again: the same application" "$(az ad app create --display-name "$name" --query appId -o tsv)" "$app"
expect "az ad sp create" "$(az ad sp create --id "$app" --query appId -o tsv)" "$app"
expect "az ad sp list --filter servicePrincipalNames/any" \
	"$(az ad sp list --filter "servicePrincipalNames/any(c:c eq '$app')" --query '[].appId' -o tsv)" "$app"
issuer=$(claim "$(svid)" iss) subject=$(claim "$(svid)" sub)
az ad app federated-credential create --id "$app" --parameters "{\"name\": \"workload\", \"issuer\": \"$issuer\",
	\"subject\": \"$subject\", \"audiences\": [\"api://AzureADTokenExchange\"]}" >/dev/null
expect "az ad app federated-credential create, list" \
	"$(az ad app federated-credential list --id "$app" --query '[].subject' -o tsv)" "$subject"

# The new application signs in with the workload's SVID through that credential.
AZURE_CONFIG_DIR=$work/sp2
mkdir -p "$AZURE_CONFIG_DIR"
cp "$work/sp/clouds.config" "$AZURE_CONFIG_DIR/"
az cloud set -n gateway
az login --service-principal -u "$app" --tenant "$tenant" --federated-token "$(svid)" --allow-no-subscriptions >/dev/null
expect "az login as the application az created" "$(claim "$(az account get-access-token --resource-type ms-graph --query accessToken -o tsv)" appid)" "$app"
AZURE_CONFIG_DIR=$work/sp

az ad app federated-credential delete --id "$app" --federated-credential-id workload
expect "az ad app federated-credential delete" "$(az ad app federated-credential list --id "$app" --query 'length(@)' -o tsv)" "0"

# ARM: a user-assigned managed identity (its resource group's location) and
# a federated credential for the workload.
identity=$(az identity create -g e2e -n "$name" -o json)
mi_client=$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["clientId"], d["location"])' <<<"$identity")
expect "az identity create without -l: the group's location" "${mi_client#* }" "westus"
mi_client=${mi_client% *}
az identity federated-credential create -g e2e --identity-name "$name" -n workload --issuer "$issuer" --subject "$subject" \
	--audiences api://AzureADTokenExchange >/dev/null
expect "az identity federated-credential create, list" \
	"$(az identity federated-credential list -g e2e --identity-name "$name" --query '[].subject' -o tsv)" "$subject"

# az login --identity through the sidecar (MSI_ENDPOINT), with a cloud whose
# login endpoint and audiences come from the gateway's /metadata/endpoints.
export AZURE_CONFIG_DIR=$work/mi MSI_ENDPOINT=$GATEWAY_IDENTITY_ENDPOINT
az cloud register -n gateway --cloud-config "{\"endpoints\": {\"resourceManager\": \"$host/\", \"microsoftGraphResourceId\": \"$host/\"}}" >/dev/null
az cloud set -n gateway
expect "az cloud register: the login endpoint from /metadata/endpoints" "$(az cloud show -n gateway --query endpoints.activeDirectory -o tsv)" "$host/adfs"
az login --identity >/dev/null
expect "az login --identity: the seeded subscription" "$(az account show --query id -o tsv)" "$subscription"
expect "az login --identity: Graph through the identity" "$(az ad app list --display-name "$name" --query '[].appId' -o tsv)" "$app"
az login --identity -u "$mi_client" --allow-no-subscriptions >/dev/null
expect "az login --identity -u: the user-assigned identity az created" \
	"$(claim "$(az account get-access-token --query accessToken -o tsv)" appid)" "$mi_client"
unset MSI_ENDPOINT

AZURE_CONFIG_DIR=$work/sp
az identity delete -g e2e -n "$name"
az ad app delete --id "$app"
echo "ok - az identity delete, az ad app delete"
