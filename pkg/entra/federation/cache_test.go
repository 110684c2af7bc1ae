package federation_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/federation"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/issuermeta"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/oidcissuer"
)

// The tests below present an assertion the verifier has accepted, and so
// remembers, and change what is around it: each change must be honoured on
// the very next exchange, as if the assertion had never been seen.

// wantCode fails unless Verify refused with code, or accepted when code is 0.
func wantCode(t *testing.T, what string, m *federation.Match, err error, code int) {
	t.Helper()
	aerr := refusal(m, err)
	switch {
	case code == 0 && aerr != nil:
		t.Fatalf("%s: refused with %v, want accepted", what, aerr)
	case code != 0 && aerr == nil:
		t.Fatalf("%s: accepted, want AADSTS%d", what, code)
	case code != 0 && aerr.Code != code:
		t.Fatalf("%s: got %v, want AADSTS%d", what, aerr, code)
	}
}

func TestVerifyCacheKeyChange(t *testing.T) {
	w := newWorld(t)
	// The issuer's keys are fetched on every exchange, so each change to
	// them reaches the verifier at once, as new key objects.
	keys := issuermeta.New(issuermeta.WithRootCAs(oidcissuer.Pool(w.is)), issuermeta.WithAllowedNetworks(issuermeta.Loopback...), issuermeta.WithTTL(time.Nanosecond))
	v := federation.NewVerifier(keys, federation.WithClock(func() time.Time { return now }))
	tok := oidcissuer.Sign(t, jose.RS256, w.is.RSA, map[jose.HeaderKey]any{"kid": w.is.RSAKID}, claims(w.is.URL))
	verify := func() (*federation.Match, error) { return v.Verify(context.Background(), tok, w.creds) }
	original := jose.JSONWebKey{Key: &w.is.RSA.PublicKey, KeyID: w.is.RSAKID, Use: "sig"}

	m, err := verify()
	wantCode(t, "first", m, err, 0)
	m, err = verify()
	wantCode(t, "again, the same key refetched", m, err, 0)
	if n := federation.CachedAssertions(v); n != 1 {
		t.Fatalf("%d assertions remembered, want 1", n)
	}

	w.is.Replace(jose.JSONWebKey{Key: &w.attacker.RSA.PublicKey, KeyID: w.is.RSAKID, Use: "sig"})
	m, err = verify()
	wantCode(t, "kid now names another key", m, err, 700027)

	w.is.Replace(jose.JSONWebKey{Key: &w.is.EC.PublicKey, KeyID: w.is.ECKID, Use: "sig"})
	m, err = verify()
	wantCode(t, "key removed", m, err, 7000272)

	w.is.Replace(jose.JSONWebKey{Key: &w.is.RSA.PublicKey, KeyID: w.is.RSAKID, Use: "sig", Algorithm: string(jose.RS512)})
	m, err = verify()
	wantCode(t, "key now declares another algorithm", m, err, 5002730)

	w.is.Replace(original)
	m, err = verify()
	wantCode(t, "key restored", m, err, 0)
}

func TestVerifyCacheExpiry(t *testing.T) {
	clock := now
	w := newWorld(t, federation.WithClock(func() time.Time { return clock }))
	nbf, exp := now.Add(-time.Minute), now.Add(time.Hour)
	tok := oidcissuer.Sign(t, jose.RS256, w.is.RSA, map[jose.HeaderKey]any{"kid": w.is.RSAKID}, claims(w.is.URL, set("nbf", nbf.Unix()), set("exp", exp.Unix())))
	m, err := w.verifier.Verify(context.Background(), tok, w.creds)
	wantCode(t, "first", m, err, 0)

	clock = nbf.Add(-federation.ClockSkew - time.Second) // the clock stepped back
	m, err = w.verifier.Verify(context.Background(), tok, w.creds)
	wantCode(t, "not yet valid", m, err, 700024)

	clock = exp.Add(federation.ClockSkew - time.Second)
	m, err = w.verifier.Verify(context.Background(), tok, w.creds)
	wantCode(t, "expired within the clock skew", m, err, 0)

	clock = exp.Add(federation.ClockSkew + time.Second)
	m, err = w.verifier.Verify(context.Background(), tok, w.creds)
	wantCode(t, "expired", m, err, 700024)
	if !strings.Contains(err.Error(), "expiry time of assertion "+exp.UTC().Format("2006-01-02T15:04:05.0000000Z")) {
		t.Errorf("message %q does not name the expiry", err)
	}
	if n := federation.CachedAssertions(w.verifier); n != 0 {
		t.Errorf("%d expired assertions still remembered", n)
	}
}

func TestVerifyCacheCredentials(t *testing.T) {
	w := newWorld(t)
	tok := oidcissuer.Sign(t, jose.RS256, w.is.RSA, map[jose.HeaderKey]any{"kid": w.is.RSAKID}, claims(w.is.URL))
	m, err := w.verifier.Verify(context.Background(), tok, w.creds)
	wantCode(t, "first", m, err, 0)
	if m.Credential.ID != "2" {
		t.Fatalf("matched credential %q, want 2", m.Credential.ID)
	}
	worker := w.creds[1]
	edited := func(edit func(*store.FederatedCredential)) []store.FederatedCredential {
		c := worker
		edit(&c)
		return []store.FederatedCredential{w.creds[0], c}
	}
	for _, tc := range []struct {
		name  string
		creds []store.FederatedCredential
		code  int
	}{
		{"the matching credential removed", []store.FederatedCredential{w.creds[0], w.creds[2]}, 700213},
		{"no credentials left", []store.FederatedCredential{}, 70025},
		{"its subject changed", edited(func(c *store.FederatedCredential) { c.Subject = workload + "/x" }), 700213},
		{"its audience changed on every credential", []store.FederatedCredential{{ID: "2", Issuer: w.is.URL, Subject: workload, Audiences: []string{"api://other"}}}, 700212},
		{"its issuer changed on every credential", []store.FederatedCredential{{ID: "2", Issuer: w.attacker.URL, Subject: workload, Audiences: []string{audience}}}, 700211},
		{"the credential back", w.creds, 0},
	} {
		m, err := w.verifier.Verify(context.Background(), tok, tc.creds)
		wantCode(t, tc.name, m, err, tc.code)
	}
}

