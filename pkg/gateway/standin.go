package gateway

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"strings"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/config"
)

// EntraHostNames are the names a gateway stands in for Microsoft's under
// entra.stand_in_for_entra (serve --dev --entra-host-names): Entra's own
// (login.microsoftonline.com, and login.windows.net and sts.windows.net,
// which tokens and instance discovery name) and the ARM and Graph hosts az
// and the SDKs call by default.
var EntraHostNames = []string{"login.microsoftonline.com", "login.windows.net", "sts.windows.net", "management.azure.com", "graph.microsoft.com"}

// checkEntraHostNames refuses a serving certificate (leaf, as servingtls
// loaded it) that names one of
// Microsoft's hosts unless the configuration says, with
// entra.stand_in_for_entra, that the gateway is to answer as them; then it
// says so loudly. Clients that resolve those names to the gateway and trust
// its certificate hand it their credentials for Entra: a choice for a
// development machine or a CI runner, never one to make by accident.
func checkEntraHostNames(leaf *x509.Certificate, cfg config.Config, logger *slog.Logger) error {
	var named []string
	for _, n := range EntraHostNames {
		if leaf.VerifyHostname(n) == nil {
			named = append(named, n)
		}
	}
	switch {
	case len(named) > 0 && !cfg.Entra.StandInForEntra:
		return fmt.Errorf("tls.cert_file %s names %s, Microsoft's own hosts: a gateway answers as them only with "+
			"entra.stand_in_for_entra: true, for development and CI behind a private hosts file; otherwise use a certificate for the gateway's own names",
			cfg.TLS.CertFile, strings.Join(named, ", "))
	case cfg.Entra.StandInForEntra:
		logger.Warn("STANDING IN FOR MICROSOFT ENTRA ID (entra.stand_in_for_entra): the certificate names "+strings.Join(named, ", ")+
			"; every client that resolves those names to this gateway and trusts its CA sends it its credentials. "+
			"For development and CI only, behind a private hosts file.", "names", named)
	}
	return nil
}
