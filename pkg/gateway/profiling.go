package gateway

import (
	"net/http"
	"net/http/pprof"
)

// withProfiling serves Go's profiles under /debug/pprof/ beside h. The
// handlers are mounted on a mux of their own: importing net/http/pprof
// also registers them on http.DefaultServeMux, which the gateway never
// serves.
func withProfiling(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", h)
	return mux
}
