package k8s_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	charttest "github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/chart"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/k8s/k8stest"
)

// deployment is the Deployment's name for release gw.
const deployment = "gw-spiffe-entra-gateway"

// testVariants installs every values combination the render tests cover,
// each as its own release in its own namespace under PodSecurity
// restricted (and the namespaces its values send objects to), and checks
// that the pods of each of its Deployments are admitted. The hostPath
// Workload API mode, which restricted and baseline refuse
// (testHostPathRefused), goes where SPIRE's agents run: a privileged
// namespace.
func testVariants(t *testing.T, c *k8stest.Cluster) {
	variants := charttest.Variants()
	// The namespaces values name (namespaceOverride, SPIRE's layout), shared
	// by several variants, live until the last one is done.
	created := map[string]bool{}
	for _, v := range variants {
		r, err := charttest.Render(chartDir, v.Values)
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		for _, o := range r.Objects {
			if ns := o.Namespace(); ns != "" && ns != charttest.Namespace && !created[ns] {
				created[ns] = true
				c.Namespace(t, ns, restricted)
			}
		}
	}
	for i, v := range variants {
		t.Run(v.Name, func(t *testing.T) {
			ns, release := "variant-"+v.Name, fmt.Sprintf("gw%d", i)
			level := restricted
			if w, _ := v.Values["workloadAPI"].(map[string]any); w["mode"] == "hostPath" {
				level = privileged
			}
			c.Namespace(t, ns, level)
			newHelm(t, c, ns).install(release, v.Values)
			ds, err := c.Client.AppsV1().Deployments("").List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + release})
			if err != nil || len(ds.Items) == 0 {
				t.Fatalf("%d Deployments: %v", len(ds.Items), err)
			}
			for _, d := range ds.Items {
				admitted(t, c, d.Namespace, d.Name)
			}
		})
	}
}

// testLifecycle installs, upgrades (a changed value rolls the pods), rolls
// back, tests and uninstalls a release, then installs it again.
func testLifecycle(t *testing.T, c *k8stest.Cluster) {
	ctx := context.Background()
	const ns = "lifecycle"
	c.Namespace(t, ns, restricted)
	h := newHelm(t, c, ns)
	h.install("gw", nil)
	first := admitted(t, c, ns, deployment)

	h.upgrade("gw", map[string]any{"logLevel": "debug"})
	if second := admitted(t, c, ns, deployment); second == first {
		t.Errorf("a changed configuration kept pod template %s: the pods did not roll", first)
	}
	h.rollback("gw", 1)
	if back := admitted(t, c, ns, deployment); back != first {
		t.Errorf("rolled back to pod template %s, revision 1 had %s", back, first)
	}

	// helm test creates its pod, and PodSecurity admits it; with no kubelet
	// it never runs, so Helm gives up waiting.
	ht := action.NewReleaseTesting(h.cfg)
	ht.Timeout = 2 * time.Second
	_, err := ht.Run("gw")
	if err == nil || strings.Contains(err.Error(), "forbidden") {
		t.Errorf("helm test: %v, want a timeout waiting for the pod", err)
	}
	if _, err := c.Client.CoreV1().Pods(ns).Get(ctx, deployment+"-test-discovery", metav1.GetOptions{}); err != nil {
		t.Errorf("the helm test pod: %v", err)
	}

	claim := deployment + "-data"
	pvc, err := c.Client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h.uninstall("gw")
	if _, err := c.Client.AppsV1().Deployments(ns).Get(ctx, deployment, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the Deployment after helm uninstall: %v", err)
	}
	kept, err := c.Client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim, metav1.GetOptions{})
	if err != nil || kept.DeletionTimestamp != nil {
		t.Fatalf("helm uninstall deleted the SQLite claim (the directory and the signing keys): %v", err)
	}
	h.install("gw", nil)
	if again, err := c.Client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim, metav1.GetOptions{}); err != nil || again.UID != pvc.UID {
		t.Errorf("installed again, the release did not take its claim back: %v", err)
	}
	admitted(t, c, ns, deployment)
}

