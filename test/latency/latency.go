// Package latency reports the latency distribution of a benchmarked
// operation: go test's ns/op is a mean, and the issues ask for p50 and p99.
package latency

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Measure runs op b.N times, timing each call, and reports p50-ns and
// p99-ns next to go test's ns/op.
func Measure(b *testing.B, op func()) {
	b.Helper()
	samples := make([]time.Duration, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		op()
		samples[i] = time.Since(start)
	}
	b.StopTimer()
	report(b, samples)
}

// report adds the p50 and p99 of samples to b's results.
func report(b *testing.B, samples []time.Duration) {
	if len(samples) == 0 {
		return
	}
	slices.Sort(samples)
	at := func(q float64) float64 { return float64(samples[int(q*float64(len(samples)-1))].Nanoseconds()) }
	b.ReportMetric(at(0.50), "p50-ns")
	b.ReportMetric(at(0.99), "p99-ns")
}

// MeasureConcurrent runs op b.N times spread over n goroutines, as n
// clients each with one request in flight, and reports req/s beside p50-ns
// and p99-ns.
func MeasureConcurrent(b *testing.B, n int, op func()) {
	b.Helper()
	samples := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				t := time.Now()
				op()
				samples[i] = time.Since(t)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	report(b, samples)
}
