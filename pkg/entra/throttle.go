package entra

import (
	"context"
	"sync"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/aadsts"
)

// Limits of the token endpoint's guessing defences. The user lockout is
// Entra's smart lockout default: 10 failures, then 60 seconds locked.
const (
	userFailures       = 10
	clientFailures     = 100 // of one client, from anywhere
	sourceFailures     = 20  // of one client from one address
	failureWindow      = time.Minute
	maxFailureKeys     = 10000
	passwordHashes     = 2 // concurrent Argon2id runs: 64 MiB each
	passwordHashesWait = 500 * time.Millisecond
)

// failureCounter counts failures per key (a user, a client, a client from
// one address) in a window starting at the first; at limit failures the
// key is blocked until the window ends. Memory is bounded: past
// maxFailureKeys, ended windows are dropped, then unblocked keys.
type failureCounter struct {
	mu      sync.Mutex
	limit   int
	window  time.Duration
	entries map[string]*failureSpan
}

type failureSpan struct {
	n     int
	start time.Time
}

func newFailureCounter(limit int, window time.Duration) *failureCounter {
	return &failureCounter{limit: limit, window: window, entries: map[string]*failureSpan{}}
}

// blocked returns how long key stays blocked; zero when it is not.
func (c *failureCounter) blocked(key string, now time.Time) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	if e == nil || e.n < c.limit {
		return 0
	}
	return max(0, e.start.Add(c.window).Sub(now))
}

// failed counts a failure of key.
func (c *failureCounter) failed(key string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	if e == nil || now.Sub(e.start) >= c.window {
		if e == nil && len(c.entries) >= maxFailureKeys {
			c.prune(now)
		}
		e = &failureSpan{start: now}
		c.entries[key] = e
	}
	e.n++
}

// prune makes room for a quarter of the table at once, so that a flood of
// new keys pays one scan per quarter, not one per request. Ended windows go
// first, then keys below the limit, so that a flood cannot lift a block.
func (c *failureCounter) prune(now time.Time) {
	target := maxFailureKeys * 3 / 4
	for k, e := range c.entries {
		if now.Sub(e.start) >= c.window {
			delete(c.entries, k)
		}
	}
	for _, keepBlocked := range []bool{true, false} {
		for k, e := range c.entries {
			if len(c.entries) <= target {
				return
			}
			if !keepBlocked || e.n < c.limit {
				delete(c.entries, k)
			}
		}
	}
}

// errHashesBusy is the answer when every password-hash slot stays taken.
var errHashesBusy = &aadsts.Error{Code: aadsts.ServiceUnavailable, OAuth: "temporarily_unavailable", Status: 503,
	Message: "The service is temporarily unavailable: too many sign-ins are being checked. Retry shortly.", RetryAfter: time.Second}

// passwordChecker runs the password KDF with a bound on concurrent runs,
// so that wrong passwords cannot take the process's memory, and runs it
// for unknown users too, so that the answer's time does not tell which
// users exist.
type passwordChecker struct {
	slots chan struct{}
	wait  time.Duration
	check func(encoded, password string) bool
	dummy func() string // an encoded hash compared against for an unknown user
}

func newPasswordChecker() *passwordChecker {
	return &passwordChecker{
		slots: make(chan struct{}, passwordHashes),
		wait:  passwordHashesWait,
		check: directory.CheckPassword,
		dummy: sync.OnceValue(func() string {
			h, err := directory.HashPassword("no user has this password")
			if err != nil {
				panic(err) // crypto/rand failing is not survivable
			}
			return h
		}),
	}
}

// verify reports whether password matches encoded; an empty encoded (an
// unknown user) does the same work and reports false.
func (c *passwordChecker) verify(ctx context.Context, encoded, password string) (bool, error) {
	select {
	case c.slots <- struct{}{}:
	default:
		t := time.NewTimer(c.wait)
		defer t.Stop()
		select {
		case c.slots <- struct{}{}:
		case <-t.C:
			return false, errHashesBusy
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	defer func() { <-c.slots }()
	if encoded == "" {
		c.check(c.dummy(), password)
		return false, nil
	}
	return c.check(encoded, password), nil
}

// throttled is the answer to a client or address that failed too often.
func throttled(retry time.Duration) error {
	e := aadsts.New(aadsts.TooManyRequests, "TenantThrottlingThreshold: There are too many incoming requests. This request was throttled. Please try again later.")
	e.RetryAfter = retry.Round(time.Second) + time.Second
	return e
}

// locked is Entra's smart-lockout answer.
func locked() error {
	return aadsts.New(aadsts.AccountLocked, "Your account is locked because you've tried to sign in too many times with an incorrect user ID or password.")
}
