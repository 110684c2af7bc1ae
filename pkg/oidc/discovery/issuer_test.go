package discovery_test

import (
	"strings"
	"testing"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/oidc/discovery"
)

func TestStatusAndStaleness(t *testing.T) {
	f := newFixture(t, "https://oidc.example.org", []discovery.Option{discovery.WithStaleness(time.Minute)})
	if st := f.issuer.Status(); st.Ready || !strings.Contains(st.Reason, "no keys") {
		t.Fatalf("before keys: %+v", st)
	}
	f.publish(t, newRSA(t, "a", 2048))
	f.src.setUnavailable(time.Now().Add(-30*time.Second), "agent gone")
	if st := f.issuer.Status(); !st.Ready || st.Stale {
		t.Fatalf("within the bound: %+v", st)
	}
	f.src.setUnavailable(time.Now().Add(-2*time.Minute), "agent gone")
	st := f.issuer.Status()
	if st.Ready || !st.Stale || !strings.Contains(st.Reason, "agent gone") || !strings.Contains(st.Reason, "longer than 1m0s") {
		t.Fatalf("past the bound: %+v", st)
	}
	// Stale keys are served all the same.
	if resp := f.do(request{target: "https://oidc.example.org/keys"}); resp.StatusCode != 200 {
		t.Fatalf("keys while stale: %d", resp.StatusCode)
	}
}

func TestEntraChecks(t *testing.T) {
	f := newFixture(t, "http://oidc.example.org", nil)
	f.publish(t, newRSA(t, "small", 1024), newEC(t, "ec"), newRSA(t, "good", 2048))
	w := strings.Join(f.issuer.Status().Warnings, "\n")
	for _, want := range []string{
		"issuer http://oidc.example.org is not https",
		"key small is RSA-1024: Entra needs RSA keys of at least 2048 bits",
		`key ec is ES256: Entra rejects ES256 JWT-SVIDs (AADSTS5002738): sign JWT-SVIDs with RSA: jwt_key_type = "rsa-2048"`,
	} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings lack %q:\n%s", want, w)
		}
	}
	if strings.Contains(w, "key good") {
		t.Errorf("a good key was warned about:\n%s", w)
	}

	g := newFixture(t, "https://oidc.example.org", nil)
	var many []signingKey
	base := newRSA(t, "k", 2048)
	for i := range 101 {
		k := base
		k.jwk.KeyID = "k" + itoa(1000+i)
		many = append(many, k)
	}
	g.publish(t, many...)
	if w := g.issuer.Status().Warnings; len(w) != 1 || !strings.Contains(w[0], "101 keys: Entra reads only the first 100") {
		t.Fatalf("warnings for 101 keys: %q", w)
	}
	g.publish(t, base)
	if w := g.issuer.Status().Warnings; len(w) != 0 {
		t.Fatalf("warnings for one good key: %q", w)
	}
}

// TestServesKeysThatArrivedBeforeRunRenderedThem covers the start: a key set
// the source received before the issuer's Run rendered it is served.
func TestServesKeysThatArrivedBeforeRunRenderedThem(t *testing.T) {
	src := newSource()
	iss, err := newIssuer(src)
	if err != nil {
		t.Fatal(err)
	}
	h, err := newHandler(iss)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{src: src, issuer: iss, handler: h} // Run is never started
	if resp := f.do(request{target: "https://oidc.example.org/keys"}); resp.StatusCode != 503 {
		t.Fatalf("before any key: %d", resp.StatusCode)
	}
	src.publish(newRSA(t, "a", 2048).jwk)
	if resp := f.do(request{target: "https://oidc.example.org/keys"}); resp.StatusCode != 200 {
		t.Fatalf("after the first key set: %d", resp.StatusCode)
	}
}
