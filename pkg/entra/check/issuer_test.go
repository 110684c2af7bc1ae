package check_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/check"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/oidcissuer"
)

// want is a finding a report must hold.
type want struct {
	sev  check.Severity
	code int
	says string
}

func holds(t *testing.T, r check.IssuerReport, wants ...want) {
	t.Helper()
	for _, w := range wants {
		found := false
		for _, f := range r.Findings {
			found = found || f.Severity == w.sev && f.Code == w.code && strings.Contains(f.What+" "+f.Fix, w.says)
		}
		if !found {
			out, _ := json.MarshalIndent(r.Findings, "", "  ")
			t.Errorf("no %s finding AADSTS%d saying %q in\n%s", w.sev, w.code, w.says, out)
		}
	}
}

func rsaKey(t *testing.T, kid string, bits int) jose.JSONWebKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Use: "sig", Algorithm: "RS256"}
}

// goodIssuer publishes one RSA-2048 key with use sig.
func goodIssuer(t *testing.T) *oidcissuer.Issuer {
	is := oidcissuer.New(t)
	is.Replace(jose.JSONWebKey{Key: &is.RSA.PublicKey, KeyID: is.RSAKID, Use: "sig", Algorithm: "RS256"})
	return is
}

func TestIssuer(t *testing.T) {
	ctx := context.Background()
	t.Run("a good issuer behind a private CA", func(t *testing.T) {
		is := goodIssuer(t)
		r := check.Issuer(ctx, is.URL, check.IssuerOptions{CA: is.CAPEM()})
		if r.Blocking || r.UsableKeys != 1 || len(r.Findings) != 1 {
			t.Fatalf("report %+v", r)
		}
		holds(t, r, want{check.Warning, 90061, "trusted only through --ca"})
	})
	t.Run("a private CA without --ca", func(t *testing.T) {
		r := check.Issuer(ctx, goodIssuer(t).URL, check.IssuerOptions{})
		if !r.Blocking {
			t.Fatal("not blocking")
		}
		holds(t, r, want{check.Blocking, 90061, "publicly trusted CA"})
	})
	t.Run("http", func(t *testing.T) {
		var url string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/keys" {
				_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{rsaKey(t, "k", 2048)}})
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": url, "jwks_uri": url + "/keys"})
		}))
		defer srv.Close()
		url = srv.URL
		r := check.Issuer(ctx, url, check.IssuerOptions{})
		holds(t, r, want{check.Blocking, 90061, "is not https"})
		if r.UsableKeys != 1 {
			t.Errorf("the keys of an http issuer are still judged: %+v", r)
		}
	})
	t.Run("TLS issuer spoken to in plain http", func(t *testing.T) {
		is := goodIssuer(t)
		r := check.Issuer(ctx, strings.Replace(is.URL, "https://", "http://", 1), check.IssuerOptions{CA: is.CAPEM()})
		holds(t, r, want{check.Blocking, 90061, "is not https"})
	})
	t.Run("discovery names another issuer", func(t *testing.T) {
		is := goodIssuer(t)
		is.ClaimIssuer(is.URL + "/")
		r := check.Issuer(ctx, is.URL, check.IssuerOptions{CA: is.CAPEM()})
		holds(t, r, want{check.Blocking, 90061, "byte for byte"}, want{check.Blocking, 90061, fmt.Sprintf("names issuer %q", is.URL+"/")})
	})
	t.Run("jwks_uri over http", func(t *testing.T) {
		is := goodIssuer(t)
		is.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path != "/.well-known/openid-configuration" {
				return false
			}
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": is.URL, "jwks_uri": strings.Replace(is.URL, "https://", "http://", 1) + "/keys"})
			return true
		})
		r := check.Issuer(ctx, is.URL, check.IssuerOptions{CA: is.CAPEM()})
		holds(t, r, want{check.Blocking, 90061, "/keys is not https: Entra fetches keys over https only"})
	})
	t.Run("slow beyond the timeout", func(t *testing.T) {
		is := goodIssuer(t)
		is.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
			}
			return true
		})
		r := check.Issuer(ctx, is.URL, check.IssuerOptions{CA: is.CAPEM(), Timeout: 200 * time.Millisecond})
		holds(t, r, want{check.Blocking, 90061, "answer within 200ms"})
	})
	t.Run("slow within the timeout", func(t *testing.T) {
		is := goodIssuer(t)
		is.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path == "/keys" {
				time.Sleep(600 * time.Millisecond)
			}
			return false
		})
		r := check.Issuer(ctx, is.URL, check.IssuerOptions{CA: is.CAPEM(), Timeout: time.Second})
		if r.Blocking {
			t.Fatalf("blocking: %+v", r.Findings)
		}
		holds(t, r, want{check.Warning, 0, "more than half of the 1s"})
	})
	t.Run("oversized JWKS", func(t *testing.T) {
		is := goodIssuer(t)
		is.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path != "/keys" {
				return false
			}
			_, _ = w.Write([]byte(`{"keys":[],"pad":"` + strings.Repeat("x", 8<<10) + `"}`))
			return true
		})
		r := check.Issuer(ctx, is.URL, check.IssuerOptions{CA: is.CAPEM(), MaxBytes: 4 << 10})
		holds(t, r, want{check.Blocking, 90061, "larger than the limit"})
	})
	t.Run("EC keys only, as SPIRE's default", func(t *testing.T) {
		is := oidcissuer.New(t)
		is.Replace(jose.JSONWebKey{Key: &is.EC.PublicKey, KeyID: is.ECKID, Use: "sig", Algorithm: "ES256"})
		r := check.Issuer(ctx, is.URL, check.IssuerOptions{CA: is.CAPEM()})
		holds(t, r, want{check.Blocking, 5002738, `key ec-1 is ES256: Entra rejects ES256 JWT-SVIDs`}, want{check.Blocking, 5002738, `jwt_key_type = "rsa-2048"`},
			want{check.Blocking, 7000272, "no key Entra verifies RS256 tokens with"})
	})
	t.Run("keys Entra cannot use", func(t *testing.T) {
		is := goodIssuer(t)
		noUse, enc, noKid, small, ps := rsaKey(t, "no-use", 2048), rsaKey(t, "enc", 2048), rsaKey(t, "", 2048), rsaKey(t, "small", 1024), rsaKey(t, "ps", 2048)
		noUse.Use, enc.Use, ps.Algorithm = "", "enc", "PS256"
		is.Publish(noUse)
		is.Publish(enc)
		is.Publish(noKid)
		is.Publish(small)
		is.Publish(ps)
		r := check.Issuer(ctx, is.URL, check.IssuerOptions{CA: is.CAPEM()})
		holds(t, r,
			want{check.Warning, 0, `key no-use has no "use"`}, want{check.Warning, 0, "set_key_use = true"},
			want{check.Warning, 7000272, `key enc has "use": "enc"`},
			want{check.Warning, 7000272, "entry 4 has no kid"},
			want{check.Blocking, 5002730, "key small is RSA-1024"},
			want{check.Blocking, 5002730, "key ps declares alg PS256"})
		if r.UsableKeys != 2 {
			t.Errorf("usable keys %d, want 2 (rsa-1 and no-use)", r.UsableKeys)
		}
	})
	t.Run("more than 100 keys", func(t *testing.T) {
		is := goodIssuer(t)
		k := rsaKey(t, "k", 2048)
		for i := range 100 {
			k.KeyID = fmt.Sprint("k", i)
			is.Publish(k)
		}
		r := check.Issuer(ctx, is.URL, check.IssuerOptions{CA: is.CAPEM()})
		holds(t, r, want{check.Warning, 7000272, "entry 101: Entra reads only the first 100 keys"})
		if r.Blocking || r.UsableKeys != 100 {
			t.Errorf("blocking %v, usable %d", r.Blocking, r.UsableKeys)
		}
	})
}
