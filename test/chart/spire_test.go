package chart_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/chart"
)

// The values SPIRE's charts share with this one, and the pod settings a
// platform engineer expects from them (spiffe/helm-charts-hardened).

func gatewayContainer(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "gateway" {
			return c
		}
	}
	t.Fatalf("no gateway container among %d", len(d.Spec.Template.Spec.Containers))
	return corev1.Container{}
}

// TestSPIREGlobalsTakePrecedence: a global.spire.* value that is set wins
// over the chart's own, as in SPIRE's charts; unset, the chart's own count.
func TestSPIREGlobalsTakePrecedence(t *testing.T) {
	r := render(t, chart.Values("spire-locals"))
	checkInvariants(t, r)
	cfg := gatewayConfig(t, r)
	d := deployment(t, r)
	if o, _ := r.Find("Pod", "-test-discovery"); o.Value.(*corev1.Pod).Spec.Containers[0].Image != "docker.io/curlimages/curl:8.11.1" {
		t.Errorf("the helm test pod's image %s", o.Value.(*corev1.Pod).Spec.Containers[0].Image)
	}
	if cfg.OIDC.TrustDomain != "local.example" || cfg.OIDC.Issuer != "https://oidc.local.example" ||
		!slices.Contains(cfg.OIDC.AllowedHosts, "gw-spiffe-entra-gateway-oidc.spire-system.svc.local.cluster") ||
		volume(d, "bundle").ConfigMap.Name != "local-bundle" || !strings.HasPrefix(gatewayContainer(t, d).Image, "registry.local.example/") {
		t.Errorf("local values not used: %+v %s", cfg.OIDC, gatewayContainer(t, d).Image)
	}

	r = render(t, chart.Values("spire-globals"))
	checkInvariants(t, r)
	cfg = gatewayConfig(t, r)
	d = deployment(t, r)
	if cfg.OIDC.TrustDomain != "global.example" || cfg.OIDC.Issuer != "https://oidc.global.example" ||
		!slices.Contains(cfg.OIDC.AllowedHosts, "gw-spiffe-entra-gateway-oidc.spire-system.svc.global.cluster") ||
		slices.Contains(cfg.OIDC.AllowedHosts, "oidc.local.example") {
		t.Errorf("global values lost to local ones: %+v", cfg.OIDC)
	}
	if v := volume(d, "bundle"); v.ConfigMap.Name != "global-bundle" {
		t.Errorf("bundle ConfigMap %s", v.ConfigMap.Name)
	}
	if img := gatewayContainer(t, d).Image; img != "mirror.global.example/spiffe-entra-gateway/spiffe-entra-gateway:0.1.0" {
		t.Errorf("image %s", img)
	}
	if o, _ := r.Find("Pod", "-test-discovery"); o.Value.(*corev1.Pod).Spec.Containers[0].Image != "mirror.global.example/curlimages/curl:8.11.1" {
		t.Errorf("the helm test pod's image %s does not come from the global registry", o.Value.(*corev1.Pod).Spec.Containers[0].Image)
	}
	if !strings.Contains(r.Notes, "jwt_issuer   = \"https://oidc.global.example\"") {
		t.Errorf("NOTES:\n%s", r.Notes)
	}
}

// TestNamespaceOverride: every namespaced object goes where
// namespaceOverride, or SPIRE's recommended layout, says.
func TestNamespaceOverride(t *testing.T) {
	for _, tc := range []struct {
		name, variant, want string
	}{
		{"release namespace", "namespace-of-release", chart.Namespace},
		{"namespaceOverride", "namespace-override", "gateway"},
		{"SPIRE's layout", "namespace-spire-layout", "spire-server"},
		{"SPIRE's server namespace", "namespace-spire-server", "spire-mgmt"},
		{"namespaceOverride first", "namespace-override-first", "gateway"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := render(t, chart.Values(tc.variant))
			checkInvariants(t, r)
			for _, o := range r.Objects {
				if o.Kind == "ClusterSPIFFEID" {
					spec := (*o.Value.(*map[string]any))["spec"].(map[string]any)
					if got := spec["namespaceSelector"].(map[string]any)["matchExpressions"].([]any)[0].(map[string]any)["values"].([]any)[0]; got != tc.want {
						t.Errorf("ClusterSPIFFEID selects namespace %v", got)
					}
					continue
				}
				if ns := o.Namespace(); ns != tc.want {
					t.Errorf("%s %s in namespace %q, want %q", o.Kind, o.Name, ns, tc.want)
				}
			}
			if cfg := gatewayConfig(t, r); !slices.Contains(cfg.OIDC.AllowedHosts, "gw-spiffe-entra-gateway-oidc."+tc.want+".svc.cluster.local") {
				t.Errorf("allowed hosts %v", cfg.OIDC.AllowedHosts)
			}
		})
	}
}

