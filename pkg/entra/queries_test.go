package entra_test

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/google/uuid"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store/sqlstore"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/latency"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/pgtest"
)

// TestStatementsPerExchange counts the store's statements one token
// request sends, on SQLite and on PostgreSQL: each is a round trip (or a
// read transaction). The directory is read once per generation: after a
// write, a request reads what it needs; the next ones of the same
// generation read nothing but, on PostgreSQL, the generation itself.
func TestStatementsPerExchange(t *testing.T) {
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			s, _ := stores[name](t)
			f := startFixtureOn(t, s, &fakeVerifier{}, "https://oidc.example.org")
			// PostgreSQL's generation is a statement of every request. Other
			// databases of the test cluster may commit meanwhile, which
			// makes a request miss: there a hit is looked for over tries.
			generation, tries := int64(0), 1
			if name == "postgres" {
				generation, tries = 1, 20
			}
			exchange := func(grant string, form url.Values) int64 {
				before := s.Reads()
				resp, body := f.post(t, "/"+tenantID+"/oauth2/v2.0/token", form, nil)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%s: %d %v", grant, resp.StatusCode, body)
				}
				return s.Reads() - before
			}
			for _, tc := range []struct {
				grant string
				form  url.Values
				reads int64
			}{
				// tenant, client with its principal, its secrets or
				// federated credentials, resource with its principal, the
				// client's role assignments
				{"secret", ccForm(), 5},
				{"federated", ccForm(federatedForm...), 5},
				// tenant, client, resource, user
				{"password", ropcForm(), 4},
			} {
				// Any write, here an unrelated tenant, starts a generation.
				if err := s.CreateTenant(context.Background(), store.Tenant{ID: uuid.NewString(), DisplayName: tc.grant}); err != nil {
					t.Fatal(err)
				}
				if got := exchange(tc.grant, tc.form); got != tc.reads+generation {
					t.Errorf("%s after a write: %d statements, want %d", tc.grant, got, tc.reads+generation)
				}
				got := int64(-1)
				for try := 0; try < tries && got != generation; try++ {
					got = exchange(tc.grant, tc.form)
				}
				if got != generation {
					t.Errorf("%s again: %d statements, want %d", tc.grant, got, generation)
				}
			}
		})
	}
}

// federatedForm turns ccForm's request into one with a federated
// assertion, which the fixture's verifier accepts.
var federatedForm = []string{"client_secret", "", "client_assertion_type", jwtBearer, "client_assertion", "good"}

// BenchmarkExchangeByStore is one federated exchange at a time over TLS on
// loopback, on SQLite and on PostgreSQL (the verifier is the fixture's
// stand-in). The directory does not change meanwhile, so after the first
// request every lookup is answered from the read cache, and the store's
// statements per request are its generation's.
func BenchmarkExchangeByStore(b *testing.B) {
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run("store="+name, func(b *testing.B) {
			s, _ := stores[name](b)
			f := startFixtureOn(b, s, &fakeVerifier{}, "https://oidc.example.org")
			form := ccForm(federatedForm...)
			exchange := func() {
				resp, body := f.post(b, "/"+tenantID+"/oauth2/v2.0/token", form, nil)
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("%d %v", resp.StatusCode, body)
				}
			}
			exchange() // the first reads the directory into memory
			reads := s.Reads()
			latency.Measure(b, exchange)
			b.ReportMetric(float64(s.Reads()-reads)/float64(b.N), "statements/op")
		})
	}
}

// stores open an empty database of each backend and return a store on it
// and a way to open another handle on the same database, as another
// replica (PostgreSQL) or another part of the process (SQLite) has; all
// are closed when t ends.
var stores = map[string]func(t testing.TB) (*sqlstore.Store, func() *sqlstore.Store){
	"sqlite": func(t testing.TB) (*sqlstore.Store, func() *sqlstore.Store) {
		path := filepath.Join(t.TempDir(), "db.sqlite")
		open := func() *sqlstore.Store {
			s, err := sqlstore.OpenSQLite(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
		return open(), open
	},
	"postgres": func(t testing.TB) (*sqlstore.Store, func() *sqlstore.Store) {
		dsn := pgtest.DSN(t)
		open := func() *sqlstore.Store {
			s, err := sqlstore.OpenPostgres(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
		return open(), open
	},
}
