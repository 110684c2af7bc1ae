package e2e

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/seed"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store/sqlstore"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/federation/expression"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/issuermeta"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/gateway"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/oidcissuer"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/pgtest"
)

const (
	tenantID  = "6f0c2a4e-1b7d-4c55-9f3e-2d8a1b7c9e10"
	clientApp = "5d8b3f4c-ae60-4b9c-b3f1-7a4e9c1b2d56"
	workload  = "spiffe://example.org/ns/payments/sa/worker"
)

const replicaSeed = `
tenants:
  - id: ` + tenantID + `
    displayName: Contoso
    applications:
      - name: payments-api
        identifierUris: [api://payments]
        appRoles: [{value: Payments.Read}]
      - name: worker
        appId: ` + clientApp + `
        roleAssignments:
          - {resource: api://payments, role: Payments.Read}
`

// replica is one gateway's Entra side, serving on loopback TLS.
type replica struct {
	store store.Store
	entra *gateway.Entra
	srv   *httptest.Server
}

func newReplica(t *testing.T, s store.Store, issuers *x509.CertPool) *replica {
	t.Helper()
	e := gateway.NewEntra(s, gateway.EntraOptions{IssuerRootCAs: issuers, IssuerNetworks: issuermeta.Loopback})
	srv := httptest.NewTLSServer(e.Handler)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; srv.Close() })
	return &replica{store: s, entra: e, srv: srv}
}

