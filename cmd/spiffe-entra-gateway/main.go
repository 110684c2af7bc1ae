// Command spiffe-entra-gateway lets SPIFFE workloads reach Microsoft Entra ID
// with no secrets: it publishes SPIRE's JWT keys as an OIDC discovery
// provider, serves an Entra-compatible token endpoint, and hands JWT-SVIDs to
// Azure SDKs.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/version"
)

const usage = `Usage: spiffe-entra-gateway <command> [flags]

Commands:
  serve     run the gateway (serve --dev for a zero-configuration development gateway)
  token     fetch a JWT-SVID from the Workload API, print it or exchange it for an Entra token
  app       manage applications and their secrets through the gateway's Graph API
  fic       manage applications' federated identity credentials
  identity  manage user-assigned managed identities and their credentials through the ARM API
  webhook   the mutating admission webhook giving opted-in pods their Azure identity (Kubernetes)
  check     Entra's verdict on an OIDC issuer or a federated assertion, before you deploy
  version   print the version

Run 'spiffe-entra-gateway <command> -h' for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the process exit status: 0 on
// success, 1 when the command failed, 2 on a usage error.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "token":
		return token(args[1:], stdout, stderr)
	case "app":
		return appCommand(args[1:], stdout, stderr)
	case "fic":
		return ficCommand(args[1:], stdout, stderr)
	case "identity":
		return identityCommand(args[1:], stdout, stderr)
	case "webhook":
		return webhookCommand(args[1:], stderr)
	case "check":
		return checkCommand(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "spiffe-entra-gateway", version.String())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "spiffe-entra-gateway: unknown command %q\n\n%s", args[0], usage)
	return 2
}
