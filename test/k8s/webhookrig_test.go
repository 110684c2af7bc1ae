package k8s_test

// The webhook under test (TestWebhook): the chart's objects on a real
// control plane and the binary serving them, and the pods it judges.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/workload/webhook"
	charttest "github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/chart"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/k8s/k8stest"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/loopback"
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

	addrs := loopback.Addrs(t, 2)
	listen, health := addrs[0], addrs[1]
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
