package chart_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/seed"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/config"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/chart"
)

const chartDir = "../../charts/spiffe-entra-gateway"

func render(t *testing.T, values map[string]any) chart.Rendered {
	t.Helper()
	r, err := chart.Render(chartDir, values)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return r
}

func deployment(t *testing.T, r chart.Rendered) *appsv1.Deployment {
	t.Helper()
	o, ok := r.Find("Deployment", "gw-spiffe-entra-gateway")
	if !ok {
		t.Fatalf("no Deployment among %v", r.Kinds())
	}
	return o.Value.(*appsv1.Deployment)
}

func configMap(t *testing.T, r chart.Rendered, suffix string) *corev1.ConfigMap {
	t.Helper()
	o, ok := r.Find("ConfigMap", suffix)
	if !ok {
		t.Fatalf("no ConfigMap %s among %v", suffix, r.Kinds())
	}
	return o.Value.(*corev1.ConfigMap)
}

// gatewayConfig parses the configuration the pod gets with the gateway's
// own loader.
func gatewayConfig(t *testing.T, r chart.Rendered, env ...string) config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(path, []byte(configMap(t, r, "-config").Data["gateway.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	// Variables the pod takes from Secrets are there, with stand-in values.
	for _, e := range deployment(t, r).Spec.Template.Spec.Containers[0].Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			env = append(env, e.Name+"=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
		}
	}
	c, err := config.Load(path, env)
	if err != nil {
		t.Fatalf("the rendered configuration does not load: %v", err)
	}
	return c
}

func volume(d *appsv1.Deployment, name string) *corev1.Volume {
	for i, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return &d.Spec.Template.Spec.Volumes[i]
		}
	}
	return nil
}

// checkInvariants holds for every set of values.
func checkInvariants(t *testing.T, r chart.Rendered) {
	t.Helper()
	d := deployment(t, r)
	pod := d.Spec.Template.Spec
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the pod mounts a service-account token it does not need")
	}
	if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
		t.Error("service links are on: Kubernetes would set GATEWAY_* variables for a Service named gateway")
	}
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		t.Error("the pod may run as root")
	}
	c := gatewayContainer(t, d)
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container security context is not hardened: %+v", sc)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/livez" || c.LivenessProbe.HTTPGet.Port.String() != "healthz" {
		t.Errorf("liveness probe %+v", c.LivenessProbe)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe %+v", c.ReadinessProbe)
	}
	if d.Spec.Template.Annotations["checksum/config"] == "" {
		t.Error("no checksum/config annotation")
	}
	cfg := gatewayConfig(t, r, "GATEWAY_STORE_POSTGRES_DSN=postgres://from-secret")
	if cfg.Health.ListenAddr != ":8008" || cfg.OIDC.ListenAddr != ":8443" {
		t.Errorf("listeners in the config: health %s oidc %s", cfg.Health.ListenAddr, cfg.OIDC.ListenAddr)
	}
	if !strings.HasPrefix(cfg.WorkloadAPI.SocketPath, "unix:///spiffe-workload-api/") {
		t.Errorf("socket %s", cfg.WorkloadAPI.SocketPath)
	}
	for _, m := range c.VolumeMounts {
		if m.Name == "spiffe-workload-api" && !m.ReadOnly {
			t.Error("the Workload API socket is mounted read-write")
		}
	}
	if !strings.Contains(r.Notes, `jwt_key_type = "rsa-2048"`) || !strings.Contains(r.Notes, "issuer:    "+cfg.OIDC.Issuer) {
		t.Errorf("NOTES do not give the issuer and the SPIRE settings:\n%s", r.Notes)
	}
	if _, ok := r.Find("Pod", "-test-discovery"); !ok {
		t.Error("no helm test pod")
	}
}

func TestDefaults(t *testing.T) {
	r := render(t, nil)
	checkInvariants(t, r)
	d := deployment(t, r)
	if *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("replicas %d strategy %s: one pod owns the SQLite file", *d.Spec.Replicas, d.Spec.Strategy.Type)
	}
	cfg := gatewayConfig(t, r)
	if cfg.OIDC.Issuer != "https://oidc-discovery.example.org" || cfg.OIDC.TrustDomain != "example.org" || cfg.TLS.Mode != "spiffe" ||
		cfg.Store.Driver != "sqlite" || cfg.Entra.ListenAddr != ":9443" || cfg.Metrics.ListenAddr != ":9090" {
		t.Errorf("config %+v", cfg)
	}
	for _, h := range []string{"oidc-discovery.example.org", "gw-spiffe-entra-gateway-oidc.spire-system.svc.cluster.local"} {
		if !strings.Contains(strings.Join(cfg.OIDC.AllowedHosts, ","), h) {
			t.Errorf("allowed hosts %v lack %s", cfg.OIDC.AllowedHosts, h)
		}
	}
	if v := volume(d, "spiffe-workload-api"); v == nil || v.CSI == nil || v.CSI.Driver != "csi.spiffe.io" || !*v.CSI.ReadOnly {
		t.Errorf("workload API volume %+v", v)
	}
	if v := volume(d, "data"); v == nil || v.PersistentVolumeClaim == nil {
		t.Errorf("data volume %+v: SQLite belongs on a claim", v)
	}
	for _, kind := range []string{"PersistentVolumeClaim", "ServiceAccount", "PodDisruptionBudget"} {
		if r.Kinds()[kind] != 1 {
			t.Errorf("%d %s", r.Kinds()[kind], kind)
		}
	}
	if r.Kinds()["Service"] != 3 {
		t.Errorf("%d Services, want oidc, entra and metrics", r.Kinds()["Service"])
	}
	for _, kind := range []string{"Ingress", "HTTPRoute", "HorizontalPodAutoscaler", "NetworkPolicy", "ServiceMonitor", "Certificate", "ClusterSPIFFEID"} {
		if r.Kinds()[kind] != 0 {
			t.Errorf("%s rendered by default", kind)
		}
	}
	entraSvc, _ := r.Find("Service", "-entra")
	if entraSvc.Value.(*corev1.Service).Spec.Type != corev1.ServiceTypeClusterIP {
		t.Error("the Entra endpoint is exposed outside the cluster")
	}
}

