package identityendpoint

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const header = "0123456789abcdef-identity-header"

// tokenEndpoint is a stand-in for Entra's token endpoint that records what
// it is asked and answers with status and body.
type tokenEndpoint struct {
	srv      *httptest.Server
	calls    atomic.Int32
	mu       sync.Mutex
	forms    []url.Values
	status   int
	body     string
	expires  int
	hold     chan struct{} // when set, requests wait for it to close
	tokenSeq atomic.Int32
}

func newTokenEndpoint(t *testing.T) *tokenEndpoint {
	e := &tokenEndpoint{status: http.StatusOK, expires: 3599}
	e.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.calls.Add(1)
		r.ParseForm()
		e.mu.Lock()
		e.forms = append(e.forms, r.PostForm)
		status, body, hold := e.status, e.body, e.hold
		e.mu.Unlock()
		if hold != nil {
			<-hold
		}
		if r.URL.Path != "/tenant-1/oauth2/v2.0/token" {
			http.Error(w, "wrong path "+r.URL.Path, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if body == "" {
			body = fmt.Sprintf(`{"token_type":"Bearer","expires_in":%d,"access_token":"at-%d-%s-%s"}`,
				e.expires, e.tokenSeq.Add(1), r.PostForm.Get("client_id"), r.PostForm.Get("scope"))
		}
		io.WriteString(w, body)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *tokenEndpoint) lastForm() url.Values {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.forms[len(e.forms)-1]
}

// clock is a settable time source, in whole seconds.
type clock struct{ unix atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.unix.Store(1_800_000_000)
	return c
}
func (c *clock) now() time.Time      { return time.Unix(c.unix.Load(), 0) }
func (c *clock) add(d time.Duration) { c.unix.Add(int64(d / time.Second)) }

func newServer(t *testing.T, e *tokenEndpoint, c *clock) *httptest.Server {
	t.Helper()
	cfg := Config{
		AuthorityHost: e.srv.URL, TenantID: "tenant-1", ClientID: "default-client", Header: header,
		Assertion:  func(context.Context) (string, error) { return "svid-jwt", nil },
		HTTPClient: e.srv.Client(),
	}
	if c != nil {
		cfg.Now = c.now
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv
}

type answer struct {
	status int
	body   map[string]string
	raw    string
}

func do(t *testing.T, method, u string, hdr map[string]string, form url.Values) answer {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, raw: string(raw)}
	json.Unmarshal(raw, &a.body)
	return a
}

func imdsURL(base, resource, clientID string) string {
	q := url.Values{"api-version": {"2018-02-01"}, "resource": {resource}}
	if clientID != "" {
		q.Set("client_id", clientID)
	}
	return base + IMDSPath + "?" + q.Encode()
}

var metadata = map[string]string{"Metadata": "true"}

func TestIMDSAnswersInIMDSShape(t *testing.T) {
	e := newTokenEndpoint(t)
	c := newClock()
	srv := newServer(t, e, c)

	a := do(t, "GET", imdsURL(srv.URL, "https://vault.azure.net", ""), metadata, nil)
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.raw)
	}
	want := map[string]string{
		"access_token": "at-1-default-client-https://vault.azure.net/.default", "refresh_token": "",
		"expires_in": "3599", "ext_expires_in": "3599", "expires_on": "1800003599", "not_before": "1800000000",
		"resource": "https://vault.azure.net", "token_type": "Bearer", "client_id": "default-client",
	}
	for k, v := range want {
		if a.body[k] != v {
			t.Errorf("%s = %q, want %q", k, a.body[k], v)
		}
	}
	f := e.lastForm()
	if f.Get("client_assertion") != "svid-jwt" || f.Get("grant_type") != "client_credentials" ||
		f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		t.Errorf("exchange form %v", f)
	}

	// A v1 resource with a trailing slash keeps it, as MSAL does.
	a = do(t, "GET", imdsURL(srv.URL, "https://management.core.windows.net/", "other-client"), metadata, nil)
	if a.status != 200 || a.body["client_id"] != "other-client" {
		t.Fatalf("status %d: %s", a.status, a.raw)
	}
	if got := e.lastForm(); got.Get("scope") != "https://management.core.windows.net//.default" || got.Get("client_id") != "other-client" {
		t.Errorf("exchange form %v", got)
	}
}

