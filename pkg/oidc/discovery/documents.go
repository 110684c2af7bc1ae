package discovery

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/oidc/keysource"
)

// documents are both documents for one key set.
type documents struct {
	changed   time.Time
	keyCount  int
	warnings  []string
	discovery document
	keys      document
}

// document is a response prepared once: both encodings with their headers.
type document struct {
	plain, gzipped representation
	modified       time.Time
	// The header values both encodings share.
	cacheControl, lastModified []string
}

// representation is one encoding of a document. Its header values are
// ready to be assigned into a response's header map under their canonical
// keys: no formatting, canonicalisation or allocation per request. They are
// shared by every response; net/http copies them and never modifies them.
type representation struct {
	body          []byte
	etag          string
	etagHeader    []string
	contentLength []string
	gzip          bool
}

// The header values of every document.
var (
	contentTypeJSON    = []string{"application/json"}
	varyAcceptEncoding = []string{"Accept-Encoding"}
	contentEncodingGz  = []string{"gzip"}
)

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
		keys[i] = k.Public()
		keys[i].KeyID, keys[i].Algorithm, keys[i].Use = k.KeyID, k.Algorithm, "sig"
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
	modified := set.Changed.Truncate(time.Second)
	return &documents{
		changed:   set.Changed,
		keyCount:  len(keys),
		warnings:  entraChecks(o.issuer, set),
		discovery: newDocument(append(discoJSON, '\n'), modified, o.maxAge),
		keys:      newDocument(append(keysJSON, '\n'), modified, o.maxAge),
	}, nil
}

func newDocument(body []byte, modified time.Time, maxAge time.Duration) document {
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	_, _ = zw.Write(body)
	_ = zw.Close()
	sum := sha256.Sum256(body)
	tag := base64.RawURLEncoding.EncodeToString(sum[:18])
	rep := func(body []byte, etag string, gzip bool) representation {
		return representation{body: body, etag: etag, etagHeader: []string{etag}, contentLength: []string{strconv.Itoa(len(body))}, gzip: gzip}
	}
	return document{
		plain: rep(body, `"`+tag+`"`, false),
		// A different encoding is a different representation (RFC 9110
		// section 8.8.3), so it has its own strong validator.
		gzipped:      rep(gz.Bytes(), `"`+tag+`-gzip"`, true),
		modified:     modified,
		cacheControl: []string{"public, max-age=" + strconv.Itoa(int(maxAge/time.Second))},
		lastModified: []string{modified.UTC().Format(http.TimeFormat)},
	}
}

// serve writes d with its validators, honouring conditional requests, HEAD
// and gzip. A 304 carries the headers a 200 would but Content-Length and
// Content-Encoding (RFC 9110 section 15.4.5).
func (d *document) serve(w http.ResponseWriter, r *http.Request) {
	rep := &d.plain
	if acceptsGzip(r.Header["Accept-Encoding"]) {
		rep = &d.gzipped
	}
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["Cache-Control"] = d.cacheControl
	h["Last-Modified"] = d.lastModified
	h["Vary"] = varyAcceptEncoding
	h["Etag"] = rep.etagHeader
	if d.notModified(r) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h["Content-Length"] = rep.contentLength
	if rep.gzip {
		h["Content-Encoding"] = contentEncodingGz
	}
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(rep.body)
}

// notModified applies RFC 9110 section 13.1: If-None-Match, when present,
// decides alone; it matches either encoding, weakly.
func (d *document) notModified(r *http.Request) bool {
	if inm := r.Header["If-None-Match"]; len(inm) > 0 {
		for _, field := range inm {
			for field != "" {
				var tag string
				tag, field, _ = strings.Cut(field, ",")
				tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
				if tag == "*" || tag == d.plain.etag || tag == d.gzipped.etag {
					return true
				}
			}
		}
		return false
	}
	if ims := r.Header["If-Modified-Since"]; len(ims) > 0 && ims[0] != "" {
		t, err := http.ParseTime(ims[0])
		return err == nil && !d.modified.After(t)
	}
	return false
}

// acceptsGzip reports whether Accept-Encoding lists gzip with a non-zero
// quality.
func acceptsGzip(fields []string) bool {
	for _, field := range fields {
		if field == "gzip" { // what Go's client and most others send
			return true
		}
		for field != "" {
			var part string
			part, field, _ = strings.Cut(field, ",")
			coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
				continue
			}
			q := strings.TrimSpace(params)
			if name, value, ok := strings.Cut(q, "="); ok && strings.EqualFold(strings.TrimSpace(name), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil && f == 0 {
					return false
				}
			}
			return true
		}
	}
	return false
}
