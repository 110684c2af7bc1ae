package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestGraphKeyCredentials(t *testing.T) {
	a := newAPI(t)
	tok := a.graphToken()
	_, app, _ := a.do("POST", "/v1.0/applications", tok, map[string]any{"displayName": "with-certificate"})
	path := "/v1.0/applications/" + app["id"].(string)
	der := selfSignedDER(t)
	if status, body, _ := a.do("PATCH", path, tok, map[string]any{"keyCredentials": []any{map[string]any{
		"type": "AsymmetricX509Cert", "usage": "Verify", "displayName": "ci", "key": base64.StdEncoding.EncodeToString(der)}}}); status != 204 {
		t.Fatalf("PATCH keyCredentials: %d %v", status, body)
	}
	_, got, _ := a.do("GET", path, tok, nil)
	keys := got["keyCredentials"].([]any)
	sum := sha1.Sum(der)
	if len(keys) != 1 || keys[0].(map[string]any)["customKeyIdentifier"] != strings.ToUpper(hex.EncodeToString(sum[:])) || keys[0].(map[string]any)["key"] != nil {
		t.Fatalf("keyCredentials %v", keys)
	}
	// Naming the existing key by keyId keeps it; an empty list removes it.
	keyID := keys[0].(map[string]any)["keyId"]
	a.do("PATCH", path, tok, map[string]any{"keyCredentials": []any{map[string]any{"keyId": keyID, "type": "AsymmetricX509Cert", "usage": "Verify"}}})
	if _, got, _ := a.do("GET", path, tok, nil); len(got["keyCredentials"].([]any)) != 1 {
		t.Fatal("the named key was dropped")
	}
	a.do("PATCH", path, tok, map[string]any{"keyCredentials": []any{}})
	if _, got, _ := a.do("GET", path, tok, nil); len(got["keyCredentials"].([]any)) != 0 {
		t.Fatal("the key was kept")
	}
	status, body, _ := a.do("PATCH", path, tok, map[string]any{"keyCredentials": []any{map[string]any{"type": "AsymmetricX509Cert", "usage": "Verify", "key": "bm90IGEgY2VydA=="}}})
	graphError(t, "not a certificate", status, body, 400, "Request_BadRequest", "Key credential")
}

func selfSignedDER(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ci"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func decodeSegment(seg string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(seg) }

// TestGraphCreateWithBadCertificateLeavesNothing creates an application
// whose certificate is not one: the 400 must leave no application behind
// (it used to be stored, with its owner, before the certificate was read).
func TestGraphCreateWithBadCertificateLeavesNothing(t *testing.T) {
	a := newAPI(t)
	tok := a.graphToken()
	status, body, _ := a.do("POST", "/v1.0/applications", tok, map[string]any{"displayName": "half-made",
		"keyCredentials": []any{map[string]any{"type": "AsymmetricX509Cert", "usage": "Verify", "key": "bm90IGEgY2VydGlmaWNhdGU="}}})
	graphError(t, "a certificate that is not one", status, body, 400, "Request_BadRequest", "Key credential")
	status, body, _ = a.do("GET", "/v1.0/applications?$filter="+url.QueryEscape("displayName eq 'half-made'"), tok, nil)
	if status != 200 || len(body["value"].([]any)) != 0 {
		t.Fatalf("the refused application was stored: %d %v", status, body)
	}
}
