// Command soak runs a development gateway process on loopback under a
// mixed load at half its measured capacity for a bounded time, and prints
// a Markdown table of throughput, errors, latency and the process's RSS at
// the start, the middle and the end (docs/benchmarks.md records a run).
//
//	go run ./test/soak -bin bin/spiffe-entra-gateway -duration 10m
//
// The load: the OIDC discovery provider's key set and document, the Entra
// endpoint's discovery document, and client-credentials tokens with the
// development client's secret and with the development workload's JWT-SVID
// as assertion.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	bin := flag.String("bin", "bin/spiffe-entra-gateway", "the gateway binary")
	duration := flag.Duration("duration", 10*time.Minute, "how long the load runs (at most 1h)")
	calibrate := flag.Duration("calibrate", 15*time.Second, "how long the capacity is measured first")
	workers := flag.Int("workers", 16, "concurrent clients while measuring capacity; the bound of requests in flight after")
	wrongPasswords := flag.Int("wrong-passwords", 0, "instead of the soak: send this many wrong passwords at once and report the peak RSS")
	flag.Parse()
	if *duration > time.Hour {
		log.Fatal("-duration is at most 1h: the soak is bounded")
	}
	seedFile := ""
	if *wrongPasswords > 0 {
		seedFile = passwordSeed()
	}
	g, err := start(*bin, seedFile)
	if err != nil {
		log.Fatal(err)
	}
	defer g.stop()
	if *wrongPasswords > 0 {
		burst(g, *wrongPasswords)
		return
	}

	ops := g.ops()
	capacity := measure(ops, *workers, *calibrate)
	rate := capacity / 2
	fmt.Printf("capacity %.0f req/s with %d clients over %v; soaking at %.0f req/s for %v\n\n", capacity, *workers, *calibrate, rate, *duration)
	fmt.Println("| at | requests | errors | req/s | p50 | p99 | RSS |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|")
	fmt.Printf("| start | | | | | | %s |\n", mib(g.rss()))
	soak(g, ops, rate, *workers, *duration)
}

// gateway is the process under load.
type gateway struct {
	cmd    *exec.Cmd
	dir    string
	env    map[string]string
	client *http.Client
	entra  string
	oidc   string
}

func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func start(bin, seedFile string) (*gateway, error) {
	dir, err := os.MkdirTemp("", "soak-")
	if err != nil {
		return nil, err
	}
	entraPort, oidcPort := freePort(), freePort()
	args := []string{"serve", "--dev", "--data-dir", dir, "--entra-addr", "127.0.0.1:" + entraPort, "--oidc-addr", "127.0.0.1:" + oidcPort}
	if seedFile != "" {
		args = append(args, "--seed", seedFile)
	}
	cmd := exec.Command(bin, args...)
	logFile, err := os.Create(filepath.Join(dir, "gateway.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	g := &gateway{cmd: cmd, dir: dir, entra: "https://localhost:" + entraPort, oidc: "https://localhost:" + oidcPort}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if env, err := readEnv(filepath.Join(dir, "dev.env")); err == nil && env["GATEWAY_DEV_CLIENT_SECRET"] != "" {
			g.env = env
			break
		}
		if time.Now().After(deadline) {
			g.stop()
			return nil, fmt.Errorf("no dev.env within a minute; the log is %s", logFile.Name())
		}
		time.Sleep(200 * time.Millisecond)
	}
	pem, err := os.ReadFile(g.env["SSL_CERT_FILE"])
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	g.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool},
		MaxIdleConnsPerHost: 256,
		// localhost is the certificate's name; the listeners are on 127.0.0.1.
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, _ := net.SplitHostPort(addr)
			return dialer.DialContext(ctx, "tcp4", "127.0.0.1:"+port)
		},
	}}
	return g, nil
}

func readEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export ")
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			if uq, err := strconv.Unquote(v); err == nil {
				v = uq
			}
			env[k] = strings.Trim(v, "'")
		}
	}
	return env, sc.Err()
}

func (g *gateway) stop() {
	if g.cmd.Process != nil {
		_ = g.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = g.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = g.cmd.Process.Kill()
		}
	}
	_ = os.RemoveAll(g.dir)
}

// rss is the process's resident set in bytes.
func (g *gateway) rss() int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", g.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// op is one request of the mix; weight is its share.
type op struct {
	name   string
	weight int
	do     func() error
}