// exchange presents assertion for the worker app and returns the status
// and the decoded body.
func (r *replica) exchange(t *testing.T, assertion string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientApp}, "scope": {"api://payments/.default"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}
	resp, err := r.srv.Client().PostForm(r.srv.URL+"/"+tenantID+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("status %d with a body that is not JSON: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, body
}

func (r *replica) keys(t *testing.T) jose.JSONWebKeySet {
	t.Helper()
	resp, err := r.srv.Client().Get(r.srv.URL + "/" + tenantID + "/discovery/v2.0/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	return set
}

func applySeed(t *testing.T, s store.Store) {
	t.Helper()
	f, err := seed.Parse([]byte(replicaSeed))
	if err != nil {
		t.Fatal(err)
	}
	if err := (&seed.Applier{Store: s, ParseExpression: expression.Check}).Apply(context.Background(), f); err != nil {
		t.Fatal(err)
	}
}

// addCredential federates the worker app to is, through the directory's
// validation as every API does.
func addCredential(t *testing.T, s store.Store, is *oidcissuer.Issuer) store.FederatedCredential {
	t.Helper()
	ctx := context.Background()
	app, err := s.GetApplicationByAppID(ctx, tenantID, clientApp)
	if err != nil {
		t.Fatal(err)
	}
	c := store.FederatedCredential{ID: "fic-worker", OwnerID: app.ObjectID, Name: "worker", Issuer: is.URL, Subject: workload,
		Audiences: []string{directory.TokenExchangeAudience}, CreatedAt: time.Now()}
	if err := directory.ValidateFederatedCredential(c, expression.Check); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateFederatedCredential(ctx, c); err != nil {
		t.Fatal(err)
	}
	return c
}

func assertion(t *testing.T, is *oidcissuer.Issuer) string {
	now := time.Now()
	return oidcissuer.Sign(t, jose.RS256, is.RSA, map[jose.HeaderKey]any{"kid": is.RSAKID},
		map[string]any{"iss": is.URL, "sub": workload, "aud": directory.TokenExchangeAudience, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()})
}

func wantCode(t *testing.T, what string, status int, body map[string]any, wantStatus int, wantErr string, code float64) {
	t.Helper()
	codes, _ := body["error_codes"].([]any)
	if status != wantStatus || body["error"] != wantErr || len(codes) != 1 || codes[0] != code {
		t.Fatalf("%s: %d %v %v, want %d %s AADSTS%v", what, status, body["error"], body["error_description"], wantStatus, wantErr, code)
	}
}

// waitFor polls exchange until it answers 200, checking that every answer
// on the way is a 200 or a well-shaped 503, never a 500.
func waitFor(t *testing.T, r *replica, tok string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		status, body := r.exchange(t, tok)
		switch {
		case status == http.StatusOK:
			return
		case status == http.StatusServiceUnavailable && body["error"] == "temporarily_unavailable":
		default:
			t.Fatalf("while the database recovers: %d %v", status, body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d %v after %s", status, body["error_description"], within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestReplicasSharePostgres is two gateways on one PostgreSQL database.
func TestReplicasSharePostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	is := oidcissuer.New(t)
	open := func() store.Store {
		s, err := sqlstore.OpenPostgres(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := newReplica(t, open(), oidcissuer.Pool(is)), newReplica(t, open(), oidcissuer.Pool(is))

	// Both start at once: one key per window, not two.
	var wg sync.WaitGroup
	for _, r := range []*replica{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = r.entra.Signer.Refresh(context.Background()) }()
	}
	wg.Wait()
	for _, r := range []*replica{a, b} {
		if err := r.entra.Signer.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := a.store.ListSigningKeys(context.Background())
	if err != nil || len(keys) != 2 {
		t.Fatalf("%d signing keys after two replicas started (%v); want the current and the next", len(keys), err)
	}

	applySeed(t, a.store)
	tok := assertion(t, is)
	status, body := b.exchange(t, tok)
	wantCode(t, "before the credential exists", status, body, 401, "invalid_client", 70025)

	// Created through one replica, honoured by the other on the next
	// exchange: the token endpoint reads credentials from the store on
	// every exchange, with no cache to go stale.
	fic := addCredential(t, a.store, is)
	status, body = b.exchange(t, tok)
	if status != http.StatusOK {
		t.Fatalf("replica B ignores the credential created through A: %d %v", status, body)
	}
	fromB := body["access_token"].(string)
	_, body = a.exchange(t, tok)
	fromA := body["access_token"].(string)
	for name, pair := range map[string]struct {
		token string
		keys  *replica
	}{"A's token with B's keys": {fromA, b}, "B's token with A's keys": {fromB, a}} {
		jws, err := jose.ParseSignedCompact(pair.token, []jose.SignatureAlgorithm{jose.RS256})
		if err != nil {
			t.Fatal(err)
		}
		set := pair.keys.keys(t)
		found := set.Key(jws.Signatures[0].Header.KeyID)
		if len(found) != 1 {
			t.Fatalf("%s: kid %s not published", name, jws.Signatures[0].Header.KeyID)
		}
		if _, err := jws.Verify(found[0].Key); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	if err := a.store.DeleteFederatedCredential(context.Background(), fic.OwnerID, fic.ID); err != nil {
		t.Fatal(err)
	}
	status, body = b.exchange(t, tok)
	wantCode(t, "after the credential was deleted through A", status, body, 401, "invalid_client", 70025)
}

func TestPostgresDownAtStart(t *testing.T) {
	cluster := pgtest.NewCluster(t)
	cluster.Stop(t)
	is := oidcissuer.New(t)
	s, err := sqlstore.OpenPostgres(context.Background(), cluster.DSN)
	if err != nil {
		t.Fatalf("opening a store whose server is down must not fail: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	err = s.Ping(context.Background())
	if !errors.Is(err, store.ErrUnavailable) || strings.Contains(err.Error(), strings.Split(strings.TrimPrefix(cluster.DSN, "postgres://gateway:"), "@")[0]) {
		t.Fatalf("Ping with the server down: %v; want ErrUnavailable without the password", err)
	}
	r := newReplica(t, s, oidcissuer.Pool(is))
	tok := assertion(t, is)
	status, body := r.exchange(t, tok)
	wantCode(t, "database down", status, body, 503, "temporarily_unavailable", 90033)

	cluster.Start(t)
	applySeed(t, s)
	addCredential(t, s, is)
	waitFor(t, r, tok, 20*time.Second)
}

func TestPostgresRestartWhileServing(t *testing.T) {
	cluster := pgtest.NewCluster(t)
	is := oidcissuer.New(t)
	s, err := sqlstore.OpenPostgres(context.Background(), cluster.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	applySeed(t, s)
	addCredential(t, s, is)
	r := newReplica(t, s, oidcissuer.Pool(is))
	tok := assertion(t, is)
	waitFor(t, r, tok, 10*time.Second)

	cluster.Restart(t)
	waitFor(t, r, tok, 10*time.Second)
	// The directory is intact: nothing was lost or half-written.
	creds, err := s.ListFederatedCredentials(context.Background(), mustApp(t, s).ObjectID)
	if err != nil || len(creds) != 1 {
		t.Fatalf("after the restart: %v %v", creds, err)
	}
}

func mustApp(t *testing.T, s store.Store) store.Application {
	t.Helper()
	app, err := s.GetApplicationByAppID(context.Background(), tenantID, clientApp)
	if err != nil {
		t.Fatal(err)
	}
	return app
}

// immutable makes the files of dir, and dir, unwritable, or undoes it.
// As root only the immutable attribute stops writes.
func immutable(t *testing.T, dir string, on bool) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	paths := append(files, dir)
	if os.Geteuid() == 0 {
		flag := "-i"
		if on {
			flag = "+i"
		}
		if out, err := exec.Command("chattr", append([]string{flag}, paths...)...).CombinedOutput(); err != nil {
			t.Skipf("chattr is not usable here: %v %s", err, out)
		}
		return
	}
	for _, p := range paths {
		mode := os.FileMode(0o600)
		if p == dir {
			mode = 0o700
		}
		if on {
			mode &^= 0o222
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSQLiteFaults(t *testing.T) {
	t.Run("corrupt file at start", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "gateway.db")
		if err := os.WriteFile(path, []byte(strings.Repeat("not a database ", 400)), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := sqlstore.OpenSQLite(path)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "is not a SQLite database") {
			t.Fatalf("opening a corrupt file: %v; want an error naming the file and the problem", err)
		}
	})

	t.Run("read-only while serving", func(t *testing.T) {
		dir := t.TempDir()
		s, err := sqlstore.OpenSQLite(filepath.Join(dir, "gateway.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		is := oidcissuer.New(t)
		applySeed(t, s)
		addCredential(t, s, is)
		r := newReplica(t, s, oidcissuer.Pool(is))
		tok := assertion(t, is)
		waitFor(t, r, tok, 10*time.Second)

		immutable(t, dir, true)
		t.Cleanup(func() { immutable(t, dir, false) })
		status, body := r.exchange(t, tok)
		if status != http.StatusOK {
			wantCode(t, "read-only database", status, body, 503, "temporarily_unavailable", 90033)
		}
		app := mustApp(t, s)
		err = s.CreateFederatedCredential(context.Background(), store.FederatedCredential{ID: "second", OwnerID: app.ObjectID, Name: "second",
			Issuer: is.URL, Subject: "spiffe://example.org/other", Audiences: []string{directory.TokenExchangeAudience}})
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("a write to a read-only database: %v; want ErrUnavailable", err)
		}

		immutable(t, dir, false)
		waitFor(t, r, tok, 10*time.Second)
		creds, err := s.ListFederatedCredentials(context.Background(), app.ObjectID)
		if err != nil || len(creds) != 1 || creds[0].Name != "worker" {
			t.Fatalf("after recovery: %+v %v; want only the first credential, nothing half-written", creds, err)
		}
	})
}
