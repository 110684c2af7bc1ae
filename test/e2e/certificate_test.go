package e2e

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/gateway"
)

func selfSigned(t *testing.T) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "reporter"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestClientCertificateCredential: azidentity signs its own assertion with
// a certificate registered on the app through the seed.
func TestClientCertificateCredential(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t)
	certFile := filepath.Join(dir, "reporter.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "seed.yaml")
	if err := os.WriteFile(path, []byte(seedFile(`      - name: reporter
        appId: `+seededClient+`
        certificateFiles: [`+certFile+`]
        roleAssignments:
          - {resource: api://reports, role: Reports.Read}
`)), 0o600); err != nil {
		t.Fatal(err)
	}
	info, client := devGateway(t, func(o *gateway.DevOptions) { o.SeedFile = path })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, sendChain := range []bool{false, true} {
		cred, err := azidentity.NewClientCertificateCredential(tenantID, seededClient, []*x509.Certificate{cert}, key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: clientOptions(info, client), DisableInstanceDiscovery: true, SendCertificateChain: sendChain})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"api://reports/.default"}})
		if err != nil {
			t.Fatalf("GetToken (SendCertificateChain=%v): %v", sendChain, err)
		}
		c := verifyAccessTokenFor(t, info, client, tenantID, reportsAPI, tok.Token)
		if c.Azp != seededClient || c.AzpACR != "2" || len(c.Roles) != 1 || c.Roles[0] != "Reports.Read" {
			t.Errorf("claims %+v, want the reporter with acr 2 and Reports.Read", c)
		}
	}

	// A certificate the app does not hold: Entra's AADSTS700027 through the SDK.
	other, otherKey := selfSigned(t)
	cred, err := azidentity.NewClientCertificateCredential(tenantID, seededClient, []*x509.Certificate{other}, otherKey,
		&azidentity.ClientCertificateCredentialOptions{ClientOptions: clientOptions(info, client), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"api://reports/.default"}})
	assertAuthFailure(t, err, 401, "AADSTS700027")
}
