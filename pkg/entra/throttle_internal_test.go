package entra

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// TestPasswordHashesBounded: with every slot taken a check waits briefly,
// then answers 503 temporarily_unavailable without hashing.
func TestPasswordHashesBounded(t *testing.T) {
	var runs atomic.Int32
	c := &passwordChecker{slots: make(chan struct{}, 1), wait: 50 * time.Millisecond,
		check: func(string, string) bool { runs.Add(1); return true }, dummy: func() string { return "dummy" }}
	c.slots <- struct{}{} // a hash in flight
	_, err := c.verify(context.Background(), "hash", "pw")
	if !errors.Is(err, errHashesBusy) || errHashesBusy.Status != 503 || errHashesBusy.OAuth != "temporarily_unavailable" || runs.Load() != 0 {
		t.Fatalf("with no slot: %v, %d hashes", err, runs.Load())
	}
	<-c.slots
	if ok, err := c.verify(context.Background(), "hash", "pw"); !ok || err != nil || runs.Load() != 1 {
		t.Fatalf("with a slot: %v %v", ok, err)
	}
}

// TestUnknownUserCostsAHash: an unknown user is checked against a dummy
// hash, the same work as a wrong password, and never matches.
func TestUnknownUserCostsAHash(t *testing.T) {
	var hashed []string
	c := &passwordChecker{slots: make(chan struct{}, 1), wait: time.Second,
		check: func(encoded, _ string) bool { hashed = append(hashed, encoded); return true }, dummy: func() string { return "dummy" }}
	if ok, err := c.verify(context.Background(), "", "pw"); ok || err != nil || len(hashed) != 1 || hashed[0] != "dummy" {
		t.Fatalf("unknown user: ok %v err %v hashed %v", ok, err, hashed)
	}
}

func TestFailureCounterWindowAndBound(t *testing.T) {
	c := newFailureCounter(3, time.Minute)
	now := time.Unix(1000, 0)
	for range 3 {
		c.failed("k", now)
	}
	if got := c.blocked("k", now.Add(10*time.Second)); got != 50*time.Second {
		t.Fatalf("blocked for %v, want the rest of the window", got)
	}
	if c.blocked("k", now.Add(time.Minute)) != 0 {
		t.Fatal("still blocked after the window")
	}
	later := now.Add(2 * time.Minute)
	for range 3 {
		c.failed("victim", later)
	}
	for i := range 2*maxFailureKeys + 10 {
		c.failed(string(rune(i)), later)
	}
	if len(c.entries) > maxFailureKeys {
		t.Fatalf("%d keys kept, bound %d", len(c.entries), maxFailureKeys)
	}
	if c.blocked("victim", later) == 0 {
		t.Fatal("a flood of new keys lifted a block")
	}
	// Full, one more key makes room for a quarter: the next ones need no scan.
	for len(c.entries) < maxFailureKeys {
		c.failed(fmt.Sprint("fill", len(c.entries)), later)
	}
	c.failed("one more", later)
	if len(c.entries) > maxFailureKeys*3/4+1 {
		t.Fatalf("%d keys after pruning a full table, want at most %d", len(c.entries), maxFailureKeys*3/4+1)
	}
}