// tamper changes one byte of the decoded part i (1 payload, 2 signature)
// of assertion: at old's first occurrence, or the middle byte when old is
// empty.
func tamper(t *testing.T, assertion string, i int, old, replacement string) string {
	t.Helper()
	parts := strings.Split(assertion, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	if old == "" {
		raw[len(raw)/2] ^= 1
	} else {
		at := bytes.Index(raw, []byte(old))
		if at < 0 || len(old) != len(replacement) {
			t.Fatalf("%q not in %s", old, raw)
		}
		copy(raw[at:], replacement)
	}
	parts[i] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

func TestVerifyCacheTampered(t *testing.T) {
	w := newWorld(t)
	tok := oidcissuer.Sign(t, jose.RS256, w.is.RSA, map[jose.HeaderKey]any{"kid": w.is.RSAKID}, claims(w.is.URL, set("jti", "a")))
	m, err := w.verifier.Verify(context.Background(), tok, w.creds)
	wantCode(t, "valid", m, err, 0)
	parts := strings.Split(tok, ".")
	other := strings.Split(oidcissuer.Sign(t, jose.RS256, w.attacker.RSA, map[jose.HeaderKey]any{"kid": w.is.RSAKID}, claims(w.is.URL, set("jti", "b"))), ".")
	for name, bad := range map[string]string{
		"one byte of the payload":  tamper(t, tok, 1, `"jti":"a"`, `"jti":"b"`),
		"one bit of the signature": tamper(t, tok, 2, "", ""),
		"another token's payload":  parts[0] + "." + other[1] + "." + parts[2],
		"another key's signature":  parts[0] + "." + parts[1] + "." + other[2],
	} {
		for range 2 {
			m, err := w.verifier.Verify(context.Background(), bad, w.creds)
			wantCode(t, name, m, err, 700027)
		}
	}
	m, err = w.verifier.Verify(context.Background(), tok, w.creds)
	wantCode(t, "valid again", m, err, 0)
	if n := federation.CachedAssertions(w.verifier); n != 1 {
		t.Errorf("%d assertions remembered, want only the valid one", n)
	}
}

func TestVerifyCacheBounded(t *testing.T) {
	// ES256 signs fast enough to present more assertions than the bound.
	w := newWorld(t, federation.WithAlgorithms(jose.RS256, jose.ES256))
	sign := func(key any, i int, edits ...func(map[string]any)) string {
		return oidcissuer.Sign(t, jose.ES256, key, map[jose.HeaderKey]any{"kid": w.is.ECKID}, claims(w.is.URL, append(edits, set("jti", fmt.Sprint(i)))...))
	}
	const accepted = 1100
	for i := range accepted {
		m, err := w.verifier.Verify(context.Background(), sign(w.is.EC, i), w.creds)
		wantCode(t, fmt.Sprint("assertion ", i), m, err, 0)
	}
	held := federation.CachedAssertions(w.verifier)
	if held > 1024 || held < 1000 {
		t.Fatalf("%d of %d accepted assertions remembered, want the bound of 1024", held, accepted)
	}
	for i := range 300 {
		for _, bad := range []struct {
			token string
			code  int
		}{
			{sign(w.attacker.EC, i), 700027},
			{sign(w.is.EC, i, set("exp", now.Add(-time.Hour).Unix())), 700024},
			{sign(w.is.EC, i, set("sub", "spiffe://example.org/other/"+fmt.Sprint(i))), 700213},
		} {
			m, err := w.verifier.Verify(context.Background(), bad.token, w.creds)
			wantCode(t, fmt.Sprint("refused assertion ", i), m, err, bad.code)
		}
	}
	if n := federation.CachedAssertions(w.verifier); n != held {
		t.Errorf("refused assertions changed the remembered ones from %d to %d", held, n)
	}
}

func TestVerifyCacheConcurrent(t *testing.T) {
	w := newWorld(t)
	good := oidcissuer.Sign(t, jose.RS256, w.is.RSA, map[jose.HeaderKey]any{"kid": w.is.RSAKID}, claims(w.is.URL))
	other := oidcissuer.Sign(t, jose.RS256, w.is.RSA, map[jose.HeaderKey]any{"kid": w.is.RSAKID}, claims(w.is.URL, set("sub", "spiffe://example.org/other")))
	forged := tamper(t, good, 2, "", "")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				tok, code := good, 0
				switch (g + i) % 3 {
				case 1:
					tok = other
				case 2:
					tok, code = forged, 700027
				}
				m, err := w.verifier.Verify(context.Background(), tok, w.creds)
				if aerr := refusal(m, err); (aerr == nil) != (code == 0) || aerr != nil && aerr.Code != code {
					t.Errorf("goroutine %d, exchange %d: got %v, want code %d", g, i, aerr, code)
					return
				}
			}
		})
	}
	wg.Wait()
}
