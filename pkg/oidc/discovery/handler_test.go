package discovery_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/oidc/discovery"
)

const discoveryPath = "/.well-known/openid-configuration"

// fixture is a handler over one issuer whose keys the test sets.
type fixture struct {
	src     *source
	issuer  *discovery.Issuer
	handler *discovery.Handler
}

func newFixture(t *testing.T, issuer string, opts []discovery.Option, hopts ...discovery.HandlerOption) *fixture {
	t.Helper()
	f := &fixture{src: newSource()}
	var err error
	f.issuer, err = discovery.NewIssuer(f.src, issuer, opts...)
	if err != nil {
		t.Fatal(err)
	}
	f.handler, err = discovery.New([]*discovery.Issuer{f.issuer}, hopts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.issuer.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return f
}

// publish sets the keys and waits until the issuer serves them.
func (f *fixture) publish(t *testing.T, keys ...signingKey) {
	t.Helper()
	var jwks []jose.JSONWebKey
	for _, k := range keys {
		jwks = append(jwks, k.jwk)
	}
	f.src.publish(jwks...)
	deadline := time.Now().Add(5 * time.Second)
	for f.issuer.Status().Keys != len(keys) || !f.issuer.Status().Ready {
		if time.Now().After(deadline) {
			t.Fatalf("the issuer did not publish %d keys: %+v", len(keys), f.issuer.Status())
		}
		time.Sleep(time.Millisecond)
	}
}

type request struct {
	method, target string
	header         http.Header
	remote         string
}

func (f *fixture) do(r request) *http.Response {
	if r.method == "" {
		r.method = http.MethodGet
	}
	req := httptest.NewRequest(r.method, r.target, nil)
	for k, v := range r.header {
		req.Header[k] = v
	}
	if r.remote != "" {
		req.RemoteAddr = r.remote
	}
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDiscoveryDocument(t *testing.T) {
	for _, tc := range []struct {
		name, issuer, wantJWKS, target string
		keys                           func(t *testing.T) []signingKey
		wantAlgs                       []string
	}{
		{"host only", "https://oidc.example.org", "https://oidc.example.org/keys", "https://oidc.example.org" + discoveryPath,
			func(t *testing.T) []signingKey { return []signingKey{newRSA(t, "a", 2048)} }, []string{"RS256"}},
		{"path kept, no slash added", "https://oidc.example.org/tenant-a", "https://oidc.example.org/tenant-a/keys", "https://oidc.example.org/tenant-a" + discoveryPath,
			func(t *testing.T) []signingKey { return []signingKey{newRSA(t, "a", 2048), newEC(t, "b")} }, []string{"ES256", "RS256"}},
		{"trailing slash kept", "https://oidc.example.org/", "https://oidc.example.org/keys", "https://oidc.example.org" + discoveryPath,
			func(t *testing.T) []signingKey { return []signingKey{newEC(t, "b")} }, []string{"ES256"}},
		{"port kept", "https://oidc.example.org:8443", "https://oidc.example.org:8443/keys", "https://oidc.example.org:8443" + discoveryPath,
			func(t *testing.T) []signingKey { return []signingKey{newRSA(t, "a", 2048)} }, []string{"RS256"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.issuer, nil)
			f.publish(t, tc.keys(t)...)
			resp := f.do(request{target: tc.target})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body(t, resp))
			}
			var doc map[string]any
			if err := json.Unmarshal(body(t, resp), &doc); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{
				"issuer": tc.issuer, "jwks_uri": tc.wantJWKS, "authorization_endpoint": "",
				"response_types_supported": []any{"id_token"}, "subject_types_supported": []any{"public"},
			}
			var algs []any
			for _, a := range tc.wantAlgs {
				algs = append(algs, a)
			}
			want["id_token_signing_alg_values_supported"] = algs
			got, _ := json.Marshal(doc)
			exp, _ := json.Marshal(want)
			if !bytes.Equal(got, exp) {
				t.Fatalf("discovery =\n%s\nwant\n%s", got, exp)
			}
		})
	}
}

