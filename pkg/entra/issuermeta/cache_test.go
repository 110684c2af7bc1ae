package issuermeta_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/issuermeta"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/oidcissuer"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newCache(is *oidcissuer.Issuer, c *clock, opts ...issuermeta.Option) *issuermeta.Cache {
	return issuermeta.New(append([]issuermeta.Option{issuermeta.WithRootCAs(oidcissuer.Pool(is)), issuermeta.WithClock(c.now), issuermeta.WithAllowedNetworks(issuermeta.Loopback...)}, opts...)...)
}

func TestConcurrentColdRequestsShareOneFetch(t *testing.T) {
	is := oidcissuer.New(t)
	cache := newCache(is, &clock{t: time.Now()})
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := cache.Key(context.Background(), is.URL, is.RSAKID)
			if err == nil && k.KeyID != is.RSAKID {
				err = errors.New("wrong key")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if d, j := is.DiscoveryHits.Load(), is.JWKSHits.Load(); d != 1 || j != 1 {
		t.Errorf("100 cold requests made %d discovery and %d JWKS fetches, want 1 and 1", d, j)
	}
}

func TestUnknownKidRefreshesOnceAndIsRateLimited(t *testing.T) {
	is := oidcissuer.New(t)
	c := &clock{t: time.Now()}
	cache := newCache(is, c, issuermeta.WithMinRefresh(10*time.Second))
	ctx := context.Background()
	if _, err := cache.Key(ctx, is.URL, is.RSAKID); err != nil {
		t.Fatal(err)
	}
	c.add(11 * time.Second)
	for range 5 {
		if _, err := cache.Key(ctx, is.URL, "unknown"); !errors.Is(err, issuermeta.ErrKeyNotFound) {
			t.Fatalf("err = %v, want ErrKeyNotFound", err)
		}
	}
	if j := is.JWKSHits.Load(); j != 2 {
		t.Errorf("%d JWKS fetches for five unknown-kid requests in one window, want 1 initial + 1 refresh", j)
	}
	// A rotation: the new key is published and found with one refresh.
	c.add(11 * time.Second)
	is.Publish(jose.JSONWebKey{Key: &is.RSA.PublicKey, KeyID: "rsa-2", Use: "sig", Algorithm: "RS256"})
	if k, err := cache.Key(ctx, is.URL, "rsa-2"); err != nil || k.KeyID != "rsa-2" {
		t.Fatalf("rotated key: %v", err)
	}
	if j := is.JWKSHits.Load(); j != 3 {
		t.Errorf("%d JWKS fetches after the rotation, want 3", j)
	}
}

func TestTTLAndGrace(t *testing.T) {
	is := oidcissuer.New(t)
	c := &clock{t: time.Now()}
	cache := newCache(is, c, issuermeta.WithTTL(10*time.Minute), issuermeta.WithGrace(time.Hour))
	ctx := context.Background()
	if _, err := cache.Key(ctx, is.URL, is.RSAKID); err != nil {
		t.Fatal(err)
	}
	c.add(5 * time.Minute)
	cache.Key(ctx, is.URL, is.RSAKID)
	if d := is.DiscoveryHits.Load(); d != 1 {
		t.Errorf("fetched again within the TTL: %d", d)
	}
	c.add(6 * time.Minute)
	cache.Key(ctx, is.URL, is.RSAKID)
	if d := is.DiscoveryHits.Load(); d != 2 {
		t.Errorf("not fetched again after the TTL: %d", d)
	}
	is.Close()
	c.add(30 * time.Minute) // past the TTL, within the grace period
	if _, err := cache.Key(ctx, is.URL, is.RSAKID); err != nil {
		t.Errorf("within the grace period the last metadata should serve: %v", err)
	}
	c.add(time.Hour)
	if _, err := cache.Key(ctx, is.URL, is.RSAKID); !errors.Is(err, issuermeta.ErrUnavailable) {
		t.Errorf("after the grace period: err = %v, want ErrUnavailable", err)
	}
}

func TestHostileIssuers(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		intercept func(other string) func(http.ResponseWriter, *http.Request) bool
		opts      []issuermeta.Option
		says      string
	}{
		{"slow", func(string) func(http.ResponseWriter, *http.Request) bool {
			return func(w http.ResponseWriter, r *http.Request) bool {
				select {
				case <-time.After(2 * time.Second):
				case <-r.Context().Done():
				}
				return true
			}
		}, []issuermeta.Option{issuermeta.WithTimeout(200 * time.Millisecond)}, "no complete answer within 200ms"},
		{"huge discovery document", func(string) func(http.ResponseWriter, *http.Request) bool {
			return func(w http.ResponseWriter, r *http.Request) bool {
				w.Write([]byte(`{"issuer":"` + strings.Repeat("x", 2<<10) + `"}`))
				return true
			}
		}, []issuermeta.Option{issuermeta.WithMaxBytes(1 << 10)}, "larger than the limit"},
		{"redirect to another host", func(other string) func(http.ResponseWriter, *http.Request) bool {
			return func(w http.ResponseWriter, r *http.Request) bool {
				http.Redirect(w, r, other+r.URL.Path, http.StatusFound)
				return true
			}
		}, nil, "leaves the issuer's host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is, elsewhere := oidcissuer.New(t), oidcissuer.New(t)
			is.Intercept(tc.intercept(elsewhere.URL))
			cache := issuermeta.New(append([]issuermeta.Option{issuermeta.WithRootCAs(oidcissuer.Pool(is, elsewhere)), issuermeta.WithAllowedNetworks(issuermeta.Loopback...)}, tc.opts...)...)
			_, err := cache.Key(ctx, is.URL, is.RSAKID)
			if !errors.Is(err, issuermeta.ErrUnavailable) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err = %v, want ErrUnavailable saying %q", err, tc.says)
			}
			if n := elsewhere.DiscoveryHits.Load() + elsewhere.JWKSHits.Load(); n != 0 {
				t.Errorf("the other host was fetched %d times", n)
			}
		})
	}
}

