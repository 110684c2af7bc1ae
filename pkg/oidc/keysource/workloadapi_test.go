package keysource_test

import (
	"context"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/oidc/keysource"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/workloadapitest"
)

var td = spiffeid.RequireTrustDomainFromString("example.org")

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func kids(set keysource.KeySet) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

// startSource follows a development Workload API until its first key set.
func startSource(t *testing.T) (*workloadapitest.API, *keysource.WorkloadAPI) {
	t.Helper()
	api := workloadapitest.Start(t, t.TempDir())
	src, err := keysource.NewWorkloadAPI(context.Background(), td, keysource.WithAddr(api.Addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	waitFor(t, "the first key set", func() bool { _, ok := src.KeySet(); return ok })
	return api, src
}

func TestWorkloadAPIPublishesRotationsAtOnce(t *testing.T) {
	api, src := startSource(t)
	first, _ := src.KeySet()
	if len(first.Keys) != 1 {
		t.Fatalf("keys = %v, want one", kids(first))
	}
	k := first.Keys[0]
	if k.Use != "sig" || k.Algorithm != "RS256" || !k.IsPublic() || k.KeyID == "" {
		t.Fatalf("key = use %q alg %q public %v kid %q", k.Use, k.Algorithm, k.IsPublic(), k.KeyID)
	}
	if st := src.Status(); !st.Received || !st.UnavailableSince.IsZero() {
		t.Fatalf("status = %+v", st)
	}

	updated := src.Updated()
	start := time.Now()
	if err := api.Server.Rotate(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-updated:
	case <-time.After(time.Second):
		t.Fatal("the rotation was not published within 1 s")
	}
	t.Logf("rotation published after %v", time.Since(start))
	second, _ := src.KeySet()
	if len(second.Keys) != 2 || !second.Changed.After(first.Changed) {
		t.Fatalf("after the rotation: keys %v changed %v (before %v)", kids(second), second.Changed, first.Changed)
	}
	if second.Keys[0].KeyID > second.Keys[1].KeyID {
		t.Fatalf("keys not ordered by kid: %v", kids(second))
	}
}

func TestWorkloadAPIOutageKeepsKeysAndRecovers(t *testing.T) {
	api, src := startSource(t)
	before, _ := src.KeySet()

	api.Server.Stop()
	waitFor(t, "the outage to be noticed", func() bool { return !src.Status().UnavailableSince.IsZero() })
	st := src.Status()
	if st.Err == "" || !st.Received {
		t.Fatalf("status during the outage = %+v", st)
	}
	during, ok := src.KeySet()
	if !ok || !during.Changed.Equal(before.Changed) || len(during.Keys) != 1 {
		t.Fatalf("keys during the outage = %v %v, want the last ones", ok, kids(during))
	}

	api.Start() // same key directory: same key
	waitFor(t, "the source to reconnect", func() bool { return src.Status().UnavailableSince.IsZero() })
	after, _ := src.KeySet()
	if !after.Changed.Equal(before.Changed) {
		t.Fatal("an unchanged key set after a reconnect counted as a change")
	}
}

func TestWorkloadAPIRejectsBadAddress(t *testing.T) {
	if _, err := keysource.NewWorkloadAPI(context.Background(), td, keysource.WithAddr("http://agent")); err == nil {
		t.Fatal("an http address was accepted")
	}
}