func (g *gateway) ops() []op {
	tenant := g.env["AZURE_TENANT_ID"]
	token := func(form url.Values) func() error {
		return func() error {
			form.Set("grant_type", "client_credentials")
			form.Set("client_id", g.env["AZURE_CLIENT_ID"])
			form.Set("scope", g.env["GATEWAY_DEV_SCOPE"])
			return g.expect200(g.client.PostForm(g.entra+"/"+tenant+"/oauth2/v2.0/token", form))
		}
	}
	assertion := func() error {
		svid, err := os.ReadFile(g.env["AZURE_FEDERATED_TOKEN_FILE"])
		if err != nil {
			return err
		}
		return token(url.Values{
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion":      {strings.TrimSpace(string(svid))},
		})()
	}
	get := func(u string) func() error { return func() error { return g.expect200(g.client.Get(u)) } }
	return []op{
		{"oidc keys", 30, get(g.oidc + "/keys")},
		{"oidc document", 10, get(g.oidc + "/.well-known/openid-configuration")},
		{"entra document", 10, get(g.entra + "/" + tenant + "/v2.0/.well-known/openid-configuration")},
		{"token, secret", 25, func() error { return token(url.Values{"client_secret": {g.env["GATEWAY_DEV_CLIENT_SECRET"]}})() }},
		{"token, assertion", 25, assertion},
	}
}

func (g *gateway) expect200(resp *http.Response, err error) error {
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %.200s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, body)
	}
	return nil
}

// pick returns the op for the n-th request, by weight.
func pick(ops []op, n uint64) op {
	total := 0
	for _, o := range ops {
		total += o.weight
	}
	k := int(n % uint64(total))
	for _, o := range ops {
		if k < o.weight {
			return o
		}
		k -= o.weight
	}
	return ops[0]
}

// measure runs the mix closed-loop with workers clients and returns the
// requests per second answered.
func measure(ops []op, workers int, d time.Duration) float64 {
	var n, errs atomic.Uint64
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				if err := pick(ops, n.Add(1)).do(); err != nil && errs.Add(1) <= 3 {
					log.Printf("calibration: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()-errs.Load()) / d.Seconds()
}

// window is what a stretch of the soak saw.
type window struct {
	mu        sync.Mutex
	latencies []time.Duration
	errs      int
	skipped   int // not sent: maxInFlight requests were already waiting
	firstErr  string
}

func (w *window) add(d time.Duration, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.latencies = append(w.latencies, d)
	if err != nil {
		w.errs++
		if w.firstErr == "" {
			w.firstErr = err.Error()
		}
	}
}

// soak sends the mix open-loop at rate for d, with at most maxInFlight
// requests outstanding, and prints a row for the middle and the end.
func soak(g *gateway, ops []op, rate float64, maxInFlight int, d time.Duration) {
	interval := time.Duration(float64(time.Second) / rate)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	slots := make(chan struct{}, maxInFlight)
	var n uint64
	var wg sync.WaitGroup
	begin := time.Now()
	w, from := &window{}, begin
	var total, totalErrs, totalSkipped int
	report := func(at string) {
		wg.Wait()
		w.mu.Lock()
		defer w.mu.Unlock()
		slices.Sort(w.latencies)
		q := func(p float64) time.Duration {
			if len(w.latencies) == 0 {
				return 0
			}
			return w.latencies[int(p*float64(len(w.latencies)-1))].Round(10 * time.Microsecond)
		}
		secs := time.Since(from).Seconds()
		fmt.Printf("| %s | %d | %d | %.0f | %v | %v | %s |\n", at, len(w.latencies), w.errs, float64(len(w.latencies)-w.errs)/secs, q(0.5), q(0.99), mib(g.rss()))
		if w.firstErr != "" {
			fmt.Printf("|  first error: %.200s |\n", w.firstErr)
		}
		total, totalErrs, totalSkipped = total+len(w.latencies), totalErrs+w.errs, totalSkipped+w.skipped
	}
	middle := false
	for now := range tick.C {
		elapsed := now.Sub(begin)
		if !middle && elapsed >= d/2 {
			report(fmt.Sprintf("middle (%v)", elapsed.Round(time.Second)))
			w, from, middle = &window{}, time.Now(), true
		}
		if elapsed >= d {
			break
		}
		select {
		case slots <- struct{}{}:
		default:
			w.skipped++
			continue
		}
		n++
		o, cur := pick(ops, n), w
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			t0 := time.Now()
			err := o.do()
			cur.add(time.Since(t0), err)
		}()
	}
	report(fmt.Sprintf("end (%v)", time.Since(begin).Round(time.Second)))
	fmt.Printf("\n%d requests, %d errors, %d not sent because %d were in flight\n", total, totalErrs, totalSkipped, maxInFlight)
}
