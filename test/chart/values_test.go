package chart_test

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/signer"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/chart"
)

// TestKeyEncryptionKey: the pod gets the key sealing the signing keys from
// a Secret — the chart's own, created once and kept on uninstall, or one
// named — and runs without one only when told to.
func TestKeyEncryptionKey(t *testing.T) {
	kekEnv := func(d *appsv1.Deployment) *corev1.EnvVar {
		for i, e := range d.Spec.Template.Spec.Containers[0].Env {
			if e.Name == "GATEWAY_ENTRA_KEY_ENCRYPTION_KEY" {
				return &d.Spec.Template.Spec.Containers[0].Env[i]
			}
		}
		return nil
	}
	r := render(t, nil)
	o, ok := r.Find("Secret", "-kek")
	if !ok {
		t.Fatalf("no key-encryption key Secret among %v", r.Kinds())
	}
	sec := o.Value.(*corev1.Secret)
	if _, err := signer.ParseKEK(string(sec.Data["key"])); err != nil || sec.Annotations["helm.sh/resource-policy"] != "keep" {
		t.Fatalf("the generated key: annotations %v", sec.Annotations)
	}
	if e := kekEnv(deployment(t, r)); e == nil || e.ValueFrom.SecretKeyRef.Name != sec.Name || e.ValueFrom.SecretKeyRef.Key != "key" {
		t.Fatalf("the pod's key: %+v", e)
	}
	gatewayConfig(t, r)

	r = render(t, chart.Values("key-encryption-existing-secret"))
	if _, ok := r.Find("Secret", "-kek"); ok {
		t.Error("a Secret is generated although one is named")
	}
	if e := kekEnv(deployment(t, r)); e == nil || e.ValueFrom.SecretKeyRef.Name != "my-kek" {
		t.Fatalf("the pod's key from the named Secret: %+v", e)
	}

	r = render(t, chart.Values("key-encryption-off"))
	if _, ok := r.Find("Secret", "-kek"); ok || kekEnv(deployment(t, r)) != nil {
		t.Error("a key although allowUnencrypted is set")
	}
	if c := gatewayConfig(t, r); !c.Entra.KeyEncryption.AllowUnencrypted {
		t.Error("allow_unencrypted is not in the configuration")
	}
}

// TestDiscoveryProviderAlone renders the chart with the Entra endpoint
// off: no Entra Service, no storage, and a configuration without them.
func TestDiscoveryProviderAlone(t *testing.T) {
	r := render(t, chart.Values("discovery-provider-alone"))
	checkInvariants(t, r)
	if _, ok := r.Find("Service", "-entra"); ok {
		t.Error("an Entra Service without the Entra endpoint")
	}
	if r.Kinds()["PersistentVolumeClaim"] != 0 {
		t.Error("a claim without the Entra endpoint")
	}
	if cfg := gatewayConfig(t, r); cfg.Entra.ListenAddr != "" {
		t.Errorf("entra.listen_addr %q", cfg.Entra.ListenAddr)
	}
	if d := deployment(t, r); d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		t.Error("Recreate without a SQLite file to protect: rollouts would drop the discovery endpoint")
	}
	for _, p := range deployment(t, r).Spec.Template.Spec.Containers[0].Ports {
		if p.Name == "entra" {
			t.Error("an entra port without the Entra endpoint")
		}
	}
}

// TestLongReleaseName: with the longest release name Helm allows, every
// Service name, suffix included, is a DNS label of at most 63 characters.
func TestLongReleaseName(t *testing.T) {
	values := chart.Values("seed-and-optional-objects")
	values["webhook"] = map[string]any{"enabled": true}
	r, _, err := chart.RenderRelease(chartDir, strings.Repeat("r", 53), values)
	if err != nil {
		t.Fatal(err)
	}
	if r.Kinds()["Service"] != 4 {
		t.Fatalf("%d Services", r.Kinds()["Service"])
	}
	for _, o := range r.Objects {
		if o.Kind == "Service" && len(o.Name) > 63 {
			t.Errorf("Service %s: %d characters", o.Name, len(o.Name))
		}
	}
}

// TestEntraAllowedHosts: the Entra listener serves its Service's names and
// the hosts named in values, and no other.
func TestEntraAllowedHosts(t *testing.T) {
	c := gatewayConfig(t, render(t, map[string]any{"entra": map[string]any{"allowedHosts": []any{"login.contoso.example"}}}))
	for _, h := range []string{"gw-spiffe-entra-gateway-entra", "gw-spiffe-entra-gateway-entra.spire-system.svc", "login.contoso.example"} {
		if !slices.Contains(c.Entra.AllowedHosts, h) {
			t.Errorf("entra.allowed_hosts %v lacks %s", c.Entra.AllowedHosts, h)
		}
	}
	if slices.Contains(c.Entra.AllowedHosts, "localhost") {
		t.Errorf("entra.allowed_hosts %v keeps the loopback default", c.Entra.AllowedHosts)
	}
}
