package k8s_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/workload/webhook"
	charttest "github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/chart"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/k8s/k8stest"
)

// TestWebhook is issue 18's "tested for real": the chart's webhook, as the
// gateway's binary, judging pods the ReplicaSet controller creates on a real
// API server (docs/kubernetes.md lists what it checks).
func TestWebhook(t *testing.T) {
	c := k8stest.Start(t)
	ctx := context.Background()
	c.InstallCRDs(t, k8stest.ModuleFile(t, "github.com/spiffe/spire-controller-manager", "v0.7.0", "config/crd/bases/spire.spiffe.io_clusterspiffeids.yaml"))
	c.Namespace(t, charttest.Namespace, nil)
	c.Namespace(t, appsNS, map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
	// Short-lived certificates, so that a rotation happens during the test.
	w := startWebhook(t, c, 45*time.Second)
	pods := c.Client.CoreV1().Pods(appsNS)

	// A Deployment that opts in, and the same without the label.
	mutated := deploymentPod(t, c, "opted-in", appPod("opted-in", true, identityAnnotations))
	control := deploymentPod(t, c, "control", appPod("control", false, identityAnnotations))

	// Exactly the additions: the webhook's patch applied to the unlabelled
	// pod, as stored, is the opted-in pod as stored.
	ops, err := w.config.Injection.Mutate(control, nil)
	if err != nil {
		t.Fatal(err)
	}
	patch, _ := json.Marshal(ops)
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		t.Fatal(err)
	}
	controlJSON, _ := json.Marshal(control)
	expectedJSON, err := p.Apply(controlJSON)
	if err != nil {
		t.Fatal(err)
	}
	var expected corev1.Pod
	if err := json.Unmarshal(expectedJSON, &expected); err != nil {
		t.Fatal(err)
	}
	// The API server runs its own mutating plugins again after the
	// webhooks: the ServiceAccount plugin mounts the pod's API token in the
	// new sidecar as in every container of a pod that automounts it.
	for _, m := range control.Spec.Containers[0].VolumeMounts {
		if strings.HasPrefix(m.Name, "kube-api-access-") {
			expected.Spec.InitContainers[0].VolumeMounts = append(expected.Spec.InitContainers[0].VolumeMounts, m)
		}
	}
	if got, want := specJSON(t, mutated.Spec), specJSON(t, expected.Spec); got != want {
		t.Fatalf("the stored opted-in pod is not the unlabelled pod plus the additions:\ngot  %s\nwant %s", got, want)
	}
	if s := mutated.Spec.InitContainers[0]; s.Name != webhook.SidecarName || *s.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("first init container %s", s.Name)
	}
	for _, ct := range append(slices.Clone(mutated.Spec.InitContainers[1:]), mutated.Spec.Containers...) {
		env := map[string]string{}
		for _, e := range ct.Env {
			env[e.Name] = e.Value
		}
		wantClient := identityAnnotations[webhook.AnnotationClientID]
		if ct.Name == "app" {
			wantClient = "the-pods-own"
		}
		if env["AZURE_CLIENT_ID"] != wantClient || env["AZURE_FEDERATED_TOKEN_FILE"] != webhook.TokenFile || env["AZURE_AUTHORITY_HOST"] != identityAnnotations[webhook.AnnotationAuthorityHost] {
			t.Errorf("container %s: env %v", ct.Name, env)
		}
	}

	// The unlabelled pod is untouched: no sidecar, only its own variables.
	if len(control.Spec.InitContainers) != 1 || len(control.Spec.Containers[1].Env) != 1 || len(control.Spec.Volumes) != 2 {
		t.Errorf("the unlabelled pod was changed: %s", specJSON(t, control.Spec))
	}

	// A second admission of the mutated pod changes nothing (a dry run: the
	// server admits and defaults, stores nothing).
	again := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "again", Labels: mutated.Labels, Annotations: mutated.Annotations}, Spec: mutated.Spec}
	admitted, err := pods.Create(ctx, again, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		t.Fatalf("a second admission: %v", err)
	}
	if specJSON(t, admitted.Spec) != specJSON(t, mutated.Spec) {
		t.Errorf("a second admission changed the pod:\n%s", specJSON(t, admitted.Spec))
	}
	if !strings.Contains(w.proc.Log(), "pod already has its identity") {
		t.Error("the webhook did not see the second admission")
	}

	// An opted-in pod without a client id is refused, naming the annotation.
	bare := appPod("bare", true, map[string]string{webhook.AnnotationTenantID: "t"})
	_, err = pods.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bare", Labels: bare.Labels, Annotations: bare.Annotations}, Spec: bare.Spec}, metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), webhook.AnnotationClientID) {
		t.Errorf("an opted-in pod without a client id: %v", err)
	}

	// What it decided, as Prometheus sees it.
	resp, err := http.Get("http://" + w.health + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	scrape, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, decision := range []string{"mutated", "unchanged", "refused"} {
		if !strings.Contains(string(scrape), `gateway_webhook_admissions_total{decision="`+decision+`"}`) {
			t.Errorf("/metrics counts no %s pod", decision)
		}
	}

	// The identity endpoint: its header is in the pod, never in a log.
	withEndpoint := map[string]string{webhook.AnnotationIdentityEndpoint: "true"}
	for k, v := range identityAnnotations {
		withEndpoint[k] = v
	}
	ep := appPod("endpoint", true, withEndpoint)
	epPod, err := pods.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "endpoint", Labels: ep.Labels, Annotations: ep.Annotations}, Spec: ep.Spec}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var header string
	for _, e := range epPod.Spec.Containers[0].Env {
		if e.Name == "IDENTITY_HEADER" {
			header = e.Value
		}
	}
	if header == "" {
		t.Fatalf("no IDENTITY_HEADER: %s", specJSON(t, epPod.Spec))
	}

	measureAdmission(t, c, w)

	// The certificate is rotated before it expires: two CAs in the bundle,
	// then pods are still mutated with the new certificate.
	c.Eventually(t, "a rotation", 60*time.Second, func(ctx context.Context) error {
		if n := strings.Count(w.proc.Log(), "webhook certificate issued"); n < 2 {
			return fmt.Errorf("%d certificates issued", n)
		}
		return nil
	})
	time.Sleep(6 * time.Second) // the rotation's grace period (a tenth of 45s) and a margin
	rotated, err := pods.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "rotated", Labels: mutated.Labels, Annotations: mutated.Annotations},
		Spec: appPod("rotated", true, nil).Spec}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil || rotated.Spec.InitContainers[0].Name != webhook.SidecarName {
		t.Fatalf("after the rotation: %v", err)
	}
	cfg, err := c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, w.mwc, metav1.GetOptions{})
	if err != nil || strings.Count(string(cfg.Webhooks[0].ClientConfig.CABundle), "BEGIN CERTIFICATE") < 2 {
		t.Errorf("the bundle after a rotation: %v\n%s", err, cfg.Webhooks[0].ClientConfig.CABundle)
	}

	// The webhook down: with failurePolicy Fail an opted-in pod waits; with
	// Ignore it is created without its identity. Other pods never notice.
	w.proc.Stop()
	down := func(name string) *corev1.Pod {
		tmpl := appPod(name, true, identityAnnotations)
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: tmpl.Labels, Annotations: tmpl.Annotations}, Spec: tmpl.Spec}
	}
	if _, err := pods.Create(ctx, down("while-down"), metav1.CreateOptions{}); err == nil || !strings.Contains(err.Error(), "failed calling webhook") {
		t.Errorf("failurePolicy Fail with the webhook down: %v", err)
	}
	if _, err := pods.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "unlabelled-while-down"}, Spec: appPod("x", false, nil).Spec}, metav1.CreateOptions{}); err != nil {
		t.Errorf("an unlabelled pod while the webhook is down: %v", err)
	}
	ignore := fmt.Sprintf(`[{"op":"replace","path":"/webhooks/0/failurePolicy","value":%q}]`, admissionregistrationv1.Ignore)
	if _, err := c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Patch(ctx, w.mwc, types.JSONPatchType, []byte(ignore), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	var unmutated *corev1.Pod
	c.Eventually(t, "failurePolicy Ignore to let the pod through", 30*time.Second, func(ctx context.Context) error {
		unmutated, err = pods.Create(ctx, down("ignored"), metav1.CreateOptions{})
		return err
	})
	if len(unmutated.Spec.InitContainers) != 1 || unmutated.Spec.InitContainers[0].Name != "migrate" {
		t.Errorf("a pod let through with the webhook down was mutated: %s", specJSON(t, unmutated.Spec))
	}
	if !strings.Contains(c.APIServer.Log(), "failing open") {
		t.Error("the API server did not log that it failed open")
	}
	for name, log := range map[string]string{"webhook": w.proc.Log(), "kube-apiserver": c.APIServer.Log()} {
		if strings.Contains(log, header) || strings.Contains(log, w.token) {
			t.Errorf("the %s log holds the identity header or the webhook's token", name)
		}
	}
	if strings.Contains(w.proc.Log(), "AZURE_") {
		t.Error("the webhook logged a patch")
	}
}

