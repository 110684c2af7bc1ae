package readcache

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store/sqlstore"
)

const tenantID = "6f0c2a4e-1b7d-4c55-9f3e-2d8a1b7c9e10"

// counted is a real store that counts its tenant lookups and fails them
// with fail when set.
type counted struct {
	store.Store
	lookups atomic.Int64
	fail    error
}

func (c *counted) GetTenant(ctx context.Context, id string) (store.Tenant, error) {
	c.lookups.Add(1)
	if c.fail != nil {
		return store.Tenant{}, c.fail
	}
	return c.Store.GetTenant(ctx, id)
}

func newStore(t testing.TB) *counted {
	t.Helper()
	s, err := sqlstore.OpenSQLite(filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.CreateTenant(context.Background(), store.Tenant{ID: tenantID, DisplayName: "Contoso", Domains: []string{"contoso.example"}}); err != nil {
		t.Fatal(err)
	}
	return &counted{Store: s}
}

func view(t testing.TB, c *Cache) View {
	t.Helper()
	v, err := c.View(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// lookups returns how many times the store was asked for id through a
// view of c each time.
func lookups(t *testing.T, s *counted, c *Cache, id string, times int) (int64, error) {
	t.Helper()
	before := s.lookups.Load()
	var err error
	for range times {
		_, err = view(t, c).GetTenant(context.Background(), id)
	}
	return s.lookups.Load() - before, err
}

func TestKeptWhileTheGenerationStays(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	c := New(s)
	if n, err := lookups(t, s, c, tenantID, 3); n != 1 || err != nil {
		t.Fatalf("a tenant looked up three times: %d store lookups (%v), want 1", n, err)
	}
	if n, err := lookups(t, s, c, "missing", 3); n != 1 || !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a missing tenant looked up three times: %d store lookups (%v), want 1 and ErrNotFound", n, err)
	}
	// A write elsewhere in the directory starts another generation.
	if err := s.CreateTenant(ctx, store.Tenant{ID: "another"}); err != nil {
		t.Fatal(err)
	}
	if n, _ := lookups(t, s, c, tenantID, 2); n != 1 {
		t.Errorf("after a write: %d store lookups, want 1", n)
	}
	if n, err := lookups(t, s, c, "another", 2); n != 1 || err != nil {
		t.Errorf("the tenant missing before the write: %d store lookups (%v), want 1 and found", n, err)
	}
	if got := len(c.entries); got != 2 {
		t.Errorf("%d entries, want the 2 of the current generation", got)
	}
}

func TestFailuresAndLongNamesNotKept(t *testing.T) {
	s := newStore(t)
	c := New(s)
	s.fail = fmt.Errorf("%w: the database is down", store.ErrUnavailable)
	if n, err := lookups(t, s, c, tenantID, 2); n != 2 || !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("a failing lookup twice: %d store lookups (%v), want 2", n, err)
	}
	s.fail = nil
	if n, err := lookups(t, s, c, tenantID, 2); n != 1 || err != nil {
		t.Errorf("once the store answers: %d store lookups (%v), want 1", n, err)
	}
	if n, _ := lookups(t, s, c, strings.Repeat("x", maxKeyBytes+1), 2); n != 2 {
		t.Errorf("a name longer than any object's: %d store lookups, want 2 (not kept)", n)
	}
}

func TestBounded(t *testing.T) {
	s := newStore(t)
	c := New(s)
	c.max = 10
	for i := range 100 {
		if _, err := lookups(t, s, c, fmt.Sprint("missing-", i), 1); !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		if len(c.entries) > c.max {
			t.Fatalf("%d entries, above the bound of %d", len(c.entries), c.max)
		}
	}
	if n, _ := lookups(t, s, c, "missing-99", 1); n != 0 {
		t.Error("the latest entry was evicted when it was put")
	}
}

// TestHitsDoNotAllocate: a request answered from memory costs no garbage
// per lookup.
func TestHitsDoNotAllocate(t *testing.T) {
	s := newStore(t)
	v := view(t, New(s))
	ctx := context.Background()
	if _, err := v.GetTenant(ctx, tenantID); err != nil {
		t.Fatal(err)
	}
	if _, err := v.GetTenant(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	if _, _, err := v.GetApplicationWithPrincipalByAppID(ctx, tenantID, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := v.ListFederatedCredentials(ctx, "owner"); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		_, _ = v.GetTenant(ctx, tenantID)
		_, _ = v.GetTenant(ctx, "missing")
		_, _, _ = v.GetApplicationWithPrincipalByAppID(ctx, tenantID, "missing")
		_, _ = v.ListFederatedCredentials(ctx, "owner")
	}); n != 0 {
		t.Errorf("%v allocations per four hits, want 0", n)
	}
}

// TestConcurrentUse: requests at once, while writes go on, each see every
// write that returned before they began (run with -race).
func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	c := New(s)
	const writes = 30
	var written, views, stopped atomic.Int64 // tenants written-0 ... written-(written-1) are stored
	done := make(chan error)
	for range 4 {
		go func() {
			var err error
			for n := written.Load(); n < writes && err == nil; n = written.Load() {
				var v View
				if v, err = c.View(ctx); err != nil {
					break
				}
				views.Add(1)
				if n > 0 {
					if _, err = v.GetTenant(ctx, fmt.Sprint("written-", n-1)); err != nil {
						err = fmt.Errorf("written-%d, stored before the request began: %w", n-1, err)
						break
					}
				}
				// The next tenant, not written yet: its miss is kept.
				if _, err = v.GetTenant(ctx, fmt.Sprint("written-", n)); errors.Is(err, store.ErrNotFound) {
					err = nil
				}
			}
			stopped.Add(1)
			done <- err
		}()
	}
	for i := range writes {
		// Readers look the next tenant up before it is written.
		for seen := views.Load(); views.Load() < seen+8 && stopped.Load() == 0; {
			runtime.Gosched()
		}
		if err := s.CreateTenant(ctx, store.Tenant{ID: fmt.Sprint("written-", i)}); err != nil {
			t.Fatal(err)
		}
		written.Store(int64(i + 1))
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