func TestRefusals(t *testing.T) {
	e := newTokenEndpoint(t)
	srv := newServer(t, e, nil)
	vault := url.QueryEscape("https://vault.azure.net")
	for _, tc := range []struct {
		name, method, url string
		hdr               map[string]string
		form              url.Values
		status            int
		desc              string
	}{
		{"IMDS without Metadata", "GET", imdsURL(srv.URL, "https://vault.azure.net", ""), nil, nil, 400, "metadata header"},
		{"IMDS with Metadata false", "GET", imdsURL(srv.URL, "https://vault.azure.net", ""), map[string]string{"Metadata": "false"}, nil, 400, "metadata header"},
		{"IMDS proxied", "GET", imdsURL(srv.URL, "https://vault.azure.net", ""), map[string]string{"Metadata": "true", "X-Forwarded-For": "10.0.0.1"}, nil, 400, "X-Forwarded-For"},
		{"IMDS without api-version", "GET", srv.URL + IMDSPath + "?resource=" + vault, metadata, nil, 400, "api-version"},
		{"IMDS without resource", "GET", srv.URL + IMDSPath + "?api-version=2018-02-01", metadata, nil, 400, "audience"},
		{"IMDS by resource id", "GET", imdsURL(srv.URL, "https://vault.azure.net", "") + "&mi_res_id=%2Fsubscriptions%2Fx", metadata, nil, 400, "Identity not found"},
		{"IMDS path with a slash", "GET", srv.URL + IMDSPath + "/?api-version=2018-02-01", metadata, nil, 400, "audience"},
		{"IMDS POST", "POST", imdsURL(srv.URL, "https://vault.azure.net", ""), metadata, url.Values{}, 405, "not allowed"},
		{"App Service without header", "GET", srv.URL + MSIPath + "?api-version=2019-08-01&resource=" + vault, nil, nil, 401, "X-IDENTITY-HEADER"},
		{"App Service wrong header", "GET", srv.URL + MSIPath + "?api-version=2019-08-01&resource=" + vault, map[string]string{"X-IDENTITY-HEADER": header + "x"}, nil, 401, "X-IDENTITY-HEADER"},
		{"App Service secret on 2019-08-01", "GET", srv.URL + MSIPath + "?api-version=2019-08-01&resource=" + vault, map[string]string{"Secret": header}, nil, 401, "X-IDENTITY-HEADER"},
		{"App Service 2017 without secret", "GET", srv.URL + MSIPath + "?api-version=2017-09-01&resource=" + vault, map[string]string{"X-IDENTITY-HEADER": header}, nil, 401, "secret"},
		{"App Service unknown version", "GET", srv.URL + MSIPath + "?api-version=2030-01-01&resource=" + vault, map[string]string{"X-IDENTITY-HEADER": header}, nil, 400, "not supported"},
		{"Cloud Shell without Metadata", "POST", srv.URL + MSIPath, nil, url.Values{"resource": {"https://vault.azure.net"}}, 400, "metadata header"},
		{"other path", "GET", srv.URL + "/metadata/instance?api-version=2021-02-01", metadata, nil, 404, "No managed-identity endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, tc.method, tc.url, tc.hdr, tc.form)
			if a.status != tc.status || a.body["error"] == "" || !strings.Contains(a.body["error_description"], tc.desc) {
				t.Errorf("got %d %s, want %d with %q", a.status, a.raw, tc.status, tc.desc)
			}
		})
	}
	if n := e.calls.Load(); n != 0 {
		t.Errorf("%d exchanges for refused requests", n)
	}
}

func TestAppServiceAndCloudShell(t *testing.T) {
	e := newTokenEndpoint(t)
	srv := newServer(t, e, nil)
	a := do(t, "GET", srv.URL+MSIPath+"?api-version=2019-08-01&resource=https%3A%2F%2Fstorage.azure.com&client_id=c2",
		map[string]string{"X-IDENTITY-HEADER": header}, nil)
	if a.status != 200 || a.body["client_id"] != "c2" || a.body["resource"] != "https://storage.azure.com" {
		t.Fatalf("App Service: %d %s", a.status, a.raw)
	}
	a = do(t, "GET", srv.URL+MSIPath+"?api-version=2017-09-01&resource=https%3A%2F%2Fstorage.azure.com&clientid=c3",
		map[string]string{"Secret": header}, nil)
	if a.status != 200 || a.body["client_id"] != "c3" {
		t.Fatalf("App Service 2017-09-01: %d %s", a.status, a.raw)
	}
	a = do(t, "POST", srv.URL+MSIPath, metadata, url.Values{"resource": {"https://management.core.windows.net/"}})
	if a.status != 200 || a.body["client_id"] != "default-client" || a.body["resource"] != "https://management.core.windows.net/" {
		t.Fatalf("Cloud Shell: %d %s", a.status, a.raw)
	}
	if n := e.calls.Load(); n != 3 {
		t.Errorf("%d exchanges, want 3", n)
	}
}

func TestCachePerClientAndResourceRefreshedAhead(t *testing.T) {
	e := newTokenEndpoint(t)
	c := newClock()
	srv := newServer(t, e, c)
	get := func(resource, client string) string {
		t.Helper()
		a := do(t, "GET", imdsURL(srv.URL, resource, client), metadata, nil)
		if a.status != 200 {
			t.Fatalf("status %d: %s", a.status, a.raw)
		}
		return a.body["access_token"]
	}
	first := get("https://vault.azure.net", "")
	if get("https://vault.azure.net", "") != first || get("https://vault.azure.net", "default-client") != first {
		t.Error("the cached token was not reused")
	}
	if e.calls.Load() != 1 {
		t.Fatalf("%d exchanges, want 1", e.calls.Load())
	}
	get("https://storage.azure.com", "")
	get("https://vault.azure.net", "c2")
	if e.calls.Load() != 3 {
		t.Fatalf("%d exchanges, want one per client and resource (3)", e.calls.Load())
	}

	// 49 minutes on, 11 left: still handed out.
	c.add(49 * time.Minute)
	if get("https://vault.azure.net", "") != first {
		t.Error("a token with 11 minutes left was not reused")
	}
	// 9 left: exchanged again, and the answer says how long the new one lasts.
	c.add(2 * time.Minute)
	a := do(t, "GET", imdsURL(srv.URL, "https://vault.azure.net", ""), metadata, nil)
	if a.body["access_token"] == first || a.body["expires_in"] != "3599" {
		t.Errorf("with 9 minutes left: %s", a.raw)
	}
	if e.calls.Load() != 4 {
		t.Errorf("%d exchanges, want 4", e.calls.Load())
	}
}