func TestSameHostRedirectIsFollowed(t *testing.T) {
	is := oidcissuer.New(t)
	is.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		switch r.URL.Path {
		case "/keys":
			http.Redirect(w, r, "/v2/keys", http.StatusMovedPermanently)
			return true
		case "/v2/keys":
			r.URL.Path = "/keys" // served by the JWKS handler
		}
		return false
	})
	cache := issuermeta.New(issuermeta.WithRootCAs(oidcissuer.Pool(is)), issuermeta.WithAllowedNetworks(issuermeta.Loopback...))
	if _, err := cache.Key(context.Background(), is.URL, is.RSAKID); err != nil {
		t.Fatalf("a redirect within the issuer's host was not followed: %v", err)
	}
	if j := is.JWKSHits.Load(); j != 1 {
		t.Errorf("JWKS served %d times, want 1", j)
	}
}

func TestSchemes(t *testing.T) {
	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()
	cache := issuermeta.New()
	if _, err := cache.Key(context.Background(), plain.URL, "k"); !errors.Is(err, issuermeta.ErrUnavailable) || !strings.Contains(err.Error(), "is not https") {
		t.Fatalf("http issuer: %v", err)
	}
	insecure := issuermeta.New(issuermeta.WithInsecureSchemes(), issuermeta.WithAllowedNetworks(issuermeta.Loopback...))
	if _, err := insecure.Key(context.Background(), plain.URL, "k"); err == nil || strings.Contains(err.Error(), "is not https") {
		t.Fatalf("with WithInsecureSchemes the scheme should pass and the 404 fail: %v", err)
	}
}

func TestKeysWithoutUse(t *testing.T) {
	is := oidcissuer.New(t)
	is.OmitUse()
	if _, err := newCache(is, &clock{t: time.Now()}).Key(context.Background(), is.URL, is.RSAKID); err != nil {
		t.Errorf("a key without use is reported, not refused, by default: %v", err)
	}
	strict := newCache(is, &clock{t: time.Now()}, issuermeta.WithRequireUseSig())
	if _, err := strict.Key(context.Background(), is.URL, is.RSAKID); !errors.Is(err, issuermeta.ErrKeyNotFound) {
		t.Errorf("WithRequireUseSig: err = %v, want ErrKeyNotFound", err)
	}
}

// TestAddressesIssuersAreNotFetchedFrom: an issuer whose host is, or
// resolves to, a loopback, link-local (cloud metadata), private or
// unspecified address is not fetched unless its network is allowed; the
// address checked is the one dialed (localhost resolves, then is refused).
func TestAddressesIssuersAreNotFetchedFrom(t *testing.T) {
	is := oidcissuer.New(t)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(is.URL, "https://"))
	strict := issuermeta.New(issuermeta.WithRootCAs(oidcissuer.Pool(is)), issuermeta.WithTimeout(2*time.Second))
	for _, issuer := range []string{is.URL, "https://localhost:" + port, "https://[::1]:" + port, "https://169.254.169.254", "https://10.0.0.1", "https://0.0.0.0:" + port} {
		_, err := strict.Key(context.Background(), issuer, "k")
		if !errors.Is(err, issuermeta.ErrForbiddenAddress) || !errors.Is(err, issuermeta.ErrUnavailable) {
			t.Errorf("%s: %v, want a forbidden address", issuer, err)
		}
	}
	if n := is.DiscoveryHits.Load(); n != 0 {
		t.Fatalf("the refused issuer was reached %d times", n)
	}
	allowed := issuermeta.New(issuermeta.WithRootCAs(oidcissuer.Pool(is)), issuermeta.WithAllowedNetworks(netip.MustParsePrefix("127.0.0.0/8")))
	if _, err := allowed.Key(context.Background(), is.URL, is.RSAKID); err != nil {
		t.Fatalf("an allowed network: %v", err)
	}
}

// TestFailuresAreRemembered: a failed fetch is answered from memory for the
// failure TTL, so that token requests naming an unreachable issuer cannot
// each cause an outbound fetch.
func TestFailuresAreRemembered(t *testing.T) {
	is := oidcissuer.New(t)
	is.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/.well-known/openid-configuration" {
			is.DiscoveryHits.Add(1)
		}
		http.Error(w, "down", http.StatusInternalServerError)
		return true
	})
	c := &clock{t: time.Now()}
	cache := newCache(is, c, issuermeta.WithFailureTTL(30*time.Second))
	for range 5 {
		if _, err := cache.Key(context.Background(), is.URL, is.RSAKID); !errors.Is(err, issuermeta.ErrUnavailable) {
			t.Fatalf("a failing issuer: %v", err)
		}
	}
	if n := is.DiscoveryHits.Load(); n != 1 {
		t.Fatalf("%d fetches within the failure TTL, want 1", n)
	}
	c.add(31 * time.Second)
	_, _ = cache.Key(context.Background(), is.URL, is.RSAKID)
	if n := is.DiscoveryHits.Load(); n != 2 {
		t.Fatalf("%d fetches after the failure TTL, want 2", n)
	}
}