// testLongReleaseName installs a release with the longest name Helm
// allows: every object name, suffixed ones included, stays a valid DNS
// label.
func testLongReleaseName(t *testing.T, c *k8stest.Cluster) {
	const ns = "long-name"
	c.Namespace(t, ns, restricted)
	name := "release-" + strings.Repeat("x", 45)
	newHelm(t, c, ns).install(name, charttest.Values("seed-and-optional-objects"))
	svcs, err := c.Client.CoreV1().Services(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + name})
	if err != nil || len(svcs.Items) != 3 {
		t.Fatalf("%v Services: %v", len(svcs.Items), err)
	}
	for _, s := range svcs.Items {
		if !strings.HasPrefix(s.Name, name) {
			t.Errorf("Service %s lost the release name", s.Name)
		}
	}
	ds, err := c.Client.AppsV1().Deployments(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + name})
	if err != nil || len(ds.Items) != 1 {
		t.Fatalf("%d Deployments: %v", len(ds.Items), err)
	}
	admitted(t, c, ns, ds.Items[0].Name)
}

// testAutoscalingSwitch turns autoscaling on for a running release: the
// Deployment keeps its replicas (Helm would otherwise remove the count the
// previous revision set, scaling to one), and later upgrades leave the
// count to the HorizontalPodAutoscaler.
func testAutoscalingSwitch(t *testing.T, c *k8stest.Cluster) {
	ctx := context.Background()
	const ns = "autoscaling"
	c.Namespace(t, ns, restricted)
	h := newHelm(t, c, ns)
	h.install("gw", charttest.Values("postgres-replicas"))
	admitted(t, c, ns, deployment)
	replicas := func() int32 {
		t.Helper()
		d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, deployment, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return *d.Spec.Replicas
	}
	autoscaling := charttest.Values("postgres-autoscaling")
	h.upgrade("gw", autoscaling)
	if n := replicas(); n != 3 {
		t.Errorf("turning autoscaling on scaled the Deployment from 3 to %d", n)
	}
	autoscaling["logLevel"] = "debug"
	h.upgrade("gw", autoscaling)
	if n := replicas(); n != 3 {
		t.Errorf("an upgrade with autoscaling on scaled the Deployment from 3 to %d", n)
	}
	if _, err := c.Client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, deployment, metav1.GetOptions{}); err != nil {
		t.Error(err)
	}
	admitted(t, c, ns, deployment)
}

// testHostPathRefused shows what values.yaml and values.schema.json say of
// the hostPath Workload API mode: PodSecurity restricted and baseline
// refuse its pods.
func testHostPathRefused(t *testing.T, c *k8stest.Cluster) {
	schema, err := os.ReadFile(chartDir + "/values.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Properties struct {
			WorkloadAPI struct {
				Properties struct {
					Mode struct{ Description string }
				}
			} `json:"workloadAPI"`
		}
	}
	if err := json.Unmarshal(schema, &s); err != nil {
		t.Fatal(err)
	}
	values, err := os.ReadFile(chartDir + "/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, modeDoc, _ := strings.Cut(string(values), "\nworkloadAPI:\n")
	modeDoc, _, _ = strings.Cut(modeDoc, "  mode:")
	for where, doc := range map[string]string{"values.schema.json": s.Properties.WorkloadAPI.Properties.Mode.Description, "values.yaml": modeDoc} {
		if !strings.Contains(doc, "PodSecurity") || !strings.Contains(doc, "privileged") {
			t.Errorf("%s does not say that PodSecurity refuses hostPath: %q", where, doc)
		}
	}
	for level, labels := range map[string]map[string]string{"restricted": restricted, "baseline": baseline} {
		ns := "host-path-" + level
		c.Namespace(t, ns, labels)
		newHelm(t, c, ns).install("gw", charttest.Values("workload-api-host-path"))
		if _, refused := pods(t, c, ns, deployment); !strings.Contains(refused, "hostPath") {
			t.Errorf("PodSecurity %s: refusal %q, want one naming hostPath", level, refused)
		}
	}
}
