// Package metrics exposes the gateway's Prometheus metrics: requests by
// listener, route and status; tokens issued and refused by grant and
// AADSTS code; the age of each published key set; and fetches of federated
// issuers' metadata; the admission webhook's decisions.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the gateway's registry. Its methods are safe for concurrent
// use.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	issued   *prometheus.CounterVec
	refused  *prometheus.CounterVec
	fetches  *prometheus.CounterVec
	admitted *prometheus.CounterVec
}

// New returns a registry with the Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_http_requests_total", Help: "HTTP requests by listener, route and status code.",
		}, []string{"listener", "route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gateway_http_request_duration_seconds", Help: "HTTP request latency by listener and route.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"listener", "route"}),
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_tokens_issued_total", Help: "Access tokens issued by grant type.",
		}, []string{"grant"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_tokens_refused_total", Help: "Token requests refused by grant type and AADSTS code.",
		}, []string{"grant", "aadsts"}),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_issuer_metadata_fetches_total", Help: "Fetches of federated issuers' discovery documents and keys, by result.",
		}, []string{"result"}),
		admitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_webhook_admissions_total", Help: "Pods the admission webhook judged, by decision: mutated, unchanged, refused, failed, ignored.",
		}, []string{"decision"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.issued, m.refused, m.fetches, m.admitted,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// TokenIssued counts an issued token; it implements entra.Metrics.
func (m *Metrics) TokenIssued(grant string) { m.issued.WithLabelValues(grant).Inc() }

// TokenRefused counts a refused token request; it implements entra.Metrics.
func (m *Metrics) TokenRefused(grant string, code int) {
	m.refused.WithLabelValues(grant, strconv.Itoa(code)).Inc()
}

// IssuerFetch counts a fetch of an issuer's metadata.
func (m *Metrics) IssuerFetch(ok bool) {
	result := "ok"
	if !ok {
		result = "error"
	}
	m.fetches.WithLabelValues(result).Inc()
}

// Admission counts one decision of the admission webhook; it implements
// webhook.Metrics.
func (m *Metrics) Admission(decision string) { m.admitted.WithLabelValues(decision).Inc() }

// KeySetAge publishes how long ago the key set of issuer last changed,
// read from changed at every scrape.
func (m *Metrics) KeySetAge(issuer string, changed func() time.Time) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "gateway_keyset_age_seconds", Help: "Seconds since the published key set last changed.",
		ConstLabels: prometheus.Labels{"issuer": issuer},
	}, func() float64 {
		t := changed()
		if t.IsZero() {
			return -1 // no keys yet
		}
		return time.Since(t).Seconds()
	}))
}

// Instrument counts and times the requests h serves on listener. route
// maps a request to one of a fixed set of names, so that clients cannot
// grow the label set with paths of their choosing.
func (m *Metrics) Instrument(listener string, route func(*http.Request) string, h http.Handler) http.Handler {
	// The series of each route and status are looked up once: finding a
	// series by its label values hashes them all and takes the vector's lock.
	var series sync.Map // routeCode → *routeSeries
	find := func(rc routeCode) *routeSeries {
		if s, ok := series.Load(rc); ok {
			return s.(*routeSeries)
		}
		s, _ := series.LoadOrStore(rc, &routeSeries{
			requests: m.requests.WithLabelValues(listener, rc.route, strconv.Itoa(rc.code)),
			latency:  m.latency.WithLabelValues(listener, rc.route),
		})
		return s.(*routeSeries)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Since(epoch)
		rw := writers.Get().(*statusWriter)
		rw.ResponseWriter, rw.code = w, http.StatusOK
		h.ServeHTTP(rw, r)
		s := find(routeCode{route(r), rw.code})
		rw.ResponseWriter = nil
		writers.Put(rw)
		s.requests.Inc()
		s.latency.Observe((time.Since(epoch) - start).Seconds())
	})
}

// epoch is what Instrument measures from: time.Since(epoch) reads the
// monotonic clock alone, where time.Now reads the wall clock as well, and a
// clock read is most of what counting and timing a request costs.
var epoch = time.Now()

// routeCode is a route and a status code.
type routeCode struct {
	route string
	code  int
}

// routeSeries are the series of one listener, route and status code.
type routeSeries struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

// writers reuses statusWriters: a handler does not keep its
// ResponseWriter once it returns.
var writers = sync.Pool{New: func() any { return new(statusWriter) }}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
