package entra_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// testCert is the certificate registered on the worker app, and another
// one that is not.
var testCert, strangerCert = newCert(), newCert()

type certKey struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

func newCert() certKey {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "worker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return certKey{key, cert}
}

// assertion signs a client assertion as ClientCertificateCredential does;
// edit changes the claims before signing.
func (c certKey) assertion(t *testing.T, aud string, edit func(map[string]any), header ...string) string {
	t.Helper()
	now := time.Now()
	claims := map[string]any{"aud": aud, "iss": clientID, "sub": clientID, "jti": "j1", "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
	if edit != nil {
		edit(claims)
	}
	s256 := sha256.Sum256(c.cert.Raw)
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if len(header) == 0 {
		opts = opts.WithHeader("x5t#S256", base64.RawURLEncoding.EncodeToString(s256[:]))
	} else {
		opts = opts.WithHeader(jose.HeaderKey(header[0]), header[1])
	}
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: c.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(sg).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
func TestCertificateAssertion(t *testing.T) {
	f := newFixture(t)
	path := "/" + tenantID + "/oauth2/v2.0/token"
	for name, assertion := range map[string]string{
		"x5t#S256": testCert.assertion(t, f.srv.URL+path, nil),
		"x5t": testCert.assertion(t, f.srv.URL+path, nil, "x5t", func() string {
			s := sha1.Sum(testCert.cert.Raw)
			return base64.RawURLEncoding.EncodeToString(s[:])
		}()),
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := f.post(t, path, ccForm("client_secret", "", "client_assertion", assertion, "client_assertion_type", jwtBearer), nil)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d body %v", resp.StatusCode, body)
			}
			_, c := claimsOf(t, f, body["access_token"].(string))
			if c["azp"] != clientID || c["azpacr"] != "2" {
				t.Errorf("azp %v azpacr %v, want the worker with acr 2", c["azp"], c["azpacr"])
			}
			if f.verifier.creds != nil {
				t.Error("a certificate assertion reached the federation verifier")
			}
		})
	}
}
