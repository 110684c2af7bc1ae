package discovery

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/hostname"
)

// Handler serves the documents of one or more issuers, routed by path and
// by the host the client asked for. The host allowlist applies to every
// endpoint.
type Handler struct {
	routes  map[string][]route
	trusted []netip.Prefix
}

type route struct {
	issuer *Issuer
	keys   bool // the JWKS rather than the discovery document
}

// HandlerOption configures a Handler.
type HandlerOption func(*Handler)

// WithTrustedProxies honours X-Forwarded-Host and Forwarded only from
// peers in these networks; from anyone else they are ignored.
func WithTrustedProxies(networks ...netip.Prefix) HandlerOption {
	return func(h *Handler) { h.trusted = append(h.trusted, networks...) }
}

// New returns the handler for issuers. Two issuers may share a path only
// on different hosts.
func New(issuers []*Issuer, opts ...HandlerOption) (*Handler, error) {
	h := &Handler{routes: map[string][]route{}}
	for _, opt := range opts {
		opt(h)
	}
	for _, i := range issuers {
		for _, r := range []route{{issuer: i}, {issuer: i, keys: true}} {
			path := i.discoveryPath
			if r.keys {
				path = i.keysPath
			}
			for _, other := range h.routes[path] {
				for host := range i.opts.allowedHosts {
					if other.issuer.opts.allowedHosts[host] {
						return nil, fmt.Errorf("discovery: issuers %s and %s both serve %s on host %s", other.issuer.opts.issuer, i.opts.issuer, path, host)
					}
				}
			}
			h.routes[path] = append(h.routes[path], r)
		}
	}
	return h, nil
}

// ServeHTTP serves the discovery document and the JWKS.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	routes := h.routes[r.URL.Path]
	if len(routes) == 0 {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	host := h.requestHost(r)
	for _, rt := range routes {
		if !rt.issuer.opts.allowedHosts[host] {
			continue
		}
		docs := rt.issuer.docs.Load()
		if docs == nil {
			// The first key set may have arrived before Run rendered it.
			docs = rt.issuer.render()
		}
		if docs == nil {
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":"keys_unavailable","error_description":"no JWT keys have been received from the key source yet"}` + "\n"))
			return
		}
		if rt.keys {
			docs.keys.serve(w, r)
		} else {
			docs.discovery.serve(w, r)
		}
		return
	}
	// The host is not echoed: it is whatever the client sent.
	http.Error(w, "host not allowed", http.StatusBadRequest)
}

// requestHost is the host name the client asked for: the first hop of
// X-Forwarded-Host or Forwarded from a trusted proxy, Host otherwise.
func (h *Handler) requestHost(r *http.Request) string {
	host := r.Host
	if len(h.trusted) > 0 && h.fromTrustedProxy(r) {
		if fwd := r.Header.Get("X-Forwarded-Host"); fwd != "" {
			host, _, _ = strings.Cut(fwd, ",")
		} else if fwd := forwardedHost(r.Header.Get("Forwarded")); fwd != "" {
			host = fwd
		}
	}
	return hostname.Of(strings.TrimSpace(host))
}

// forwardedHost returns the host parameter of the first element of an RFC
// 7239 Forwarded field.
func forwardedHost(field string) string {
	first, _, _ := strings.Cut(field, ",")
	for _, pair := range strings.Split(first, ";") {
		name, value, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if ok && strings.EqualFold(name, "host") {
			return strings.Trim(value, `"`)
		}
	}
	return ""
}

func (h *Handler) fromTrustedProxy(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	for _, p := range h.trusted {
		if p.Contains(ap.Addr().Unmap()) {
			return true
		}
	}
	return false
}

// Route names what r asks for, for metrics: "discovery", "keys" or
// "other".
func (h *Handler) Route(r *http.Request) string {
	routes := h.routes[r.URL.Path]
	switch {
	case len(routes) == 0:
		return "other"
	case routes[0].keys:
		return "keys"
	}
	return "discovery"
}