func TestReplicasWithPostgres(t *testing.T) {
	r := render(t, chart.Values("postgres-replicas"))
	checkInvariants(t, r)
	d := deployment(t, r)
	if *d.Spec.Replicas != 3 || d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		t.Errorf("replicas %d strategy %s", *d.Spec.Replicas, d.Spec.Strategy.Type)
	}
	env := d.Spec.Template.Spec.Containers[0].Env
	if len(env) != 2 || env[1].Name != "GATEWAY_STORE_POSTGRES_DSN" || env[1].ValueFrom.SecretKeyRef.Name != "gateway-db" || env[1].ValueFrom.SecretKeyRef.Key != "dsn" {
		t.Errorf("env %+v", env)
	}
	if r.Kinds()["PersistentVolumeClaim"] != 0 {
		t.Error("a PVC with PostgreSQL")
	}
	if len(d.Spec.Template.Spec.TopologySpreadConstraints) != 1 {
		t.Error("several replicas are not spread over nodes")
	}
	if cfg := gatewayConfig(t, r, "GATEWAY_STORE_POSTGRES_DSN=postgres://x"); cfg.Store.Driver != "postgres" {
		t.Errorf("driver %s", cfg.Store.Driver)
	}

	r = render(t, chart.Values("postgres-autoscaling"))
	if r.Kinds()["HorizontalPodAutoscaler"] != 1 || deployment(t, r).Spec.Replicas != nil {
		t.Error("autoscaling: want an HPA and no fixed replicas")
	}
}

func TestTLSModes(t *testing.T) {
	r := render(t, chart.Values("tls-secret"))
	checkInvariants(t, r)
	d := deployment(t, r)
	if v := volume(d, "tls"); v == nil || v.Secret == nil || v.Secret.SecretName != "oidc-tls" {
		t.Errorf("tls volume %+v", v)
	}
	if cfg := gatewayConfig(t, r); cfg.TLS.Mode != "files" || cfg.TLS.CertFile != "/tls/tls.crt" {
		t.Errorf("tls %+v", cfg.TLS)
	}

	r = render(t, chart.Values("tls-cert-manager"))
	checkInvariants(t, r)
	cert, ok := r.Find("Certificate", "gw-spiffe-entra-gateway")
	if !ok {
		t.Fatal("no Certificate")
	}
	spec := (*cert.Value.(*map[string]any))["spec"].(map[string]any)
	if spec["secretName"] != "gw-spiffe-entra-gateway-tls" || spec["dnsNames"].([]any)[0] != "oidc-discovery.example.org" {
		t.Errorf("certificate spec %v", spec)
	}
	if v := volume(deployment(t, r), "tls"); v == nil || v.Secret.SecretName != "gw-spiffe-entra-gateway-tls" {
		t.Errorf("tls volume %+v", v)
	}
}

func TestWorkloadAPIByHostPath(t *testing.T) {
	r := render(t, chart.Values("workload-api-host-path"))
	checkInvariants(t, r)
	v := volume(deployment(t, r), "spiffe-workload-api")
	if v == nil || v.HostPath == nil || v.HostPath.Path != "/run/spire/agent-sockets" {
		t.Errorf("volume %+v", v)
	}
	if cfg := gatewayConfig(t, r); cfg.WorkloadAPI.SocketPath != "unix:///spiffe-workload-api/api.sock" {
		t.Errorf("socket %s", cfg.WorkloadAPI.SocketPath)
	}
}