// TestPodSettings renders every pod-level value SPIRE's charts have.
func TestPodSettings(t *testing.T) {
	values := chart.Values("pod-settings")
	digest := values["image"].(map[string]any)["digest"].(string)
	r := render(t, values)
	checkInvariants(t, r)
	d := deployment(t, r)
	pod := d.Spec.Template.Spec
	c := gatewayContainer(t, d)
	if c.Image != "ghcr.io/spiffe-entra-gateway/spiffe-entra-gateway@"+digest {
		t.Errorf("image %s", c.Image)
	}
	if *pod.SecurityContext.RunAsUser != 1000710000 || *pod.SecurityContext.FSGroup != 1000710000 || *c.SecurityContext.RunAsUser != 1000710000 {
		t.Errorf("security contexts %+v %+v", pod.SecurityContext, c.SecurityContext)
	}
	if pod.PriorityClassName != "system-cluster-critical" {
		t.Errorf("priority class %q", pod.PriorityClassName)
	}
	if len(c.Env) != 2 || c.Env[1].Name != "GATEWAY_LOG_LEVEL" || len(c.EnvFrom) != 1 || c.EnvFrom[0].ConfigMapRef.Name != "gateway-env" {
		t.Errorf("env %+v envFrom %+v", c.Env, c.EnvFrom)
	}
	if len(pod.InitContainers) != 1 || pod.InitContainers[0].Name != "wait" || len(pod.Containers) != 2 || pod.Containers[1].Name != "proxy" {
		t.Errorf("init containers %d, containers %d", len(pod.InitContainers), len(pod.Containers))
	}
	if p := c.LivenessProbe; p.InitialDelaySeconds != 7 || p.PeriodSeconds != 11 || p.TimeoutSeconds != 2 || p.FailureThreshold != 4 {
		t.Errorf("liveness %+v", p)
	}
	if p := c.ReadinessProbe; p.PeriodSeconds != 3 || p.InitialDelaySeconds != 2 {
		t.Errorf("readiness %+v: a value set merges with the defaults", p)
	}
	for svc, key := range map[string]string{"-oidc": "external-dns.alpha.kubernetes.io/hostname", "-entra": "networking.example/internal"} {
		o, _ := r.Find("Service", svc)
		if o.Value.(*corev1.Service).Annotations[key] == "" {
			t.Errorf("Service %s lacks %s", svc, key)
		}
	}

	// OpenShift assigns the user and groups from the namespace's range.
	r = render(t, chart.Values("openshift"))
	checkInvariants(t, r)
	for _, o := range r.Objects {
		var sc *corev1.PodSecurityContext
		switch v := o.Value.(type) {
		case *appsv1.Deployment:
			sc = v.Spec.Template.Spec.SecurityContext
		case *corev1.Pod:
			sc = v.Spec.SecurityContext
		default:
			continue
		}
		if sc.RunAsUser != nil || sc.RunAsGroup != nil || sc.FSGroup != nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Errorf("%s %s on OpenShift: %+v", o.Kind, o.Name, sc)
		}
	}
}

// TestKeySourcesAndConfiguration: the configuration the chart lacked,
// loaded by the gateway's own loader.
func TestKeySourcesAndConfiguration(t *testing.T) {
	r := render(t, chart.Values("key-sources"))
	checkInvariants(t, r)
	cfg := gatewayConfig(t, r)
	o := cfg.OIDC
	if o.BundleFile != "/etc/spiffe-entra-gateway/bundle/keys.jwks" || o.JWKSURI != "https://oidc-discovery.example.org/keys.json" || o.PathPrefix != "/" ||
		!slices.Contains(o.AllowedHosts, "oidc.internal.example") {
		t.Errorf("oidc %+v", o.Domain)
	}
	if len(o.AdditionalDomains) != 2 {
		t.Fatalf("additional domains %+v", o.AdditionalDomains)
	}
	if a := o.AdditionalDomains[0]; a.TrustDomain != "partner.example" || a.BundleFile != "/etc/spiffe-entra-gateway/bundles/0/bundle.spiffe" {
		t.Errorf("first additional domain %+v", a)
	}
	if b := o.AdditionalDomains[1]; b.BundleFile != "" || b.JWKSURI != "https://federated.example.org/jwks" || b.AllowedHosts[0] != "federated.internal" {
		t.Errorf("second additional domain %+v", b)
	}
	if cfg.Entra.IssuerCAFile != "/etc/spiffe-entra-gateway/issuer-ca/bundle.crt" {
		t.Errorf("issuer CA file %q", cfg.Entra.IssuerCAFile)
	}
	d := deployment(t, r)
	for name, cm := range map[string]string{"bundle": "spire-bundle", "bundle-0": "partner-bundle", "issuer-ca": "spire-bundle"} {
		if v := volume(d, name); v == nil || v.ConfigMap == nil || v.ConfigMap.Name != cm {
			t.Errorf("volume %s %+v", name, v)
		}
	}
	mounts := map[string]string{}
	for _, m := range gatewayContainer(t, d).VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	if mounts["bundle"] != "/etc/spiffe-entra-gateway/bundle" || mounts["bundle-0"] != "/etc/spiffe-entra-gateway/bundles/0" ||
		mounts["issuer-ca"] != "/etc/spiffe-entra-gateway/issuer-ca" {
		t.Errorf("mounts %v", mounts)
	}
	// The second trust domain takes its keys from the Workload API.
	if volume(d, "spiffe-workload-api") == nil || cfg.WorkloadAPI.SocketPath == "" {
		t.Error("no Workload API for the domain without a bundle")
	}

	// Keys from a ConfigMap and TLS from a Secret: no Workload API at all.
	r = render(t, map[string]any{"bundleSource": "ConfigMap",
		"tls": map[string]any{"spiffe": map[string]any{"enabled": false}, "secret": map[string]any{"enabled": true, "name": "oidc-tls"}}})
	if volume(deployment(t, r), "spiffe-workload-api") != nil || gatewayConfig(t, r).WorkloadAPI.SocketPath != "" {
		t.Error("the Workload API is mounted though nothing reads it")
	}
}

