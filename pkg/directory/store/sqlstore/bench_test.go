package sqlstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/latency"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/pgtest"
)

const benchIssuer = "https://oidc.example.org"

// fill stores n federated credentials, 20 per owner, in one statement.
func fill(b *testing.B, s *Store, n int) {
	b.Helper()
	series := map[string]string{
		"sqlite":   "WITH RECURSIVE series(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM series WHERE x < ? - 1) SELECT x FROM series",
		"postgres": "SELECT x FROM generate_series(0, ?::int - 1) AS x",
	}[s.d.name]
	q := "INSERT INTO federated_credentials (" + ficColumns + ") SELECT 'fic-' || x, 'owner-' || (x / 20), 'c-' || x, '" + benchIssuer +
		"', 'spiffe://example.org/w/' || x, '[\"api://AzureADTokenExchange\"]', '', '', '', 0 FROM (" + series + ") AS s"
	if _, err := s.db.ExecContext(context.Background(), s.d.rebind(q), n); err != nil {
		b.Fatal(err)
	}
	if _, err := s.db.ExecContext(context.Background(), "ANALYZE"); err != nil {
		b.Fatal(err)
	}
}

func benchStores(b *testing.B) map[string]func() *Store {
	stores := map[string]func() *Store{
		"sqlite": func() *Store {
			s, err := OpenSQLite(filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		},
	}
	if pgtest.Available() {
		stores["postgres"] = func() *Store {
			s, err := OpenPostgres(context.Background(), pgtest.DSN(b))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		}
	}
	return stores
}

// BenchmarkCredentialLookup is the token endpoint's credential lookups with
// 10, 10 000 and 1 000 000 stored credentials: by owner (the exchange's
// path) and by issuer and subject. Both are indexed, so the time is flat.
func BenchmarkCredentialLookup(b *testing.B) {
	ctx := context.Background()
	for _, backend := range []string{"sqlite", "postgres"} {
		open, ok := benchStores(b)[backend]
		if !ok {
			continue
		}
		for _, n := range []int{10, 10_000, 1_000_000} {
			s := open()
			fill(b, s, n)
			b.Run(fmt.Sprintf("%s/by-owner/%d", backend, n), func(b *testing.B) {
				latency.Measure(b, func() {
					owner := fmt.Sprint("owner-", rand.IntN(n)/20)
					if l, err := s.ListFederatedCredentials(ctx, owner); err != nil || len(l) == 0 {
						b.Fatal(owner, l, err)
					}
				})
			})
			b.Run(fmt.Sprintf("%s/by-issuer-subject/%d", backend, n), func(b *testing.B) {
				latency.Measure(b, func() {
					sub := fmt.Sprint("spiffe://example.org/w/", rand.IntN(n))
					if l, err := s.FindFederatedCredentials(ctx, benchIssuer, sub); err != nil || len(l) != 1 {
						b.Fatal(sub, l, err)
					}
				})
			})
		}
	}
}