func TestExposures(t *testing.T) {
	r := render(t, chart.Values("ingress"))
	checkInvariants(t, r)
	o, ok := r.Find("Ingress", "-oidc")
	if !ok {
		t.Fatal("no Ingress")
	}
	ing := o.Value.(*networkingv1.Ingress)
	rule := ing.Spec.Rules[0]
	if rule.Host != "oidc.contoso.example" || rule.HTTP.Paths[0].Path != "/tenant-a" || rule.HTTP.Paths[0].Backend.Service.Port.Name != "https" ||
		ing.Spec.TLS[0].SecretName != "public-tls" {
		t.Errorf("ingress %+v", ing.Spec)
	}

	r = render(t, chart.Values("http-route"))
	route, ok := r.Find("HTTPRoute", "-oidc")
	if !ok {
		t.Fatal("no HTTPRoute")
	}
	spec := (*route.Value.(*map[string]any))["spec"].(map[string]any)
	if spec["hostnames"].([]any)[0] != "oidc-discovery.example.org" {
		t.Errorf("route %v", spec)
	}
}

func TestSeedAndOptionalObjects(t *testing.T) {
	values := chart.Values("seed-and-optional-objects")
	tenants := values["seed"].(map[string]any)["tenants"].([]any)
	r := render(t, values)
	checkInvariants(t, r)
	f, err := seed.Parse([]byte(configMap(t, r, "-seed").Data["seed.yaml"]))
	if err != nil {
		t.Fatalf("the rendered seed does not parse: %v", err)
	}
	if len(f.Tenants) != 1 || len(f.Tenants[0].Applications) != 1 {
		t.Errorf("seed %+v", f)
	}
	if cfg := gatewayConfig(t, r); cfg.Entra.SeedFile != "/etc/spiffe-entra-gateway/seed/seed.yaml" {
		t.Errorf("seed file %q", cfg.Entra.SeedFile)
	}
	for _, kind := range []string{"NetworkPolicy", "ServiceMonitor", "ClusterSPIFFEID"} {
		if r.Kinds()[kind] != 1 {
			t.Errorf("%s not rendered", kind)
		}
	}
	// A changed seed changes the pod template, so the pods roll.
	before := deployment(t, r).Spec.Template.Annotations["checksum/seed"]
	tenants[0].(map[string]any)["displayName"] = "Contoso"
	if after := deployment(t, render(t, values)).Spec.Template.Annotations["checksum/seed"]; after == before {
		t.Error("checksum/seed did not change with the seed")
	}
	if a, b := deployment(t, render(t, nil)), deployment(t, render(t, map[string]any{"logLevel": "debug"})); a.Spec.Template.Annotations["checksum/config"] == b.Spec.Template.Annotations["checksum/config"] {
		t.Error("checksum/config did not change with the config")
	}
}

func TestInvalidValuesFailToRender(t *testing.T) {
	pg := map[string]any{"postgres": map[string]any{"enabled": true, "dsnSecret": map[string]any{"name": "db"}}}
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"replicas with SQLite", map[string]any{"replicaCount": 2}, "replicaCount 2 (or autoscaling.enabled) needs store.postgres.enabled"},
		{"autoscaling with SQLite", map[string]any{"autoscaling": map[string]any{"enabled": true}}, "needs store.postgres.enabled"},
		{"two TLS modes", map[string]any{"tls": map[string]any{"secret": map[string]any{"enabled": true, "name": "x"}}}, "enable exactly one of tls.spiffe, tls.secret and tls.certManager (enabled: spiffe, secret)"},
		{"no TLS mode", map[string]any{"tls": map[string]any{"spiffe": map[string]any{"enabled": false}}}, "(enabled: none)"},
		{"http issuer", map[string]any{"jwtIssuer": "http://oidc.example.org"}, `issuer "http://oidc.example.org" must be https`},
		{"ingress host", map[string]any{"ingress": map[string]any{"enabled": true, "host": "other.example.org"}}, `ingress.host "other.example.org" does not match the issuer's host "oidc-discovery.example.org"`},
		{"route host", map[string]any{"httpRoute": map[string]any{"enabled": true, "parentRefs": []any{map[string]any{"name": "g"}}, "hostnames": []any{"x.example"}}}, `httpRoute.hostnames: "x.example" does not match`},
		{"postgres without secret", map[string]any{"store": map[string]any{"postgres": map[string]any{"enabled": true}}}, "store.postgres.dsnSecret.name is required"},
		{"secret without name", map[string]any{"tls": map[string]any{"spiffe": map[string]any{"enabled": false}, "secret": map[string]any{"enabled": true}}}, "tls.secret.name is required"},
		{"typo", map[string]any{"replicaCuont": 2}, "replicaCuont"},
		{"nested typo", map[string]any{"store": pg, "ingress": map[string]any{"enabeld": true}}, "enabeld"},
		{"wrong type", map[string]any{"replicaCount": "two"}, "replicaCount"},
		{"bad duration", map[string]any{"oidc": map[string]any{"staleness": "ten minutes"}}, "staleness"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := chart.Render(chartDir, tc.values)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestHelmLint runs Helm's own linter over the chart.
func TestHelmLint(t *testing.T) {
	for _, msg := range chart.Lint(chartDir) {
		t.Error(msg)
	}
}
