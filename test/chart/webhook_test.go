package chart_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/workload/webhook"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/chart"
)

func find[T any](t *testing.T, r chart.Rendered, kind, suffix string) T {
	t.Helper()
	o, ok := r.Find(kind, suffix)
	if !ok {
		t.Fatalf("no %s %s among %v", kind, suffix, r.Kinds())
	}
	return o.Value.(T)
}

// webhookConfig loads the rendered configuration with the webhook's own
// loader.
func webhookConfig(t *testing.T, r chart.Rendered) webhook.Config {
	t.Helper()
	cm := find[*corev1.ConfigMap](t, r, "ConfigMap", "-webhook")
	path := filepath.Join(t.TempDir(), "webhook.yaml")
	if err := os.WriteFile(path, []byte(cm.Data["webhook.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := webhook.LoadConfig(path)
	if err != nil {
		t.Fatalf("the rendered webhook configuration does not load: %v\n%s", err, cm.Data["webhook.yaml"])
	}
	return c
}

func TestWebhookOff(t *testing.T) {
	r := render(t, nil)
	for _, kind := range []string{"MutatingWebhookConfiguration", "ClusterRole", "ClusterRoleBinding"} {
		if r.Kinds()[kind] != 0 {
			t.Errorf("%s rendered with the webhook off", kind)
		}
	}
}

func TestWebhookSelfManaged(t *testing.T) {
	r := render(t, chart.Values("webhook-self-managed"))
	checkInvariants(t, r)
	d := find[*appsv1.Deployment](t, r, "Deployment", "gw-spiffe-entra-gateway-webhook")
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	if !slices.Equal(c.Args, []string{"webhook", "--config", "/etc/spiffe-entra-gateway/webhook/webhook.yaml"}) || *d.Spec.Replicas != 2 {
		t.Errorf("webhook container %q, %d replicas", c.Args, *d.Spec.Replicas)
	}
	if sc := c.SecurityContext; sc == nil || !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("webhook security context %+v", sc)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Error("no readiness probe: the Service would send the API server to a pod whose CA is not trusted yet")
	}
	if _, ok := r.Find("PodDisruptionBudget", "-webhook"); !ok {
		t.Error("no PodDisruptionBudget for the webhook")
	}

	// The webhook's pods and the gateway's never select each other.
	gwSvc := find[*corev1.Service](t, r, "Service", "gw-spiffe-entra-gateway-oidc")
	whSvc := find[*corev1.Service](t, r, "Service", "gw-spiffe-entra-gateway-webhook")
	gwPods := labels.Set(deployment(t, r).Spec.Template.Labels)
	whPods := labels.Set(d.Spec.Template.Labels)
	if labels.SelectorFromSet(gwSvc.Spec.Selector).Matches(whPods) || labels.SelectorFromSet(whSvc.Spec.Selector).Matches(gwPods) {
		t.Error("the gateway's and the webhook's Services select each other's pods")
	}

	mwc := find[*admissionregistrationv1.MutatingWebhookConfiguration](t, r, "MutatingWebhookConfiguration", "spire-system-gw-spiffe-entra-gateway-webhook")
	if len(mwc.Webhooks) != 1 {
		t.Fatalf("%d webhooks", len(mwc.Webhooks))
	}
	w := mwc.Webhooks[0]
	if *w.FailurePolicy != admissionregistrationv1.Fail || *w.TimeoutSeconds != 5 || *w.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy ||
		*w.SideEffects != admissionregistrationv1.SideEffectClassNone || *w.MatchPolicy != admissionregistrationv1.Equivalent ||
		!slices.Equal(w.AdmissionReviewVersions, []string{"v1"}) {
		t.Errorf("webhook policies %+v", w)
	}
	if w.ClientConfig.Service == nil || w.ClientConfig.Service.Name != whSvc.Name || *w.ClientConfig.Service.Path != "/mutate" || len(w.ClientConfig.CABundle) != 0 {
		t.Errorf("client config %+v (the caBundle is the webhook's to write)", w.ClientConfig)
	}
	if len(w.Rules) != 1 || !slices.Equal(w.Rules[0].Operations, []admissionregistrationv1.OperationType{admissionregistrationv1.Create}) ||
		!slices.Equal(w.Rules[0].Resources, []string{"pods"}) {
		t.Errorf("rules %+v", w.Rules)
	}
	if !matches(t, w.ObjectSelector, map[string]string{webhook.LabelUse: "true"}) || matches(t, w.ObjectSelector, map[string]string{"app": "x"}) {
		t.Error("the objectSelector does not limit the webhook to opted-in pods")
	}
	for ns, want := range map[string]bool{"apps": true, "spire-system": false, "kube-system": false, "infra": false} {
		if got := matches(t, w.NamespaceSelector, map[string]string{"kubernetes.io/metadata.name": ns}); got != want {
			t.Errorf("namespace %s selected: %v", ns, got)
		}
	}

	// RBAC: ServiceAccounts read, and this one configuration patched.
	role := find[*rbacv1.ClusterRole](t, r, "ClusterRole", "-webhook")
	if len(role.Rules) != 2 || !slices.Equal(role.Rules[1].ResourceNames, []string{mwc.Name}) || slices.Contains(role.Rules[1].Verbs, "list") ||
		!slices.Equal(role.Rules[0].Verbs, []string{"get"}) {
		t.Errorf("ClusterRole %+v", role.Rules)
	}
	binding := find[*rbacv1.ClusterRoleBinding](t, r, "ClusterRoleBinding", "-webhook")
	if binding.Subjects[0].Name != pod.ServiceAccountName || binding.Subjects[0].Namespace != chart.Namespace {
		t.Errorf("binding %+v", binding.Subjects)
	}

	cfg := webhookConfig(t, r)
	if cfg.TLS.SelfManaged == nil || cfg.TLS.SelfManaged.WebhookConfiguration != mwc.Name ||
		!slices.Contains(cfg.TLS.SelfManaged.DNSNames, whSvc.Name+".spire-system.svc") || cfg.Namespace != chart.Namespace ||
		!slices.Equal(cfg.ExcludedNamespaces, []string{"spire-system", "kube-system", "infra"}) {
		t.Errorf("webhook configuration %+v", cfg)
	}

	// The configuration, as loaded, gives a restricted pod a sidecar running
	// the chart's image.
	ops, err := cfg.Injection.Mutate(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{webhook.LabelUse: "true"}, Annotations: map[string]string{webhook.AnnotationClientID: "c", webhook.AnnotationTenantID: "t"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sidecar := ops[len(ops)-1].Value.([]corev1.Container)[0]
	if sidecar.Image != "ghcr.io/spiffe-entra-gateway/spiffe-entra-gateway:0.1.0" || sidecar.SecurityContext.RunAsNonRoot == nil || !*sidecar.SecurityContext.RunAsNonRoot {
		t.Errorf("sidecar %s %+v", sidecar.Image, sidecar.SecurityContext)
	}

	spiffeID := find[*map[string]any](t, r, "ClusterSPIFFEID", "-webhook")
	spec := (*spiffeID)["spec"].(map[string]any)
	if spec["jwtTtl"] != "1h" || spec["podSelector"].(map[string]any)["matchLabels"].(map[string]any)[webhook.LabelUse] != "true" {
		t.Errorf("ClusterSPIFFEID %v", spec)
	}
}

func matches(t *testing.T, sel *metav1.LabelSelector, set map[string]string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatal(err)
	}
	return s.Matches(labels.Set(set))
}

func TestWebhookCertManager(t *testing.T) {
	r := render(t, chart.Values("webhook-cert-manager"))
	mwc := find[*admissionregistrationv1.MutatingWebhookConfiguration](t, r, "MutatingWebhookConfiguration", "-webhook")
	cert := find[*map[string]any](t, r, "Certificate", "gw-spiffe-entra-gateway-webhook")
	issuer := find[*map[string]any](t, r, "Issuer", "gw-spiffe-entra-gateway-webhook")
	if mwc.Annotations["cert-manager.io/inject-ca-from"] != chart.Namespace+"/"+(*cert)["metadata"].(map[string]any)["name"].(string) {
		t.Errorf("the cainjector is not told where the CA is: %v", mwc.Annotations)
	}
	if _, ok := (*issuer)["spec"].(map[string]any)["selfSigned"]; !ok {
		t.Errorf("issuer %v", *issuer)
	}
	if *mwc.Webhooks[0].FailurePolicy != admissionregistrationv1.Ignore {
		t.Error("failurePolicy not taken from the values")
	}
	if role := find[*rbacv1.ClusterRole](t, r, "ClusterRole", "-webhook"); len(role.Rules) != 1 {
		t.Errorf("with cert-manager the webhook needs no write access: %+v", role.Rules)
	}
	if _, ok := r.Find("PodDisruptionBudget", "-webhook"); ok {
		t.Error("a PodDisruptionBudget for one pod blocks node drains")
	}
	cfg := webhookConfig(t, r)
	if cfg.TLS.CertFile != "/tls/tls.crt" || cfg.Injection.WorkloadAPI.Mode != "hostPath" || !strings.HasSuffix(cfg.Injection.Sidecar.Image, ":9.9.9") {
		t.Errorf("configuration %+v", cfg)
	}
	d := find[*appsv1.Deployment](t, r, "Deployment", "-webhook")
	if v := d.Spec.Template.Spec.Volumes; len(v) != 2 || v[1].Secret == nil || v[1].Secret.SecretName != (*cert)["spec"].(map[string]any)["secretName"] {
		t.Errorf("volumes %+v", v)
	}
}

func TestWebhookLongReleaseName(t *testing.T) {
	r, _, err := chart.RenderRelease(chartDir, strings.Repeat("r", 53), map[string]any{"webhook": map[string]any{"enabled": true}})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range r.Objects {
		namespaced := o.Kind != "MutatingWebhookConfiguration" && o.Kind != "ClusterRole" && o.Kind != "ClusterRoleBinding" && o.Kind != "ClusterSPIFFEID"
		if strings.HasSuffix(o.Name, "-webhook") && namespaced && len(o.Name) > 63 {
			t.Errorf("%s %s: %d characters", o.Kind, o.Name, len(o.Name))
		}
	}
}

func TestWebhookValuesSchema(t *testing.T) {
	for name, values := range map[string]map[string]any{
		"failurePolicy": {"webhook": map[string]any{"failurePolicy": "Sometimes"}},
		"timeout":       {"webhook": map[string]any{"timeoutSeconds": 31}},
		"tls mode":      {"webhook": map[string]any{"tls": map[string]any{"mode": "vault"}}},
		"typo":          {"webhook": map[string]any{"enable": true}},
		"jwtTtl":        {"webhook": map[string]any{"clusterSPIFFEID": map[string]any{"jwtTtl": "an hour"}}},
	} {
		if _, err := chart.Render(chartDir, values); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestWebhookTLSAuto takes cert-manager when the cluster serves its API and
// the self-managed CA otherwise.
func TestWebhookTLSAuto(t *testing.T) {
	on := map[string]any{"webhook": map[string]any{"enabled": true}}
	r, err := chart.RenderWithAPIs(chartDir, on, "cert-manager.io/v1")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Find("Certificate", "-webhook"); !ok || webhookConfig(t, r).TLS.CertFile == "" {
		t.Error("cert-manager is served but the webhook does not use it")
	}
	r = render(t, on)
	if _, ok := r.Find("Certificate", "-webhook"); ok || webhookConfig(t, r).TLS.SelfManaged == nil {
		t.Error("without cert-manager the webhook is not self-managed")
	}
	if !strings.Contains(r.Notes, webhook.LabelUse) || !strings.Contains(r.Notes, webhook.AnnotationClientID) {
		t.Errorf("NOTES do not say how a pod opts in:\n%s", r.Notes)
	}
}

// TestWebhookRollsOnConfig: any value the configuration file holds rolls
// the webhook's pods, not only webhook.*; on OpenShift the sidecar leaves
// the user to the namespace's range.
func TestWebhookRollsOnConfig(t *testing.T) {
	checksum := func(values map[string]any) string {
		d := find[*appsv1.Deployment](t, render(t, values), "Deployment", "-webhook")
		return d.Spec.Template.Annotations["checksum/config"]
	}
	on := map[string]any{"webhook": map[string]any{"enabled": true}}
	hostPath := map[string]any{"webhook": map[string]any{"enabled": true}, "workloadAPI": map[string]any{"mode": "hostPath"}}
	if checksum(on) == checksum(hostPath) {
		t.Error("a change of workloadAPI does not roll the webhook's pods")
	}
	r := render(t, map[string]any{"webhook": map[string]any{"enabled": true}, "global": map[string]any{"openshift": true}})
	if sc := webhookConfig(t, r).Injection.Sidecar.SecurityContext; sc.RunAsUser != nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("OpenShift sidecar security context %+v", sc)
	}
}

// TestWebhookNamespaceOverride: the webhook follows the chart's namespace,
// and that namespace, not the release's, is the one it never touches.
func TestWebhookNamespaceOverride(t *testing.T) {
	r := render(t, map[string]any{"namespaceOverride": "identity", "webhook": map[string]any{"enabled": true}})
	mwc := find[*admissionregistrationv1.MutatingWebhookConfiguration](t, r, "MutatingWebhookConfiguration", "-webhook")
	if svc := mwc.Webhooks[0].ClientConfig.Service; svc.Namespace != "identity" {
		t.Errorf("the API server is sent to namespace %s", svc.Namespace)
	}
	if matches(t, mwc.Webhooks[0].NamespaceSelector, map[string]string{"kubernetes.io/metadata.name": "identity"}) {
		t.Error("the webhook's own namespace is selected")
	}
	cfg := webhookConfig(t, r)
	binding := find[*rbacv1.ClusterRoleBinding](t, r, "ClusterRoleBinding", "-webhook")
	if cfg.Namespace != "identity" || binding.Subjects[0].Namespace != "identity" || !strings.HasPrefix(mwc.Name, "identity-") {
		t.Errorf("namespace %s, binding %+v, configuration %s", cfg.Namespace, binding.Subjects, mwc.Name)
	}
}
