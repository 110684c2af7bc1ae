package gateway

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store/readcache"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/federation"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/federation/expression"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/issuermeta"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/signer"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/mgmt/apiauth"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/mgmt/arm"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/mgmt/graph"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/metrics"
)

// EntraOptions configure the Entra side of a gateway.
type EntraOptions struct {
	// IssuerRootCAs verify the federated issuers' TLS certificates; nil
	// means the system roots.
	IssuerRootCAs *x509.CertPool
	// AnyIssuerExpressions honours flexible credentials for every issuer,
	// not only those Entra honours them for.
	AnyIssuerExpressions bool
	// IssuerNetworks are the networks issuers may be fetched from although
	// not public (issuermeta.WithAllowedNetworks).
	IssuerNetworks []netip.Prefix
	// AllowedHosts are the authority host names served (entra.HostPolicy);
	// empty means entra.DevHosts.
	AllowedHosts []string
	// KEKs seal the token signing keys at rest (signer.WithKEKs).
	KEKs []*signer.KEK
	// DefaultTenant is the tenant the ADFS-shaped authority https://HOST/adfs
	// stands for (entra.WithDefaultTenant); none when empty.
	DefaultTenant string
	// Metrics, when set, counts tokens and issuer fetches.
	Metrics *metrics.Metrics
	Logger  *slog.Logger
}

// Entra is the Entra endpoint over a store: the token endpoint, the Graph
// and ARM shaped management APIs, its signer and the cache of federated
// issuers' metadata. Replicas sharing a store
// share its directory and signing keys; each keeps its own issuer cache.
type Entra struct {
	Handler http.Handler
	Signer  *signer.Signer
}

// NewEntra assembles the Entra endpoint over s. It does no I/O: the signer
// gets its keys when Run (or Signer.Refresh) first reaches the store.
func NewEntra(s store.Store, opts EntraOptions) *Entra {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	metaOpts := []issuermeta.Option{issuermeta.WithLogger(logger.With("component", "issuermeta")), issuermeta.WithAllowedNetworks(opts.IssuerNetworks...)}
	if opts.IssuerRootCAs != nil {
		metaOpts = append(metaOpts, issuermeta.WithRootCAs(opts.IssuerRootCAs))
	}
	// The token endpoint reads the directory through a cache kept under
	// the store's generation: a write through Graph, ARM, the seed or
	// another replica is seen by the next token request.
	entraOpts := []entra.Option{entra.WithLogger(logger.With("component", "entra")), entra.WithDefaultTenant(opts.DefaultTenant),
		entra.WithReadCache(readcache.New(s))}
	if opts.Metrics != nil {
		metaOpts = append(metaOpts, issuermeta.WithFetchObserver(opts.Metrics.IssuerFetch))
		entraOpts = append(entraOpts, entra.WithMetrics(opts.Metrics))
	}
	verifier := federation.NewVerifier(issuermeta.New(metaOpts...),
		federation.WithAnyIssuerExpressions(opts.AnyIssuerExpressions),
		federation.WithLogger(logger.With("component", "federation")))
	sg := signer.New(s, signer.WithLogger(logger.With("component", "signer")), signer.WithKEKs(opts.KEKs...))
	auth := &apiauth.Verifier{Key: sg.PublicKey, Now: time.Now, Directory: &apiauth.Live{Store: s}}
	mux := http.NewServeMux()
	mux.Handle("/v1.0/", graph.New(s, auth, expression.Check, graph.WithLogger(logger.With("component", "graph"))))
	armServer := arm.New(s, auth, expression.Check, arm.WithLogger(logger.With("component", "arm")))
	mux.Handle("/subscriptions/", armServer)
	mux.Handle("/subscriptions", armServer) // az lists them on this exact path
	mux.Handle("/tenants", armServer)
	mux.HandleFunc("/metadata/endpoints", arm.MetadataEndpoints)
	mux.Handle("/", entra.New(s, verifier, sg, entraOpts...).Handler())
	hosts := opts.AllowedHosts
	if len(hosts) == 0 {
		hosts = entra.DevHosts
	}
	return &Entra{Handler: entra.HostPolicy(hosts, mux), Signer: sg}
}

// Route names what a request to the Entra listener asks for, for metrics:
// the management APIs mounted beside the Entra endpoint, or one of its
// routes.
func (e *Entra) Route(r *http.Request) string {
	switch {
	case strings.HasPrefix(r.URL.Path, "/v1.0/"):
		return "graph"
	case r.URL.Path == "/subscriptions", r.URL.Path == "/tenants", strings.HasPrefix(r.URL.Path, "/subscriptions/"):
		return "arm"
	}
	return entra.Route(r)
}

// Run keeps the signing keys current until ctx ends.
func (e *Entra) Run(ctx context.Context) { e.Signer.Run(ctx) }
