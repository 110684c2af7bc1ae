package signer_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store/sqlstore"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/signer"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func openStore(t testing.TB) store.Store {
	s, err := sqlstore.OpenSQLite(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func kids(t *testing.T, sg *signer.Signer) []string {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(sg.PublicKeysJSON(), &set); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range set.Keys {
		if k.Use != "sig" || len(k.Certificates) != 1 || !k.IsPublic() {
			t.Errorf("published key %s: use %q, %d certificates, public %v", k.KeyID, k.Use, len(k.Certificates), k.IsPublic())
		}
		out = append(out, k.KeyID)
	}
	return out
}

// signedBy returns the kid a token from sg carries.
func signedBy(t *testing.T, sg *signer.Signer) string {
	t.Helper()
	tok, err := sg.Sign([]byte(`{"a":1}`), false)
	if err != nil {
		t.Fatal(err)
	}
	return kidOf(t, tok)
}

// kidOf returns the kid of a signed token.
func kidOf(t testing.TB, tok string) string {
	t.Helper()
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Header.KeyID
}

func TestScheduleRotatesAndRetires(t *testing.T) {
	ctx := context.Background()
	day := 24 * time.Hour
	// An hour into a window: windows are aligned to the Unix epoch.
	c := &clock{t: time.Unix(0, 0).UTC().Add(2000*day + time.Hour)}
	sg := signer.New(openStore(t), signer.WithKeyLifetime(10*day), signer.WithTokenLifetime(25*time.Hour), signer.WithClock(c.now))
	if _, err := sg.Sign([]byte(`{}`), false); !errors.Is(err, signer.ErrNoKey) {
		t.Fatalf("before the first refresh: %v, want ErrNoKey", err)
	}
	if err := sg.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	first := kids(t, sg)
	if len(first) != 2 {
		t.Fatalf("published %v; want the current and the next key", first)
	}
	current := signedBy(t, sg)
	if current != first[0] {
		t.Fatalf("signed with %s, want the current key %s", current, first[0])
	}

	c.add(10 * day)
	if err := sg.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	second := kids(t, sg)
	if len(second) != 3 || second[0] != first[0] || second[1] != first[1] {
		t.Fatalf("after one window: %v; want the retired key still published, then %v and a new next key", second, first[1])
	}
	if got := signedBy(t, sg); got != first[1] {
		t.Errorf("signed with %s after rotation, want %s (published a whole window ago)", got, first[1])
	}

	c.add(25 * time.Hour) // 26 h after the boundary: the retired key's last token has expired
	if err := sg.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if third := kids(t, sg); len(third) != 2 || third[0] != first[1] {
		t.Errorf("after the token lifetime: %v; want the retired key gone", third)
	}
}

// TestReplicasShareKeys is two signers on one store, started at once: one
// key per window, and each publishes the other's signing key.
func TestReplicasShareKeys(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	a, b := signer.New(s), signer.New(s)
	var wg sync.WaitGroup
	for _, sg := range []*signer.Signer{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = sg.Refresh(ctx) }()
	}
	wg.Wait()
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	keys, err := s.ListSigningKeys(ctx)
	if err != nil || len(keys) != 2 {
		t.Fatalf("%d keys stored (%v); want 2", len(keys), err)
	}
	if signedBy(t, a) != signedBy(t, b) {
		t.Error("the replicas sign with different keys")
	}
	if string(a.PublicKeysJSON()) != string(b.PublicKeysJSON()) {
		t.Error("the replicas publish different key sets")
	}
}

// failing is a store that is down until up is set.
type failing struct {
	store.Store
	mu sync.Mutex
	up bool
}

func (f *failing) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	f.mu.Lock()
	up := f.up
	f.mu.Unlock()
	if !up {
		return nil, store.ErrUnavailable
	}
	return f.Store.ListSigningKeys(ctx)
}

func TestRunRecoversWhenTheStoreComesUp(t *testing.T) {
	f := &failing{Store: openStore(t)}
	sg := signer.New(f, signer.WithRefreshInterval(120*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sg.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	time.Sleep(50 * time.Millisecond)
	if _, err := sg.Sign([]byte(`{}`), false); !errors.Is(err, signer.ErrNoKey) {
		t.Fatalf("store down: %v, want ErrNoKey", err)
	}
	f.mu.Lock()
	f.up = true
	f.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := sg.Sign([]byte(`{}`), false); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no key 5s after the store came up")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
