// Package health serves /livez and /readyz for the kubelet and operators.
package health

import (
	"encoding/json"
	"net/http"
)

// Check reports whether one part of the gateway is ready, with a detail
// shown in /readyz.
type Check struct {
	Name  string
	Ready func() (bool, any)
}

// Handler serves /livez (200 while the process serves) and /readyz (200
// when every check is ready, 503 otherwise; the body is JSON with each
// check's detail).
func Handler(checks ...Check) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		type result struct {
			Name   string `json:"name"`
			Ready  bool   `json:"ready"`
			Detail any    `json:"detail,omitempty"`
		}
		out := struct {
			Ready  bool     `json:"ready"`
			Checks []result `json:"checks"`
		}{Ready: true}
		for _, c := range checks {
			ok, detail := c.Ready()
			out.Ready = out.Ready && ok
			out.Checks = append(out.Checks, result{Name: c.Name, Ready: ok, Detail: detail})
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !out.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
	})
	return mux
}
