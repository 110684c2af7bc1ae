package tokenfile_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/dev/devworkload"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/workload/tokenfile"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/workloadapitest"
)

const workloadID = "spiffe://example.org/ns/app/sa/api"

func readToken(t *testing.T, path string) *jwtsvid.SVID {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	svid, err := jwtsvid.ParseInsecure(string(b), []string{tokenfile.DefaultAudience})
	if err != nil {
		t.Fatalf("the token file does not hold a JWT-SVID for %s: %v", tokenfile.DefaultAudience, err)
	}
	return svid
}

func TestRefreshWritesTheFileAtomically(t *testing.T) {
	dir := t.TempDir()
	api := workloadapitest.Start(t, dir, devworkload.WithSPIFFEID(workloadID))
	for _, tc := range []struct {
		opts []tokenfile.Option
		mode os.FileMode
	}{
		{nil, 0o644},
		{[]tokenfile.Option{tokenfile.WithMode(0o600)}, 0o600},
	} {
		path := filepath.Join(dir, "out", "token-"+tc.mode.String())
		os.MkdirAll(filepath.Dir(path), 0o755)
		w := tokenfile.New(path, api.Client(), tc.opts...)
		if err := w.Ready(); err == nil {
			t.Fatal("Ready before the first write: want an error")
		}
		expiry, err := w.Refresh(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		svid := readToken(t, path)
		if svid.ID.String() != workloadID || !svid.Expiry.Equal(expiry) {
			t.Errorf("file holds %s expiring %v; Refresh reported %v", svid.ID, svid.Expiry, expiry)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != tc.mode {
			t.Errorf("mode %v, want %v", fi.Mode().Perm(), tc.mode)
		}
		if err := w.Ready(); err != nil {
			t.Errorf("Ready after writing a one-hour token: %v", err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "out"))
	if len(entries) != 2 {
		t.Errorf("directory holds %d entries, want the 2 token files and no temporary file", len(entries))
	}
}

func TestRefreshReportsTokensTooShortToCoverTheRereadInterval(t *testing.T) {
	dir := t.TempDir()
	api := workloadapitest.Start(t, dir, devworkload.WithSPIFFEID(workloadID), devworkload.WithSVIDTTL(5*time.Minute))
	path := filepath.Join(dir, "token")
	w := tokenfile.New(path, api.Client())
	_, err := w.Refresh(context.Background())
	var short *tokenfile.TooShortError
	if !errors.As(err, &short) {
		t.Fatalf("Refresh with 5-minute SVIDs = %v, want a TooShortError", err)
	}
	if !strings.Contains(err.Error(), "-jwtSVIDTTL") || !strings.Contains(err.Error(), "jwtTtl") {
		t.Errorf("the error does not tell the fix: %v", err)
	}
	readToken(t, path) // the best token there is, still written
	if err := w.Ready(); !errors.As(err, &short) {
		t.Errorf("Ready = %v, want the TooShortError", err)
	}
}

func TestRefreshKeepsALongerLivedToken(t *testing.T) {
	dir := t.TempDir()
	var skew atomic.Int64
	api := workloadapitest.Start(t, dir, devworkload.WithSPIFFEID(workloadID), devworkload.WithClock(func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }))
	path := filepath.Join(dir, "token")
	w := tokenfile.New(path, api.Client())
	first, err := w.Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	// An agent handing out an older cached SVID must not shorten the file's token.
	skew.Store(int64(-10 * time.Minute))
	got, err := w.Refresh(context.Background())
	if err != nil || !got.Equal(first) {
		t.Fatalf("Refresh with an older SVID = %v, %v; want the file's expiry %v kept", got, err, first)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Error("the file was replaced by a token expiring earlier")
	}
}

func TestRefreshSelectsTheSPIFFEID(t *testing.T) {
	dir := t.TempDir()
	api := workloadapitest.Start(t, dir, devworkload.WithSPIFFEID(workloadID))
	path := filepath.Join(dir, "token")
	w := tokenfile.New(path, api.Client(), tokenfile.WithSubject(spiffeid.RequireFromString("spiffe://example.org/other")))
	if _, err := w.Refresh(context.Background()); err == nil || !strings.Contains(err.Error(), "spiffe://example.org/other") {
		t.Fatalf("Refresh for an identity the workload lacks = %v, want an error naming it", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("a file was written: %v", err)
	}
	w = tokenfile.New(path, api.Client(), tokenfile.WithSubject(spiffeid.RequireFromString(workloadID)), tokenfile.WithAudiences("api://a", "api://b"))
	if _, err := w.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	svid, err := jwtsvid.ParseInsecure(string(b), []string{"api://b"})
	if err != nil || len(svid.Audience) != 2 {
		t.Fatalf("token for two audiences: %v %v", svid, err)
	}
}

// runWriter keeps a token file from a development Workload API issuing
// SVIDs that live ttl, refreshed 2 s ahead, until the test ends.
func runWriter(t *testing.T, ttl time.Duration) (string, *tokenfile.Writer, *workloadapitest.API) {
	t.Helper()
	dir := t.TempDir()
	api := workloadapitest.Start(t, dir, devworkload.WithSPIFFEID(workloadID), devworkload.WithSVIDTTL(ttl))
	path := filepath.Join(dir, "token")
	w := tokenfile.New(path, api.Client(), tokenfile.WithMinRemaining(2*time.Second), tokenfile.WithRetry(50*time.Millisecond, 200*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return path, w, api
}

// TestRunRefreshesAheadOfExpiry watches the file while Run keeps it: every
// token a reader finds has close to the minimum remainder left or more.
func TestRunRefreshesAheadOfExpiry(t *testing.T) {
	path, _, _ := runWriter(t, 4*time.Second)

	seen := map[string]bool{}
	for deadline := time.Now().Add(7 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, err := os.ReadFile(path)
		if os.IsNotExist(err) && len(seen) == 0 {
			continue
		}
		if err != nil {
			t.Fatalf("reader failed while the file was kept: %v", err)
		}
		svid, err := jwtsvid.ParseInsecure(string(b), []string{tokenfile.DefaultAudience})
		if err != nil {
			t.Fatalf("reader found a partial or foreign token: %v", err)
		}
		// JWT expiry has one-second resolution: allow that and scheduling.
		if left := time.Until(svid.Expiry); left < time.Second-200*time.Millisecond {
			t.Fatalf("reader found a token with %v left, want about 2s or more", left)
		}
		seen[string(b)] = true
	}
	if len(seen) < 3 {
		t.Errorf("%d distinct tokens in 7s of 4s tokens refreshed 2s ahead, want at least 3", len(seen))
	}
}

func TestRunSurvivesAWorkloadAPIRestart(t *testing.T) {
	path, w, api := runWriter(t, 3*time.Second)

	waitFor(t, 5*time.Second, func() bool { return w.Ready() == nil }, "the first token")
	api.Server.Stop()
	waitFor(t, 5*time.Second, func() bool { return w.Ready() != nil }, "not-ready while the Workload API is down")
	stale := readToken(t, path)
	api.Start(devworkload.WithSVIDTTL(3 * time.Second))
	waitFor(t, 10*time.Second, func() bool { return w.Ready() == nil }, "a fresh token after the restart")
	if fresh := readToken(t, path); !fresh.Expiry.After(stale.Expiry) {
		t.Errorf("token after restart expires %v, not after the stale one's %v", fresh.Expiry, stale.Expiry)
	}
}

func waitFor(t *testing.T, limit time.Duration, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, limit)
		}
	}
}

func TestWriteEnvSurvivesShellQuoting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "azure.env")
	tricky := `it's "quoted" $HOME; echo pwned`
	if err := tokenfile.WriteEnv(path, "two\nlines", [][2]string{{"A", tricky}, {"EMPTY", ""}, {"B", "plain"}}, 0o640); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sh", "-c", `. "$0"; printf '%s|%s|%s' "$A" "${EMPTY-unset}" "$B"`, path).Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := tricky + "|unset|plain"; string(out) != want {
		t.Errorf("sourced values %q, want %q", out, want)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
}
