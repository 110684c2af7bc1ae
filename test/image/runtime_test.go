package image_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// runtime runs the image's binary with runc from umoci's bundle.
type runtime struct {
	t                   *testing.T
	runc, bundle, state string
	base                []byte // umoci's config.json
	mounts              []mount
	n                   int
	log                 logBuffer
	exited              chan struct{} // closed when the started container exits
}

type mount struct {
	src, dst string
	ro       bool
}

// spec writes the bundle's config.json: umoci's, from the image's
// configuration, with args after the entrypoint, a read-only root, no
// capability, no terminal, and the host's network (the test reaches
// loopback).
func (r *runtime) spec(args []string) {
	r.t.Helper()
	var s map[string]any
	if err := json.Unmarshal(r.base, &s); err != nil {
		r.t.Fatal(err)
	}
	p := s["process"].(map[string]any)
	user := p["user"].(map[string]any)
	if user["uid"] != float64(65532) || user["gid"] != float64(65532) {
		r.t.Errorf("umoci runs the image as %v", user)
	}
	p["args"] = append(p["args"].([]any), anySlice(args)...)
	p["terminal"] = false
	p["noNewPrivileges"] = true
	p["capabilities"] = map[string]any{"bounding": []string{}, "effective": []string{}, "permitted": []string{}}
	s["root"].(map[string]any)["readonly"] = true
	linux := s["linux"].(map[string]any)
	var ns []any
	for _, n := range linux["namespaces"].([]any) {
		if n.(map[string]any)["type"] != "network" {
			ns = append(ns, n)
		}
	}
	linux["namespaces"] = ns
	mounts := s["mounts"].([]any)
	for _, m := range r.mounts {
		opts := []string{"rbind"}
		if m.ro {
			opts = append(opts, "ro")
		}
		mounts = append(mounts, map[string]any{"destination": m.dst, "type": "bind", "source": m.src, "options": opts})
	}
	s["mounts"] = mounts
	raw, _ := json.MarshalIndent(s, "", " ")
	write(r.t, filepath.Join(r.bundle, "config.json"), string(raw))
}

func anySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// run runs the binary with args to completion and returns its output.
func (r *runtime) run(args ...string) string {
	r.t.Helper()
	r.spec(args)
	r.n++
	out, err := exec.Command(r.runc, "--root", r.state, "run", "--bundle", r.bundle, fmt.Sprintf("gw-test-%d-%d", os.Getpid(), r.n)).CombinedOutput()
	if err != nil {
		r.t.Fatalf("runc run %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// start runs the binary with args in the background; stop kills it.
func (r *runtime) start(args ...string) (stop func()) {
	r.t.Helper()
	r.spec(args)
	r.n++
	id := fmt.Sprintf("gw-test-%d-%d", os.Getpid(), r.n)
	cmd := exec.Command(r.runc, "--root", r.state, "run", "--bundle", r.bundle, id)
	cmd.Stdout, cmd.Stderr = &r.log, &r.log
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.exited = make(chan struct{})
	go func() {
		cmd.Wait()
		close(r.exited)
	}()
	return func() {
		exec.Command(r.runc, "--root", r.state, "kill", id, "KILL").Run()
		<-r.exited
		exec.Command(r.runc, "--root", r.state, "delete", "--force", id).Run()
	}
}

// logBuffer is the container's output, written by exec's copying
// goroutines while the test reads it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func waitFor(t *testing.T, url string, client *http.Client, r *runtime) string {
	t.Helper()
	if client == nil {
		client = http.DefaultClient
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var last string
	for ctx.Err() == nil {
		select {
		case <-r.exited:
			t.Fatalf("the container exited:\n%s", r.log.String())
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return string(b)
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %s\ncontainer output:\n%s", url, last, r.log.String())
	return ""
}
