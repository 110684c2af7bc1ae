package apiauth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

// ErrGone is the ErrInvalid of a token whose caller (application, service
// principal or managed identity) no longer exists.
var ErrGone = fmt.Errorf("%w: the caller no longer exists", ErrInvalid)

// Live checks tokens against the directory as it is now, not as it was when
// they were issued: a deleted application's token or a revoked role would
// otherwise keep working for up to an hour. Answers are cached for TTL (a
// few seconds), so that a burst of calls costs one lookup.
type Live struct {
	Store store.Store
	// TTL bounds how long a deletion or revocation may go unnoticed; zero
	// means DefaultLiveTTL.
	TTL time.Duration
	Now func() time.Time

	mu    sync.Mutex
	cache map[string]liveEntry
}

// DefaultLiveTTL is how long Live trusts what it read.
const DefaultLiveTTL = 5 * time.Second

// maxLiveEntries bounds the cache; it is emptied when full.
const maxLiveEntries = 10000

type liveEntry struct {
	at    time.Time
	roles []string // role values the caller holds on the resource
	err   error    // ErrGone, or an audience that is not the resource's
}

func (l *Live) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// check is Verify's directory step for caller's token with audiences aud.
func (l *Live) check(ctx context.Context, c Caller, resourceAppID string, aud []string) (Caller, error) {
	key := strings.Join([]string{c.TenantID, c.ObjectID, c.AppID, resourceAppID, strings.Join(aud, " ")}, "|")
	ttl := l.TTL
	if ttl == 0 {
		ttl = DefaultLiveTTL
	}
	l.mu.Lock()
	e, ok := l.cache[key]
	l.mu.Unlock()
	// A role the token carries but the cached answer lacks may have been
	// granted since: read again rather than refuse a fresh token.
	granted := e.err == nil && slices.ContainsFunc(c.Roles, func(r string) bool { return !slices.Contains(e.roles, r) })
	if !ok || granted || l.now().Sub(e.at) >= ttl {
		var err error
		if e, err = l.read(ctx, c, resourceAppID, aud); err != nil {
			return Caller{}, err // the store failed: nothing is cached
		}
		l.mu.Lock()
		if l.cache == nil || len(l.cache) >= maxLiveEntries {
			l.cache = map[string]liveEntry{}
		}
		l.cache[key] = e
		l.mu.Unlock()
	}
	if e.err != nil {
		return Caller{}, e.err
	}
	c.Roles = slices.DeleteFunc(slices.Clone(c.Roles), func(r string) bool { return !slices.Contains(e.roles, r) })
	return c, nil
}

// read looks the caller and the resource up.
func (l *Live) read(ctx context.Context, c Caller, resourceAppID string, aud []string) (liveEntry, error) {
	e := liveEntry{at: l.now()}
	// The audience must be the resource's own: an application of the
	// tenant could otherwise claim an identifier URI the resource lacks
	// and mint tokens the resource accepts.
	own := false
	for _, a := range aud {
		if strings.EqualFold(a, resourceAppID) {
			own = true
			continue
		}
		app, err := l.Store.GetApplicationByIdentifierURI(ctx, c.TenantID, a)
		if other, ok := strings.CutSuffix(a, "/"); ok && errors.Is(err, store.ErrNotFound) {
			// Entra issues a token for https://graph.microsoft.com/ (as az
			// asks) to the resource named https://graph.microsoft.com, and
			// keeps the slash in aud.
			app, err = l.Store.GetApplicationByIdentifierURI(ctx, c.TenantID, other)
		}
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return e, err
		case app.AppID == resourceAppID:
			own = true
		}
	}
	if !own {
		e.err = ErrAudience
		return e, nil
	}
	sp, err := l.Store.GetServicePrincipal(ctx, c.ObjectID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// A managed identity has no service principal row: its token's
		// appid is its client id and its oid its principal id.
		mi, err := l.Store.GetManagedIdentityByClientID(ctx, c.TenantID, c.AppID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && mi.PrincipalID != c.ObjectID) {
			e.err = ErrGone
			return e, nil
		}
		if err != nil {
			return e, err
		}
	case err != nil:
		return e, err
	case sp.TenantID != c.TenantID || sp.AppID != c.AppID:
		e.err = ErrGone
		return e, nil
	}
	if len(c.Roles) == 0 {
		return e, nil
	}
	res, err := l.Store.GetServicePrincipalByAppID(ctx, c.TenantID, resourceAppID)
	if errors.Is(err, store.ErrNotFound) {
		return e, nil
	}
	if err != nil {
		return e, err
	}
	app, err := l.Store.GetApplicationByAppID(ctx, c.TenantID, resourceAppID)
	if errors.Is(err, store.ErrNotFound) {
		return e, nil
	}
	if err != nil {
		return e, err
	}
	as, err := l.Store.ListAppRoleAssignments(ctx, c.ObjectID)
	if err != nil {
		return e, err
	}
	for _, a := range as {
		if a.ResourceID != res.ObjectID {
			continue
		}
		for _, r := range app.AppRoles {
			if r.ID == a.AppRoleID {
				e.roles = append(e.roles, r.Value)
			}
		}
	}
	return e, nil
}