// TestEntraServiceTrust: with tls.spiffe, the gateway's registration names
// its Services, so that clients trusting SPIRE's bundle verify it, and the
// NOTES say how.
func TestEntraServiceTrust(t *testing.T) {
	r := render(t, map[string]any{"clusterSPIFFEID": map[string]any{"enabled": true}})
	o, ok := r.Find("ClusterSPIFFEID", "gw-spiffe-entra-gateway")
	if !ok {
		t.Fatal("no ClusterSPIFFEID")
	}
	raw, _ := json.Marshal((*o.Value.(*map[string]any))["spec"].(map[string]any)["dnsNameTemplates"])
	for _, want := range []string{"gw-spiffe-entra-gateway-entra.spire-system.svc", "gw-spiffe-entra-gateway-entra.spire-system.svc.cluster.local",
		"gw-spiffe-entra-gateway-oidc.spire-system.svc.cluster.local", "oidc-discovery.example.org"} {
		if !strings.Contains(string(raw), `"`+want+`"`) {
			t.Errorf("dnsNameTemplates %s lack %s", raw, want)
		}
	}
	if !strings.Contains(r.Notes, "https://gw-spiffe-entra-gateway-entra.spire-system.svc.cluster.local") ||
		!strings.Contains(r.Notes, "ConfigMap spire-bundle, key bundle.crt") {
		t.Errorf("NOTES do not say how to trust the Entra endpoint:\n%s", r.Notes)
	}
}

// TestInvalidSPIREValuesFailToRender: each refusal names the value.
func TestInvalidSPIREValuesFailToRender(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"digest", map[string]any{"image": map[string]any{"digest": "latest"}}, "/image/digest"},
		{"bundle source", map[string]any{"bundleSource": "CSI"}, "/bundleSource"},
		{"old issuer value", map[string]any{"issuer": "https://oidc.example.org"}, "'issuer' not allowed"},
		{"old allowedHosts value", map[string]any{"oidc": map[string]any{"allowedHosts": []any{"a"}}}, "'allowedHosts' not allowed"},
		{"trust domain without issuer", map[string]any{"oidc": map[string]any{"additionalTrustDomains": []any{map[string]any{"trustDomain": "x.example"}}}}, "jwtIssuer"},
		{"http additional issuer", map[string]any{"oidc": map[string]any{"additionalTrustDomains": []any{map[string]any{"trustDomain": "x.example", "jwtIssuer": "http://x.example"}}}},
			`oidc.additionalTrustDomains[0].jwtIssuer "http://x.example" must be https`},
		{"probe", map[string]any{"livenessProbe": map[string]any{"periodSeconds": 0}}, "/livenessProbe/periodSeconds"},
		{"probe typo", map[string]any{"readinessProbe": map[string]any{"perodSeconds": 5}}, "perodSeconds"},
		{"namespace", map[string]any{"namespaceOverride": "Not_A_Namespace"}, "/namespaceOverride"},
		{"jwks uri", map[string]any{"oidc": map[string]any{"jwksUri": "http://x.example/keys"}}, "/oidc/jwksUri"},
		{"service annotations", map[string]any{"service": map[string]any{"entra": map[string]any{"annotations": map[string]any{"a": 1}}}}, "/service/entra/annotations"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := chart.Render(chartDir, tc.values)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
