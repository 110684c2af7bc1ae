package gateway

import "github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/workload/tokenfile"

// writeDevEnv writes dev.env, a file a shell can source to point the Azure
// SDKs and SPIFFE tools at the development gateway. It holds the development
// client secret, so only its owner may read it.
func writeDevEnv(info DevInfo) error {
	return tokenfile.WriteEnv(info.EnvFile,
		"Written by 'spiffe-entra-gateway serve --dev'. Development use only.\nLoad it with: . "+info.EnvFile,
		[][2]string{
			{"AZURE_TENANT_ID", info.TenantID},
			{"AZURE_CLIENT_ID", info.ClientID},
			{"AZURE_SUBSCRIPTION_ID", info.SubscriptionID},
			{"AZURE_AUTHORITY_HOST", info.AuthorityHost},
			{"AZURE_FEDERATED_TOKEN_FILE", info.TokenFile},
			{"SPIFFE_ENDPOINT_SOCKET", info.WorkloadSocket},
			{"SSL_CERT_FILE", info.CAFile},
			{"NODE_EXTRA_CA_CERTS", info.CAFile},
			{"REQUESTS_CA_BUNDLE", info.CAFile},
			{"GATEWAY_DEV_SCOPE", info.Scope},
			{"GATEWAY_DEV_RESOURCE_APP_ID", info.ResourceAppID},
			{"GATEWAY_DEV_CLIENT_SECRET", info.ClientSecret},
		}, 0o600)
}