func TestShortTokensAreReusedForHalfTheirLife(t *testing.T) {
	e := newTokenEndpoint(t)
	e.expires = 600
	c := newClock()
	srv := newServer(t, e, c)
	for range 3 {
		do(t, "GET", imdsURL(srv.URL, "https://vault.azure.net", ""), metadata, nil)
	}
	c.add(4 * time.Minute)
	do(t, "GET", imdsURL(srv.URL, "https://vault.azure.net", ""), metadata, nil)
	if n := e.calls.Load(); n != 1 {
		t.Errorf("%d exchanges for 10-minute tokens within 4 minutes, want 1", n)
	}
	c.add(2 * time.Minute)
	do(t, "GET", imdsURL(srv.URL, "https://vault.azure.net", ""), metadata, nil)
	if n := e.calls.Load(); n != 2 {
		t.Errorf("%d exchanges after 6 minutes, want 2", n)
	}
}

func TestConcurrentFirstRequestsShareOneExchange(t *testing.T) {
	e := newTokenEndpoint(t)
	e.hold = make(chan struct{})
	srv := newServer(t, e, nil)
	const n = 20
	var wg sync.WaitGroup
	results := make([]answer, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = do(t, "GET", imdsURL(srv.URL, "https://vault.azure.net", ""), metadata, nil)
		}()
	}
	// Let the requests pile up behind the first exchange, then release it.
	for e.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	close(e.hold)
	wg.Wait()
	for i, r := range results {
		if r.status != 200 || r.body["access_token"] != results[0].body["access_token"] {
			t.Errorf("request %d: %d %s", i, r.status, r.raw)
		}
	}
	if got := e.calls.Load(); got != 1 {
		t.Errorf("%d exchanges for %d concurrent first requests, want 1", got, n)
	}
}

func TestRefusalPassedOnAndCachedTokenKeptThroughAnOutage(t *testing.T) {
	e := newTokenEndpoint(t)
	c := newClock()
	srv := newServer(t, e, c)
	first := do(t, "GET", imdsURL(srv.URL, "https://vault.azure.net", ""), metadata, nil)

	refusal := `{"error":"invalid_client","error_description":"AADSTS70021: No matching federated identity record found for presented assertion.","error_codes":[70021]}`
	e.mu.Lock()
	e.status, e.body = http.StatusUnauthorized, refusal
	e.mu.Unlock()
	a := do(t, "GET", imdsURL(srv.URL, "https://storage.azure.com", ""), metadata, nil)
	if a.status != 401 || a.raw != refusal {
		t.Errorf("refusal: %d %s", a.status, a.raw)
	}

	// Within the refresh margin, the endpoint down: the cached token, still
	// valid for 5 minutes, is handed out.
	e.mu.Lock()
	e.status, e.body = http.StatusServiceUnavailable, `{"error":"temporarily_unavailable"}`
	e.mu.Unlock()
	c.add(55 * time.Minute)
	a = do(t, "GET", imdsURL(srv.URL, "https://vault.azure.net", ""), metadata, nil)
	if a.status != 200 || a.body["access_token"] != first.body["access_token"] || a.body["expires_in"] != "299" {
		t.Errorf("during an outage: %d %s", a.status, a.raw)
	}
	// Expired: the outage shows, as a 502 (the token endpoint's 5xx).
	c.add(5 * time.Minute)
	a = do(t, "GET", imdsURL(srv.URL, "https://vault.azure.net", ""), metadata, nil)
	if a.status != http.StatusBadGateway {
		t.Errorf("after expiry during an outage: %d %s", a.status, a.raw)
	}
}

func TestCheckListenAddr(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:8080": true, "localhost:80": true, "[::1]:80": true, "169.254.169.254:80": true,
		":8080": false, "0.0.0.0:80": false, "10.1.2.3:80": false, "example.com:80": false, "127.0.0.1": false,
	} {
		if err := CheckListenAddr(addr); (err == nil) != ok {
			t.Errorf("CheckListenAddr(%q) = %v", addr, err)
		}
	}
}

func TestNewRefusesAShortHeader(t *testing.T) {
	_, err := New(Config{AuthorityHost: "https://x", TenantID: "t", ClientID: "c", Header: "short",
		Assertion: func(context.Context) (string, error) { return "", nil }})
	if err == nil {
		t.Error("a 5-character identity header was accepted")
	}
}
