package k8s_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/release"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/k8s/k8stest"
)

const chartDir = "../../charts/spiffe-entra-gateway"

// crds are the definitions of the custom resources the chart can render,
// each from its own project's Go module at the version docs/kubernetes.md
// names.
var crds = []struct{ module, version, path string }{
	{"github.com/spiffe/spire-controller-manager", "v0.7.0", "config/crd/bases/spire.spiffe.io_clusterspiffeids.yaml"},
	{"github.com/cert-manager/cert-manager", "v1.21.2", "deploy/crds/cert-manager.io_certificates.yaml"},
	{"github.com/cert-manager/cert-manager", "v1.21.2", "deploy/crds/cert-manager.io_issuers.yaml"},
	{"sigs.k8s.io/gateway-api", "v1.6.3", "config/crd/standard/gateway.networking.k8s.io_httproutes.yaml"},
	{"github.com/prometheus-operator/prometheus-operator", "v0.85.0", "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml"},
}

// PodSecurity levels, as namespace labels.
var (
	restricted = map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}
	baseline   = map[string]string{"pod-security.kubernetes.io/enforce": "baseline"}
	privileged = map[string]string{"pod-security.kubernetes.io/enforce": "privileged"}
)

// TestControlPlane installs the chart and applies the kustomizations on one
// real control plane, with the CRDs installed; each subtest has its own
// namespaces.
func TestControlPlane(t *testing.T) {
	c := k8stest.Start(t)
	var manifests [][]byte
	for _, d := range crds {
		manifests = append(manifests, k8stest.ModuleFile(t, d.module, d.version, d.path))
	}
	c.InstallCRDs(t, manifests...)

	t.Run("Variants", func(t *testing.T) { testVariants(t, c) })
	t.Run("Lifecycle", func(t *testing.T) { testLifecycle(t, c) })
	t.Run("LongReleaseName", func(t *testing.T) { testLongReleaseName(t, c) })
	t.Run("AutoscalingSwitch", func(t *testing.T) { testAutoscalingSwitch(t, c) })
	t.Run("HostPathRefused", func(t *testing.T) { testHostPathRefused(t, c) })
	t.Run("Kustomize", func(t *testing.T) { testKustomize(t, c) })
}

// helm drives the chart in one namespace through the Helm SDK, as the helm
// command does.
type helm struct {
	t     *testing.T
	ns    string
	cfg   *action.Configuration
	chart *chart.Chart
}

func newHelm(t *testing.T, c *k8stest.Cluster, ns string) *helm {
	t.Helper()
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig, flags.Namespace = &c.Kubeconfig, &ns
	cfg := new(action.Configuration)
	if err := cfg.Init(flags, ns, "secret", func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	return &helm{t: t, ns: ns, cfg: cfg, chart: ch}
}

func (h *helm) install(name string, values map[string]any) *release.Release {
	h.t.Helper()
	in := action.NewInstall(h.cfg)
	in.ReleaseName, in.Namespace, in.Timeout = name, h.ns, time.Minute
	rel, err := in.Run(h.chart, values)
	if err != nil {
		h.t.Fatalf("helm install %s: %v", name, err)
	}
	return rel
}

func (h *helm) upgrade(name string, values map[string]any) *release.Release {
	h.t.Helper()
	up := action.NewUpgrade(h.cfg)
	up.Namespace, up.Timeout = h.ns, time.Minute
	rel, err := up.Run(name, h.chart, values)
	if err != nil {
		h.t.Fatalf("helm upgrade %s: %v", name, err)
	}
	return rel
}

func (h *helm) rollback(name string, revision int) {
	h.t.Helper()
	rb := action.NewRollback(h.cfg)
	rb.Version, rb.Timeout = revision, time.Minute
	if err := rb.Run(name); err != nil {
		h.t.Fatalf("helm rollback %s %d: %v", name, revision, err)
	}
}

func (h *helm) uninstall(name string) {
	h.t.Helper()
	un := action.NewUninstall(h.cfg)
	un.Timeout = time.Minute
	if _, err := un.Run(name); err != nil {
		h.t.Fatalf("helm uninstall %s: %v", name, err)
	}
}

// pods waits until the newest ReplicaSet of the Deployment has asked for
// all its pods, and returns its pod-template-hash, or the reason admission
// refused them (refused is then non-empty).
func pods(t *testing.T, c *k8stest.Cluster, ns, deployment string) (hash, refused string) {
	t.Helper()
	c.Eventually(t, "the pods of "+ns+"/"+deployment, time.Minute, func(ctx context.Context) error {
		hash, refused = "", ""
		d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, deployment, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Status.ObservedGeneration < d.Generation {
			return fmt.Errorf("the Deployment controller has not seen generation %d", d.Generation)
		}
		rs, err := newestReplicaSet(ctx, c, d)
		if err != nil {
			return err
		}
		for _, cond := range rs.Status.Conditions {
			if cond.Type == appsv1.ReplicaSetReplicaFailure && cond.Status == "True" {
				refused = cond.Message
				return nil
			}
		}
		hash = rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
		list, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: appsv1.DefaultDeploymentUniqueLabelKey + "=" + hash})
		if err != nil {
			return err
		}
		if want := *rs.Spec.Replicas; want == 0 || int32(len(list.Items)) < want {
			return fmt.Errorf("%d of %d pods of ReplicaSet %s", len(list.Items), want, rs.Name)
		}
		return nil
	})
	return hash, refused
}

// admitted is pods where a refusal fails the test.
func admitted(t *testing.T, c *k8stest.Cluster, ns, deployment string) string {
	t.Helper()
	hash, refused := pods(t, c, ns, deployment)
	if refused != "" {
		t.Fatalf("the pods of %s/%s were refused: %s", ns, deployment, refused)
	}
	return hash
}

// newestReplicaSet is the ReplicaSet of the Deployment's current revision.
func newestReplicaSet(ctx context.Context, c *k8stest.Cluster, d *appsv1.Deployment) (*appsv1.ReplicaSet, error) {
	const revision = "deployment.kubernetes.io/revision"
	list, err := c.Client.AppsV1().ReplicaSets(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(d.Spec.Selector)})
	if err != nil {
		return nil, err
	}
	for i, rs := range list.Items {
		if metav1.IsControlledBy(&rs, d) && rs.Annotations[revision] == d.Annotations[revision] {
			return &list.Items[i], nil
		}
	}
	return nil, fmt.Errorf("no ReplicaSet of %s at revision %q", d.Name, d.Annotations[revision])
}
