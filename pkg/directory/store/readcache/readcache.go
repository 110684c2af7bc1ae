// Package readcache keeps the directory lookups of the token path in
// memory for as long as the store's generation (store.Store.Generation)
// stays the same. A request reads the generation once and looks up through
// a View of it: what was read under the same generation is served from
// memory, anything else is read from the store. Since any committed write,
// by this gateway or another replica, changes the generation, a credential
// removed is refused by the next request, as without the cache.
package readcache

import (
	"context"
	"errors"
	"sync"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

// maxEntries bounds the entries kept, so that callers naming ids that do
// not exist, whose misses are kept too, cannot grow memory without end.
const maxEntries = 4096

// maxKeyBytes bounds the names a kept entry is looked up by: longer ones,
// which no directory object has but a caller may send, are read each time.
const maxKeyBytes = 512

// Cache is a store's lookups kept under its generation. It is safe for
// concurrent use.
type Cache struct {
	store store.Store
	max   int

	mu      sync.RWMutex
	gen     string        // the generation entries were read under
	entries map[key]entry // dropped when another generation is seen
}

// New returns an empty cache of s's lookups.
func New(s store.Store) *Cache {
	return &Cache{store: s, max: maxEntries, entries: map[key]entry{}}
}

// View reads the store's current generation: lookups through the view
// answer as the store does at that generation or later.
func (c *Cache) View(ctx context.Context) (View, error) {
	gen, err := c.store.Generation(ctx)
	if err != nil {
		return View{}, err
	}
	return View{c: c, gen: gen}, nil
}

// kind is the lookup an entry answers.
type kind uint8

const (
	tenantByID kind = iota
	tenantByDomain
	appByAppID
	appByIdentifierURI
	managedIdentityByClientID
	federatedCredentials
	passwordCredentials
	keyCredentials
	appRoleAssignments
	userByUPN
)

// key is a lookup and its arguments: a tenant (or owner) and a name.
type key struct {
	kind  kind
	scope string
	name  string
}

// entry is a lookup's answer: a value, or store.ErrNotFound.
type entry struct {
	value any
	err   error
}

func (c *Cache) get(gen string, k key) (entry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if gen != c.gen {
		return entry{}, false
	}
	e, ok := c.entries[k]
	return e, ok
}

func (c *Cache) put(gen string, k key, e entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		// Generations are not ordered: a request that read an older one
		// may put after a newer one was seen. That costs misses for a
		// moment, never an answer of one generation served under another.
		clear(c.entries)
		c.gen = gen
	}
	if len(c.entries) >= c.max {
		for old := range c.entries { // an arbitrary entry: map order is random
			delete(c.entries, old)
			break
		}
	}
	c.entries[k] = e
}

// lookup answers k from the cache under v's generation, or with read,
// keeping its answer unless it is a failure of the store.
func lookup[T any](v View, k key, read func() (T, error)) (T, error) {
	if e, ok := v.c.get(v.gen, k); ok {
		if e.err != nil {
			var zero T
			return zero, e.err
		}
		return e.value.(T), nil
	}
	value, err := read()
	switch {
	case len(k.scope)+len(k.name) > maxKeyBytes:
	case err == nil:
		v.c.put(v.gen, k, entry{value: value})
	case errors.Is(err, store.ErrNotFound):
		v.c.put(v.gen, k, entry{err: err})
	}
	return value, err
}
