package azcred_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/workload/azcred"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/devgw"
)

// Example gets an Entra access token with the workload's JWT-SVID. In a pod
// beside a SPIRE agent, New needs only the tenant and client ids: the agent's
// socket comes from SPIFFE_ENDPOINT_SOCKET and the authority is Entra. Here a
// development gateway stands in for both, so the example points at it.
func Example() {
	dir, _ := os.MkdirTemp("", "azcred-example")
	defer os.RemoveAll(dir)
	gw, err := devgw.New(dir) // the Entra endpoint and a Workload API
	if err != nil {
		log.Fatal(err)
	}
	defer gw.Close()
	info := gw.Info

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cred, err := azcred.New(ctx, info.TenantID, info.ClientID,
		azcred.WithWorkloadAPIAddr(info.WorkloadSocket),
		azcred.WithAuthorityHost(info.AuthorityHost), // omit for Entra
		azcred.WithInstanceDiscovery(false),          // omit for Entra
		azcred.WithClientOptions(azcore.ClientOptions{Transport: gw.Client}))
	if err != nil {
		log.Fatal(err)
	}
	defer cred.Close()

	// Any Azure SDK client takes cred; GetToken is what they call.
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{info.Scope}})
	if err != nil {
		log.Fatal(err)
	}
	parsed, err := jwt.ParseSigned(tok.Token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		log.Fatal(err)
	}
	var claims struct {
		AzpACR string `json:"azpacr"` // 2: a certificate or federated assertion
		Ver    string `json:"ver"`
	}
	parsed.UnsafeClaimsWithoutVerification(&claims)
	fmt.Printf("azpacr=%s ver=%s\n", claims.AzpACR, claims.Ver)
	// Output: azpacr=2 ver=2.0
}
