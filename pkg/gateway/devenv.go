package gateway

import (
	"fmt"
	"os"
	"strings"
)

// writeDevEnv writes dev.env, a file a shell can source to point the Azure
// SDKs and SPIFFE tools at the development gateway. It holds the development
// client secret, so only its owner may read it.
func writeDevEnv(info DevInfo) error {
	vars := [][2]string{
		{"AZURE_TENANT_ID", info.TenantID},
		{"AZURE_CLIENT_ID", info.ClientID},
		{"AZURE_AUTHORITY_HOST", info.AuthorityHost},
		{"SPIFFE_ENDPOINT_SOCKET", info.WorkloadSocket},
		{"SSL_CERT_FILE", info.CAFile},
		{"NODE_EXTRA_CA_CERTS", info.CAFile},
		{"REQUESTS_CA_BUNDLE", info.CAFile},
		{"GATEWAY_DEV_SCOPE", info.Scope},
		{"GATEWAY_DEV_CLIENT_SECRET", info.ClientSecret},
	}
	var b strings.Builder
	b.WriteString("# Written by 'spiffe-entra-gateway serve --dev'. Development use only.\n# Load it with: . " + info.EnvFile + "\n")
	for _, v := range vars {
		fmt.Fprintf(&b, "export %s=%s\n", v[0], shellQuote(v[1]))
	}
	tmp := info.EnvFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", info.EnvFile, err)
	}
	if err := os.Rename(tmp, info.EnvFile); err != nil {
		return fmt.Errorf("write %s: %w", info.EnvFile, err)
	}
	return nil
}

// shellQuote quotes s for POSIX shells.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
