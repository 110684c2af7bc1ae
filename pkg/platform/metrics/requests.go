package metrics

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// requestMetrics are gateway_http_requests_total and
// gateway_http_request_duration_seconds, written by every request of every
// listener from both cores at once. Prometheus's own counter and histogram
// are five atomic writes to a few cache lines per request, which the cores
// then take in turns: under load that is several times what the writes
// cost alone. Here each series is split into shards, a request picks one
// at random, and a scrape sums them.
type requestMetrics struct {
	requestsDesc, latencyDesc *prometheus.Desc

	mu       sync.Mutex
	requests map[[3]string]*shardedCounter   // listener, route, code
	latency  map[[2]string]*shardedHistogram // listener, route
}

const shards = 8

// latencyBuckets are the histogram's upper bounds, in seconds.
var latencyBuckets = [...]float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}

// shardedCounter is a counter in shards of a cache line or two each.
type shardedCounter struct {
	shards [shards]struct {
		n atomic.Uint64
		_ [120]byte
	}
}

// shardedHistogram is a histogram in shards: per shard, the observations
// in each bucket (the last above every bound) and their sum.
type shardedHistogram struct {
	shards [shards]struct {
		counts [len(latencyBuckets) + 1]atomic.Uint64
		sum    atomic.Uint64 // float64 bits
		_      [8]byte
	}
}

func newRequestMetrics() *requestMetrics {
	return &requestMetrics{
		requestsDesc: prometheus.NewDesc("gateway_http_requests_total", "HTTP requests by listener, route and status code.",
			[]string{"listener", "route", "code"}, nil),
		latencyDesc: prometheus.NewDesc("gateway_http_request_duration_seconds", "HTTP request latency by listener and route.",
			[]string{"listener", "route"}, nil),
		requests: map[[3]string]*shardedCounter{},
		latency:  map[[2]string]*shardedHistogram{},
	}
}

// series returns the counter of listener, route and code and the
// histogram of listener and route.
func (m *requestMetrics) series(listener, route string, code int) *routeSeries {
	m.mu.Lock()
	defer m.mu.Unlock()
	rk, lk := [3]string{listener, route, strconv.Itoa(code)}, [2]string{listener, route}
	if m.requests[rk] == nil {
		m.requests[rk] = new(shardedCounter)
	}
	if m.latency[lk] == nil {
		m.latency[lk] = new(shardedHistogram)
	}
	return &routeSeries{requests: m.requests[rk], latency: m.latency[lk]}
}

// routeSeries are the series of one listener, route and status code.
type routeSeries struct {
	requests *shardedCounter
	latency  *shardedHistogram
}

// observe counts one request that took seconds.
func (s *routeSeries) observe(seconds float64) {
	i := rand.Uint32() % shards
	s.requests.shards[i].n.Add(1)
	h := &s.latency.shards[i]
	b, _ := slices.BinarySearch(latencyBuckets[:], seconds) // the first bound at or above
	h.counts[b].Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+seconds)) {
			return
		}
	}
}

// Describe implements prometheus.Collector.
func (m *requestMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.requestsDesc
	ch <- m.latencyDesc
}

// Collect implements prometheus.Collector: each series the sum of its
// shards, each histogram's count the sum of its buckets.
func (m *requestMetrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	requests, latency := make(map[[3]string]*shardedCounter, len(m.requests)), make(map[[2]string]*shardedHistogram, len(m.latency))
	for k, v := range m.requests {
		requests[k] = v
	}
	for k, v := range m.latency {
		latency[k] = v
	}
	m.mu.Unlock()
	for k, c := range requests {
		var n uint64
		for i := range c.shards {
			n += c.shards[i].n.Load()
		}
		ch <- prometheus.MustNewConstMetric(m.requestsDesc, prometheus.CounterValue, float64(n), k[:]...)
	}
	for k, h := range latency {
		var counts [len(latencyBuckets) + 1]uint64
		var sum float64
		for i := range h.shards {
			for b := range counts {
				counts[b] += h.shards[i].counts[b].Load()
			}
			sum += math.Float64frombits(h.shards[i].sum.Load())
		}
		buckets := make(map[float64]uint64, len(latencyBuckets))
		var total uint64
		for b, bound := range latencyBuckets {
			total += counts[b]
			buckets[bound] = total
		}
		ch <- prometheus.MustNewConstHistogram(m.latencyDesc, total+counts[len(latencyBuckets)], sum, buckets, k[:]...)
	}
}
