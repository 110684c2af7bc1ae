package entra_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store/sqlstore"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/latency"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/pgtest"
)

// TestStatementsPerExchange counts the store's statements one token
// request sends, on SQLite and on PostgreSQL: each is a round trip (or a
// read transaction), and the directory is read on every exchange, never
// cached, so that a credential removed is refused at once on every replica.
func TestStatementsPerExchange(t *testing.T) {
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			s := stores[name](t)
			t.Cleanup(func() { s.Close() })
			f := startFixtureOn(t, s, &fakeVerifier{}, "https://oidc.example.org")
			for _, tc := range []struct {
				grant string
				form  []string
				want  int64
			}{
				// tenant, client with its principal, its secrets or
				// federated credentials, resource with its principal, the
				// client's role assignments
				{"secret", nil, 5},
				{"federated", federatedForm, 5},
			} {
				before := s.Reads()
				resp, body := f.post(t, "/"+tenantID+"/oauth2/v2.0/token", ccForm(tc.form...), nil)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%s: %d %v", tc.grant, resp.StatusCode, body)
				}
				got := s.Reads() - before
				t.Logf("%s: %d statements", tc.grant, got)
				if got != tc.want {
					t.Errorf("%s: %d statements per exchange, want %d", tc.grant, got, tc.want)
				}
			}
		})
	}
}

// federatedForm turns ccForm's request into one with a federated
// assertion, which the fixture's verifier accepts.
var federatedForm = []string{"client_secret", "", "client_assertion_type", jwtBearer, "client_assertion", "good"}

// BenchmarkExchangeByStore is one federated exchange at a time over TLS on
// loopback, on SQLite and on PostgreSQL: the store's round trips are on
// each request's path (the verifier is the fixture's stand-in).
func BenchmarkExchangeByStore(b *testing.B) {
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run("store="+name, func(b *testing.B) {
			s := stores[name](b)
			b.Cleanup(func() { s.Close() })
			f := startFixtureOn(b, s, &fakeVerifier{}, "https://oidc.example.org")
			form := ccForm(federatedForm...)
			reads := s.Reads()
			latency.Measure(b, func() {
				resp, body := f.post(b, "/"+tenantID+"/oauth2/v2.0/token", form, nil)
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("%d %v", resp.StatusCode, body)
				}
			})
			b.ReportMetric(float64(s.Reads()-reads)/float64(b.N), "statements/op")
		})
	}
}

var stores = map[string]func(t testing.TB) *sqlstore.Store{
	"sqlite": func(t testing.TB) *sqlstore.Store {
		s, err := sqlstore.OpenSQLite(t.TempDir() + "/db.sqlite")
		if err != nil {
			t.Fatal(err)
		}
		return s
	},
	"postgres": func(t testing.TB) *sqlstore.Store {
		s, err := sqlstore.OpenPostgres(context.Background(), pgtest.DSN(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	},
}
