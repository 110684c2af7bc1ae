package oidcprovider

import (
	"bytes"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/keysource"
)

// documents are both documents for one key set.
type documents struct {
	changed   time.Time
	discovery document
	keys      document
}

// document is a response body prepared once: plain, gzipped, with its
// validators.
type document struct {
	body     []byte
	gzipped  []byte
	etag     string
	modified time.Time
}

// discoveryDoc is the discovery document in SPIRE's field order.
type discoveryDoc struct {
	Issuer                           string   `json:"issuer"`
	JWKSURI                          string   `json:"jwks_uri"`
	AuthorizationEndpoint            string   `json:"authorization_endpoint"`
	ResponseTypesSupported           []string `json:"response_types_supported"`
	SubjectTypesSupported            []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
}

func render(o options, set keysource.KeySet) (*documents, error) {
	keys := make([]jose.JSONWebKey, len(set.Keys))
	algs := []string{}
	for i, k := range set.Keys {
		keys[i] = k
		if o.omitUse {
			keys[i].Use = ""
		}
		if !slices.Contains(algs, k.Algorithm) {
			algs = append(algs, k.Algorithm)
		}
	}
	slices.Sort(algs)
	keysJSON, err := json.MarshalIndent(jose.JSONWebKeySet{Keys: keys}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("render keys: %w", err)
	}
	discoJSON, err := json.MarshalIndent(discoveryDoc{
		Issuer: o.issuer, JWKSURI: o.jwksURI, ResponseTypesSupported: []string{"id_token"},
		SubjectTypesSupported: []string{"public"}, IDTokenSigningAlgValuesSupported: algs,
	}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("render discovery: %w", err)
	}
	return &documents{changed: set.Changed, discovery: newDocument(discoJSON, set.Changed), keys: newDocument(keysJSON, set.Changed)}, nil
}

func newDocument(body []byte, modified time.Time) document {
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	_, _ = zw.Write(body)
	_ = zw.Close()
	sum := sha256.Sum256(body)
	return document{body: body, gzipped: gz.Bytes(), etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`, modified: modified.Truncate(time.Second)}
}

// serve writes d with its validators, honouring conditional requests, HEAD
// and gzip.
func (d *document) serve(w http.ResponseWriter, r *http.Request, maxAge time.Duration) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", maxAgeHeader(maxAge))
	h.Set("ETag", d.etag)
	h.Set("Last-Modified", httpDate(d.modified))
	h.Set("Vary", "Accept-Encoding")
	if notModified(r, d) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := d.body
	if acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		body = d.gzipped
	}
	h.Set("Content-Length", fmt.Sprint(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

// notModified applies RFC 9110: If-None-Match wins over If-Modified-Since.
func notModified(r *http.Request, d *document) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		for _, tag := range strings.Split(inm, ",") {
			tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
			if tag == d.etag || tag == "*" {
				return true
			}
		}
		return false
	}
	if ims := r.Header.Get("If-Modified-Since"); ims != "" {
		t, err := http.ParseTime(ims)
		return err == nil && !d.modified.After(t)
	}
	return false
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") && strings.ReplaceAll(params, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// entraChecks returns what would make Entra refuse tokens of this issuer.
func entraChecks(issuer string, set keysource.KeySet) []string {
	var out []string
	if !strings.HasPrefix(issuer, "https://") {
		out = append(out, fmt.Sprintf("issuer %s is not https: Entra fetches issuer metadata over https only", issuer))
	}
	if len(set.Keys) > 100 {
		out = append(out, fmt.Sprintf("the key set has %d keys: Entra reads only the first 100", len(set.Keys)))
	}
	for _, k := range set.Keys {
		switch pub := k.Key.(type) {
		case *rsa.PublicKey:
			if pub.N.BitLen() < 2048 {
				out = append(out, fmt.Sprintf("key %s is RSA-%d: Entra needs RSA keys of at least 2048 bits", k.KeyID, pub.N.BitLen()))
			}
		case *ecdsa.PublicKey:
			out = append(out, fmt.Sprintf("key %s is %s: Entra rejects ES256 JWT-SVIDs (AADSTS5002738): set jwt_key_type = \"rsa-2048\" in the SPIRE server", k.KeyID, k.Algorithm))
		}
	}
	return out
}
