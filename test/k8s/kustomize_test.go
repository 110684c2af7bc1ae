package k8s_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	charttest "github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/chart"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/k8s/k8stest"
)

// testKustomize applies deploy/base and deploy/overlays/public-oidc with
// server-side apply and --dry-run=server, as
// `kubectl apply -k … --server-side --dry-run=server` does, into
// spire-system under PodSecurity restricted; then applies the overlay for
// real, changes its configuration and applies it again: the pods roll.
func testKustomize(t *testing.T, c *k8stest.Cluster) {
	ctx := context.Background()
	const ns = "spire-system"
	c.Namespace(t, ns, restricted)
	for _, dir := range []string{"../../deploy/base", "../../deploy/overlays/public-oidc"} {
		manifest, err := charttest.KustomizeYAML(dir)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := c.Apply(ctx, manifest, ns, true)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		if len(objs) < 6 {
			t.Errorf("%s: %d objects applied", dir, len(objs))
		}
	}

	// A copy of deploy/, whose overlay configuration the test changes.
	deploy := filepath.Join(t.TempDir(), "deploy")
	if err := os.CopyFS(deploy, os.DirFS("../../deploy")); err != nil {
		t.Fatal(err)
	}
	overlay := filepath.Join(deploy, "overlays", "public-oidc")
	apply := func() string {
		t.Helper()
		manifest, err := charttest.KustomizeYAML(overlay)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Apply(ctx, manifest, ns, false); err != nil {
			t.Fatal(err)
		}
		return admitted(t, c, ns, "spiffe-entra-gateway")
	}
	first := apply()
	config := filepath.Join(overlay, "gateway.yaml")
	b, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(b), "log_level: info", "log_level: debug", 1)
	if changed == string(b) {
		t.Fatal("the overlay's configuration sets no log_level: info")
	}
	if err := os.WriteFile(config, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	if second := apply(); second == first {
		t.Errorf("a changed configuration kept pod template %s: the pods did not roll", first)
	}
}