// measureAdmission logs how long the API server takes to admit a pod (dry
// run) that the webhook mutates, against one it never sees.
func measureAdmission(t *testing.T, c *k8stest.Cluster, w *webhookRig) {
	t.Helper()
	const n = 100
	pods := c.Client.CoreV1().Pods(appsNS)
	measure := func(optIn bool) (median, p95 time.Duration) {
		tmpl := appPod("measure", optIn, identityAnnotations)
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "measure", Labels: tmpl.Labels, Annotations: tmpl.Annotations}, Spec: tmpl.Spec}
		var took []time.Duration
		for range n {
			start := time.Now()
			if _, err := pods.Create(context.Background(), pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
				t.Fatal(err)
			}
			took = append(took, time.Since(start))
		}
		slices.Sort(took)
		return took[n/2], took[n*95/100]
	}
	measure(true) // warm up connections
	before := len(w.proc.Log())
	om, op := measure(true)
	// The webhook's own time per pod, from its log (slog writes durations
	// in nanoseconds).
	var inside []time.Duration
	for _, line := range strings.Split(w.proc.Log()[before:], "\n") {
		var entry struct {
			Took time.Duration `json:"took"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Took > 0 {
			inside = append(inside, entry.Took)
		}
	}
	slices.Sort(inside)
	um, up := measure(false)
	if len(inside) == 0 {
		t.Fatal("the webhook logged no admissions")
	}
	t.Logf("admission (dry-run pod create, %d each): opted-in median %s p95 %s (inside the webhook, ServiceAccount read included: median %s); unlabelled median %s p95 %s",
		n, om.Round(10*time.Microsecond), op.Round(10*time.Microsecond), inside[len(inside)/2].Round(10*time.Microsecond),
		um.Round(10*time.Microsecond), up.Round(10*time.Microsecond))
}
