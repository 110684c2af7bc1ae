package k8s_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/workload/webhook"
	charttest "github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/chart"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/k8s/k8stest"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/spire"
)

// webhookRig is the chart's webhook running as the gateway's binary against
// a real control plane: the chart's RBAC, ServiceAccount,
// MutatingWebhookConfiguration (pointed at a loopback URL, since no kubelet
// runs a pod) and configuration file, the self-managed CA.
type webhookRig struct {
	c       *k8stest.Cluster
	proc    *spire.Process
	config  webhook.Config
	mwc     string
	token   string
	health  string
	restart func()
}

const appsNS = "apps"

// startWebhook renders the chart with the webhook on and runs it.
func startWebhook(t *testing.T, c *k8stest.Cluster, validity time.Duration) *webhookRig {
	t.Helper()
	bin := os.Getenv("GATEWAY_BIN")
	if bin == "" {
		t.Skip("GATEWAY_BIN is not set: make e2e builds the binary and runs this test")
	}
	ctx := context.Background()
	r, _, err := charttest.RenderRelease("../../charts/spiffe-entra-gateway", "gw", map[string]any{"webhook": map[string]any{
		"enabled": true, "tls": map[string]any{"mode": "selfManaged", "selfManaged": map[string]any{"validity": validity.String()}}}})
	if err != nil {
		t.Fatal(err)
	}
	object := func(kind string) any {
		o, ok := r.Find(kind, "-webhook")
		if !ok {
			t.Fatalf("the chart renders no %s for the webhook", kind)
		}
		return o.Value
	}
	ns := charttest.Namespace
	sa := object("ServiceAccount").(*corev1.ServiceAccount)
	if _, err := c.Client.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.RbacV1().ClusterRoles().Create(ctx, object("ClusterRole").(*rbacv1.ClusterRole), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.RbacV1().ClusterRoleBindings().Create(ctx, object("ClusterRoleBinding").(*rbacv1.ClusterRoleBinding), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The chart's ClusterSPIFFEID, validated by spire-controller-manager's
	// own CRD.
	var spiffeID []byte
	for _, o := range r.Objects {
		if o.Kind == "ClusterSPIFFEID" && strings.HasSuffix(o.Name, "-webhook") {
			spiffeID, _ = json.Marshal(o.Value)
		}
	}
	if _, err := c.Apply(ctx, spiffeID, "", false); err != nil {
		t.Fatalf("the chart's ClusterSPIFFEID: %v", err)
	}

	listen, health := freeAddr(t), freeAddr(t)
	mwc := object("MutatingWebhookConfiguration").(*admissionregistrationv1.MutatingWebhookConfiguration)
	url := "https://" + listen + "/mutate"
	mwc.Webhooks[0].ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url}
	if _, err := c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, mwc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// The webhook's credentials: its ServiceAccount's token, nothing more.
	tr, err := c.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: c.Config.Host, CertificateAuthorityData: c.CAPEM}
	kc.AuthInfos["webhook"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "webhook"}
	kc.CurrentContext = "c"
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		t.Fatal(err)
	}

	// The chart's configuration file, with loopback addresses.
	cm := object("ConfigMap").(*corev1.ConfigMap)
	rendered := filepath.Join(dir, "rendered.yaml")
	if err := os.WriteFile(rendered, []byte(cm.Data["webhook.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := webhook.LoadConfig(rendered)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ListenAddr, cfg.HealthAddr, cfg.Kubeconfig = listen, health, kubeconfig
	cfg.TLS.SelfManaged.IPAddresses = []string{"127.0.0.1"}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "webhook.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	w := &webhookRig{c: c, config: cfg, mwc: mwc.Name, token: tr.Status.Token, health: health}
	w.restart = func() {
		w.proc = spire.Start(t, dir, bin, "webhook", "--config", path)
		c.Eventually(t, "the webhook to be ready", 30*time.Second, func(ctx context.Context) error {
			if w.proc.Exited() {
				return fmt.Errorf("the webhook exited")
			}
			resp, err := http.Get("http://" + health + "/readyz")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("/readyz %d", resp.StatusCode)
			}
			return nil
		})
	}
	w.restart()
	return w
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// appPod is a pod template PodSecurity restricted admits, with its own
// variables, an init container and a volume.
func appPod(name string, optIn bool, annotations map[string]string) corev1.PodTemplateSpec {
	labels := map[string]string{"app": name}
	if optIn {
		labels[webhook.LabelUse] = "true"
	}
	no, yes := false, true
	sc := &corev1.SecurityContext{AllowPrivilegeEscalation: &no, RunAsNonRoot: &yes,
		Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}, SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
	container := func(name string, env ...corev1.EnvVar) corev1.Container {
		return corev1.Container{Name: name, Image: "example.org/app:1", SecurityContext: sc, Env: env,
			VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}
	}
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{container("migrate")},
			Containers: []corev1.Container{
				container("app", corev1.EnvVar{Name: "AZURE_CLIENT_ID", Value: "the-pods-own"}),
				container("worker", corev1.EnvVar{Name: "LOG", Value: "debug"}),
			},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}
}

var identityAnnotations = map[string]string{
	webhook.AnnotationClientID:      "11111111-2222-3333-4444-555555555555",
	webhook.AnnotationTenantID:      "66666666-7777-8888-9999-000000000000",
	webhook.AnnotationAuthorityHost: "https://gw-entra.spire-system.svc",
}

// deploymentPod creates a Deployment of one pod and returns the pod the
// ReplicaSet controller created.
func deploymentPod(t *testing.T, c *k8stest.Cluster, name string, tmpl corev1.PodTemplateSpec) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	one := int32(1)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}, Template: tmpl},
	}
	if _, err := c.Client.AppsV1().Deployments(appsNS).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var pod *corev1.Pod
	c.Eventually(t, "the ReplicaSet controller to create the pod of "+name, 60*time.Second, func(ctx context.Context) error {
		pods, err := c.Client.CoreV1().Pods(appsNS).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		if err != nil {
			return err
		}
		if len(pods.Items) != 1 {
			rss, _ := c.Client.AppsV1().ReplicaSets(appsNS).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
			for _, rs := range rss.Items {
				for _, cond := range rs.Status.Conditions {
					if cond.Type == appsv1.ReplicaSetReplicaFailure {
						return fmt.Errorf("%d pods; the ReplicaSet: %s", len(pods.Items), cond.Message)
					}
				}
			}
			return fmt.Errorf("%d pods", len(pods.Items))
		}
		pod = &pods.Items[0]
		return nil
	})
	return pod
}

// specJSON is a pod's spec with the random suffix of the service-account
// token volume taken out, for comparing two pods.
func specJSON(t *testing.T, spec corev1.PodSpec) string {
	t.Helper()
	b, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return regexp.MustCompile(`kube-api-access-[a-z0-9]+`).ReplaceAllString(string(b), "kube-api-access")
}

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