func TestKeysDocument(t *testing.T) {
	keys := []signingKey{newRSA(t, "k2", 2048), newEC(t, "k1")}
	for _, omitUse := range []bool{false, true} {
		var opts []discovery.Option
		if omitUse {
			opts = append(opts, discovery.WithoutKeyUse())
		}
		f := newFixture(t, "https://oidc.example.org", opts)
		f.publish(t, keys...)
		raw := body(t, f.do(request{target: "https://oidc.example.org/keys"}))
		var doc struct {
			Keys []map[string]any `json:"keys"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Keys) != 2 || doc.Keys[0]["kid"] != "k1" || doc.Keys[1]["kid"] != "k2" {
			t.Fatalf("keys not in kid order: %s", raw)
		}
		for _, k := range doc.Keys {
			for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
				if _, ok := k[private]; ok {
					t.Fatalf("key %v carries private member %q", k["kid"], private)
				}
			}
			wantAlg := map[string]string{"RSA": "RS256", "EC": "ES256"}[k["kty"].(string)]
			if k["alg"] != wantAlg {
				t.Errorf("key %v: alg %v, want %s", k["kid"], k["alg"], wantAlg)
			}
			if use, ok := k["use"]; omitUse == ok || (!omitUse && use != "sig") {
				t.Errorf("omitUse=%v: key %v has use %v (present %v)", omitUse, k["kid"], use, ok)
			}
		}
	}
}

// TestGoOIDCVerifies is the relying party's view: go-oidc discovers the
// issuer through the handler and verifies a token signed by a published
// key, and refuses one whose key is not published.
func TestGoOIDCVerifies(t *testing.T) {
	src := newSource()
	srv := httptest.NewServer(nil)
	defer srv.Close()
	issuerURL := srv.URL + "/td/example"
	iss, err := discovery.NewIssuer(src, issuerURL, discovery.WithAllowedHosts("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := discovery.New([]*discovery.Issuer{iss})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = h
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go iss.Run(ctx)
	published, unpublished := newRSA(t, "published", 2048), newRSA(t, "unpublished", 2048)
	src.publish(published.jwk)
	for !iss.Status().Ready {
		time.Sleep(time.Millisecond)
	}

	provider, err := oidc.NewProvider(ctx, issuerURL)
	if err != nil {
		t.Fatal(err)
	}
	verifier := provider.Verifier(&oidc.Config{ClientID: "api://AzureADTokenExchange"})
	sign := func(k signingKey) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.jwk.KeyID}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		claims, _ := json.Marshal(map[string]any{"iss": issuerURL, "sub": "spiffe://example.org/w", "aud": "api://AzureADTokenExchange", "exp": time.Now().Add(time.Hour).Unix()})
		jws, err := s.Sign(claims)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := jws.CompactSerialize()
		return out
	}
	tok, err := verifier.Verify(ctx, sign(published))
	if err != nil {
		t.Fatalf("a token signed by a published key: %v", err)
	}
	if tok.Subject != "spiffe://example.org/w" {
		t.Fatalf("subject %q", tok.Subject)
	}
	if _, err := verifier.Verify(ctx, sign(unpublished)); err == nil {
		t.Fatal("a token signed by an unpublished key verified")
	}
}

func TestDocumentsAreStableUntilTheKeysChange(t *testing.T) {
	f := newFixture(t, "https://oidc.example.org", nil)
	a, b := newRSA(t, "a", 2048), newRSA(t, "b", 2048)
	f.publish(t, a)
	get := func() (*http.Response, []byte) {
		resp := f.do(request{target: "https://oidc.example.org/keys"})
		return resp, body(t, resp)
	}
	r1, b1 := get()
	r2, b2 := get()
	if !bytes.Equal(b1, b2) || r1.Header.Get("ETag") != r2.Header.Get("ETag") || r1.Header.Get("ETag") == "" {
		t.Fatal("two responses for one key set differ")
	}
	f.publish(t, b, a) // reordered input: the output is ordered by kid
	r3, b3 := get()
	if bytes.Equal(b1, b3) || r3.Header.Get("ETag") == r1.Header.Get("ETag") {
		t.Fatal("a new key set kept the old document or ETag")
	}
	if !(bytes.Index(b3, []byte(`"kid": "a"`)) < bytes.Index(b3, []byte(`"kid": "b"`))) {
		t.Fatalf("keys not ordered by kid:\n%s", b3)
	}
	f.publish(t, a, b)
	_, b4 := get()
	if !bytes.Equal(b3, b4) {
		t.Fatal("the same keys in another order rendered differently")
	}
}

func TestConditionalRequests(t *testing.T) {
	f := newFixture(t, "https://oidc.example.org", []discovery.Option{discovery.WithMaxAge(42 * time.Second)})
	f.publish(t, newRSA(t, "a", 2048))
	for _, path := range []string{discoveryPath, "/keys"} {
		target := "https://oidc.example.org" + path
		first := f.do(request{target: target})
		etag, modified := first.Header.Get("ETag"), first.Header.Get("Last-Modified")
		if cc := first.Header.Get("Cache-Control"); cc != "public, max-age=42" {
			t.Fatalf("Cache-Control %q", cc)
		}
		if first.Header.Get("Content-Type") != "application/json" || etag == "" || modified == "" {
			t.Fatalf("%s: headers %v", path, first.Header)
		}
		gz := f.do(request{target: target, header: http.Header{"Accept-Encoding": {"gzip"}}}).Header.Get("ETag")
		modTime, _ := http.ParseTime(modified)
		for _, tc := range []struct {
			name   string
			header http.Header
			want   int
		}{
			{"matching etag", http.Header{"If-None-Match": {etag}}, 304},
			{"gzip etag", http.Header{"If-None-Match": {gz}}, 304},
			{"weak etag in a list", http.Header{"If-None-Match": {`"other", W/` + etag}}, 304},
			{"star", http.Header{"If-None-Match": {"*"}}, 304},
			{"other etag", http.Header{"If-None-Match": {`"other"`}}, 200},
			{"other etag wins over a later date", http.Header{"If-None-Match": {`"other"`}, "If-Modified-Since": {modTime.Add(time.Hour).Format(http.TimeFormat)}}, 200},
			{"same date", http.Header{"If-Modified-Since": {modified}}, 304},
			{"earlier date", http.Header{"If-Modified-Since": {modTime.Add(-time.Second).Format(http.TimeFormat)}}, 200},
			{"bad date", http.Header{"If-Modified-Since": {"yesterday"}}, 200},
		} {
			resp := f.do(request{target: target, header: tc.header})
			if resp.StatusCode != tc.want {
				t.Errorf("%s %s: status %d, want %d", path, tc.name, resp.StatusCode, tc.want)
			}
			if tc.want == 304 && (len(body(t, resp)) != 0 || resp.Header.Get("ETag") != etag && resp.Header.Get("ETag") != gz) {
				t.Errorf("%s %s: a 304 with a body or without the ETag", path, tc.name)
			}
		}
	}
}

func TestHeadAndGzip(t *testing.T) {
	f := newFixture(t, "https://oidc.example.org", nil)
	f.publish(t, newRSA(t, "a", 2048))
	target := "https://oidc.example.org/keys"
	plain := body(t, f.do(request{target: target}))

	head := f.do(request{method: http.MethodHead, target: target})
	if head.StatusCode != 200 || head.Header.Get("Content-Length") != itoa(len(plain)) || len(body(t, head)) != 0 {
		t.Fatalf("HEAD: status %d length %q body present", head.StatusCode, head.Header.Get("Content-Length"))
	}

	for accept, wantGzip := range map[string]bool{
		"gzip": true, "br, gzip;q=0.5": true, "GZIP": true, "gzip;q=0": false, "gzip; q=0.0": false, "identity": false, "": false,
	} {
		resp := f.do(request{target: target, header: http.Header{"Accept-Encoding": {accept}}})
		got := body(t, resp)
		if resp.Header.Get("Vary") != "Accept-Encoding" {
			t.Errorf("Accept-Encoding %q: no Vary", accept)
		}
		if (resp.Header.Get("Content-Encoding") == "gzip") != wantGzip {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q", accept, resp.Header.Get("Content-Encoding"))
			continue
		}
		if resp.Header.Get("Content-Length") != itoa(len(got)) {
			t.Errorf("Accept-Encoding %q: Content-Length %q for %d bytes", accept, resp.Header.Get("Content-Length"), len(got))
		}
		if wantGzip {
			zr, err := gzip.NewReader(bytes.NewReader(got))
			if err != nil {
				t.Fatal(err)
			}
			got, _ = io.ReadAll(zr)
		}
		if !bytes.Equal(got, plain) {
			t.Errorf("Accept-Encoding %q: body differs from the plain one", accept)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestHeadersFollowTheKeySet: the headers prepared with each key set are
// replaced with it, for both documents, in a GET, a HEAD and a 304.
func TestHeadersFollowTheKeySet(t *testing.T) {
	f := newFixture(t, "https://oidc.example.org", nil)
	f.publish(t, newRSA(t, "a", 2048))
	for _, path := range []string{"/keys", discoveryPath} {
		target := "https://oidc.example.org" + path
		before := f.do(request{target: target})
		oldBody, oldTag := body(t, before), before.Header.Get("ETag")
		f.publish(t, newRSA(t, "c", 2048), newEC(t, "b")) // a new algorithm changes the discovery document too
		get := f.do(request{target: target})
		got, tag := body(t, get), get.Header.Get("ETag")
		if bytes.Equal(got, oldBody) || tag == oldTag || tag == "" {
			t.Fatalf("%s: the body or the ETag did not change with the keys", path)
		}
		if get.Header.Get("Content-Length") != itoa(len(got)) {
			t.Errorf("%s: Content-Length %q for %d bytes", path, get.Header.Get("Content-Length"), len(got))
		}
		if lm, _ := http.ParseTime(get.Header.Get("Last-Modified")); lm.Before(time.Now().Add(-time.Minute)) {
			t.Errorf("%s: Last-Modified %q", path, get.Header.Get("Last-Modified"))
		}
		head := f.do(request{method: http.MethodHead, target: target})
		if len(body(t, head)) != 0 || head.StatusCode != 200 {
			t.Errorf("%s: HEAD status %d with a body", path, head.StatusCode)
		}
		for _, k := range []string{"Content-Type", "Cache-Control", "Last-Modified", "Vary", "Etag", "Content-Length"} {
			if head.Header.Get(k) != get.Header.Get(k) || get.Header.Get(k) == "" {
				t.Errorf("%s: %s %q in the HEAD, %q in the GET", path, k, head.Header.Get(k), get.Header.Get(k))
			}
		}
		if stale := f.do(request{target: target, header: http.Header{"If-None-Match": {oldTag}}}); stale.StatusCode != 200 || !bytes.Equal(body(t, stale), got) {
			t.Errorf("%s: the previous ETag got %d, not the new document", path, stale.StatusCode)
		}
		current := f.do(request{target: target, header: http.Header{"If-None-Match": {tag}}})
		if current.StatusCode != 304 || len(body(t, current)) != 0 || current.Header.Get("ETag") != tag {
			t.Errorf("%s: the current ETag got %d with ETag %q", path, current.StatusCode, current.Header.Get("ETag"))
		}
		if current.Header.Get("Content-Length") != "" || current.Header.Get("Cache-Control") != get.Header.Get("Cache-Control") || current.Header.Get("Vary") != "Accept-Encoding" {
			t.Errorf("%s: a 304 with headers %v", path, current.Header)
		}
		f.publish(t, newRSA(t, "a", 2048)) // the next path starts from one key again
	}
}
