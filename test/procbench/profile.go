package procbench

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Where and when the benchmarks take CPU profiles of the gateway builds
// that serve /debug/pprof/: none unless ProfileDirEnv is set.
const (
	// ProfileDirEnv is the directory the profiles go to, as NAME.pprof.
	ProfileDirEnv = "BENCH_PROFILE_DIR"
	// ProfileConnsEnv is the connection count whose sub-benchmarks are
	// profiled (each benchmark has its default).
	ProfileConnsEnv = "BENCH_PROFILE_CONNS"
	// ProfileSecondsEnv is each profile's length (default 10 s; under the
	// health listener's 30 s write timeout).
	ProfileSecondsEnv = "BENCH_PROFILE_SECONDS"
)

// Profile is a CPU profile Measure takes of the server it loads. The zero
// Profile takes none.
type Profile struct {
	// From is the server's /debug/pprof/ URL, To the file.
	From, To string
	Seconds  int
}

// ProfileOf returns the profile to take of a server loaded by conns
// connections, saved as $BENCH_PROFILE_DIR/NAME.pprof: the zero Profile
// unless that variable is set, the server serves pprof at pprofURL (""
// when it does not) and conns is $BENCH_PROFILE_CONNS, or defaultConns.
func ProfileOf(b testing.TB, pprofURL, name string, conns, defaultConns int) Profile {
	b.Helper()
	dir := os.Getenv(ProfileDirEnv)
	if dir == "" || pprofURL == "" || conns != envInt(b, ProfileConnsEnv, defaultConns) {
		return Profile{}
	}
	return Profile{From: pprofURL, To: filepath.Join(dir, name+".pprof"), Seconds: envInt(b, ProfileSecondsEnv, 10)}
}

func envInt(b testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// ServesPprof returns pprofURL when the server answers it (a build run
// with profiling on), or "" (profiling off, or a build from before it).
func ServesPprof(pprofURL string) string {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(pprofURL)
	if err != nil {
		return ""
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return pprofURL
}

// take profiles the server for p.Seconds while conns connections keep
// loading it with op, and saves the profile. The runs of b.N = 1 that go
// test makes first are not profiled (Measure); with -benchtime Nx the run
// of N is, and with a time each of go test's growing runs is, the last
// one's profile kept.
func (p Profile) take(b *testing.B, conns int, op func()) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					op()
				}
			}
		}()
	}
	err := p.fetch()
	close(stop)
	wg.Wait()
	if err != nil {
		b.Errorf("CPU profile: %v", err)
		return
	}
	b.Logf("CPU profile of %d s under the same load, after the measured requests, saved as %s", p.Seconds, p.To)
}

// fetch asks the server for the profile, which it answers once p.Seconds
// have passed, and saves it.
func (p Profile) fetch() error {
	c := &http.Client{Timeout: time.Duration(p.Seconds)*time.Second + 30*time.Second}
	resp, err := c.Get(fmt.Sprintf("%sprofile?seconds=%d", p.From, p.Seconds))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: status %d: %s", p.From, resp.StatusCode, body)
	}
	return os.WriteFile(p.To, body, 0o644)
}
