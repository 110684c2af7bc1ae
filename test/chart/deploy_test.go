package chart_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/config"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/chart"
)

var update = flag.Bool("update", false, "write deploy/base/gateway.yaml from the chart's defaults")

const baseFile = "../../deploy/base/gateway.yaml"

// helmOnly are the lines of a Helm render that name Helm itself, and the
// objects' namespace, which kustomizations set.
var helmOnly = regexp.MustCompile(`(?m)^\s*(helm\.sh/chart|app\.kubernetes\.io/managed-by): .*\n|^# Source: .*\n|^  namespace: .*\n`)

// baseFromChart renders the chart's defaults as the plain manifests of
// deploy/base: the release is named after the chart, Helm's own labels go.
// The key-encryption key is a Secret the operator creates
// (docs/kubernetes.md): a generated one would be committed here.
func baseFromChart(t *testing.T) string {
	t.Helper()
	_, manifest, err := chart.RenderRelease(chartDir, "spiffe-entra-gateway", map[string]any{
		"entra": map[string]any{"keyEncryption": map[string]any{"existingSecret": "spiffe-entra-gateway-kek"}}})
	if err != nil {
		t.Fatal(err)
	}
	return "# Generated from charts/spiffe-entra-gateway with its default values (and\n" +
		"# entra.keyEncryption.existingSecret: spiffe-entra-gateway-kek) by\n" +
		"#   go test ./test/chart -run TestDeployBaseEqualsChartDefaults -update\n" +
		"# Do not edit: change the chart, then regenerate.\n" +
		strings.TrimLeft(helmOnly.ReplaceAllString(manifest, ""), "-\n")
}

// TestDeployBaseEqualsChartDefaults keeps deploy/base equal to the chart's
// defaults: the objects kustomize builds from it are those the chart
// renders, field for field.
func TestDeployBaseEqualsChartDefaults(t *testing.T) {
	want := baseFromChart(t)
	if *update {
		if err := os.WriteFile(baseFile, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(baseFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatal("deploy/base/gateway.yaml differs from the chart's defaults: regenerate it with -update")
	}
	built, err := chart.Kustomize("../../deploy/base")
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := chart.Decode([]byte(want))
	if err != nil {
		t.Fatal(err)
	}
	index := func(objs []chart.Object) map[string]string {
		out := map[string]string{}
		for _, o := range objs {
			b, _ := json.Marshal(o.Value)
			out[o.Kind+"/"+o.Name] = string(b)
		}
		return out
	}
	a, b := index(built.Objects), index(rendered)
	if len(a) != len(b) || len(a) < 6 {
		t.Fatalf("kustomize built %d objects, the chart rendered %d", len(a), len(b))
	}
	for k, v := range b {
		if a[k] != v {
			t.Errorf("%s differs between kustomize and the chart:\n%s\n%s", k, a[k], v)
		}
	}
}

// TestDeployPublicOverlay builds the overlay that publishes the OIDC
// endpoint: strictly decoded, its configuration loads, and its Ingress
// serves the issuer's host.
func TestDeployPublicOverlay(t *testing.T) {
	built, err := chart.Kustomize("../../deploy/overlays/public-oidc")
	if err != nil {
		t.Fatal(err)
	}
	o, ok := built.Find("ConfigMap", "")
	if !ok || built.Kinds()["ConfigMap"] != 1 {
		t.Fatalf("want one ConfigMap among %v", built.Kinds())
	}
	d, _ := built.Find("Deployment", "spiffe-entra-gateway")
	for _, v := range d.Value.(*appsv1.Deployment).Spec.Template.Spec.Volumes {
		if v.Name == "config" && v.ConfigMap.Name != o.Name {
			t.Errorf("the Deployment mounts ConfigMap %s, the overlay generates %s", v.ConfigMap.Name, o.Name)
		}
	}
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	os.WriteFile(path, []byte(o.Value.(*corev1.ConfigMap).Data["gateway.yaml"]), 0o600)
	cfg, err := config.Load(path, []string{"GATEWAY_ENTRA_KEY_ENCRYPTION_KEY=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}) // from the Secret
	if err != nil {
		t.Fatalf("the overlay's configuration does not load: %v", err)
	}
	ing, ok := built.Find("Ingress", "-oidc")
	if !ok {
		t.Fatal("no Ingress")
	}
	host := ing.Value.(*networkingv1.Ingress).Spec.Rules[0].Host
	if !strings.HasPrefix(cfg.OIDC.Issuer, "https://"+host) {
		t.Fatalf("the Ingress serves %s, the issuer is %s", host, cfg.OIDC.Issuer)
	}
	for _, obj := range built.Objects {
		if ns := obj.Namespace(); ns != "spire-system" {
			t.Errorf("%s %s in namespace %q", obj.Kind, obj.Name, ns)
		}
	}
}

func TestDeploySPIREExamples(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/spire/clusterspiffeid-azure.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := chart.Decode(raw)
	if err != nil || len(objs) != 1 || objs[0].Kind != "ClusterSPIFFEID" {
		t.Fatalf("%v %v", objs, err)
	}
	spec := (*objs[0].Value.(*map[string]any))["spec"].(map[string]any)
	if spec["jwtTtl"] != "1h" {
		t.Errorf("jwtTtl %v: the token-file sidecar wants SVIDs of an hour", spec["jwtTtl"])
	}
	// values-spire.yaml sets only what SPIRE's server chart reads
	// (charts/spire/charts/spire-server/values.yaml at 8a28a1b): it has no
	// jwtKeyType, and a value it does not define is silently ignored.
	var values struct {
		Global struct {
			Spire struct{ TrustDomain, JWTIssuer string } `json:"spire"`
		} `json:"global"`
		Server map[string]any `json:"spire-server"`
	}
	raw, err = os.ReadFile("../../deploy/spire/values-spire.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	for k := range values.Server {
		if k != "caKeyType" && k != "defaultJwtSvidTTL" {
			t.Errorf("values-spire.yaml sets spire-server.%s, which SPIRE's chart does not define", k)
		}
	}
	if values.Server["caKeyType"] != "rsa-2048" || values.Global.Spire.JWTIssuer != "https://oidc.contoso.example" {
		t.Errorf("values-spire.yaml: %+v", values)
	}
	conf, err := os.ReadFile("../../deploy/spire/server.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`jwt_key_type = "rsa-2048"`, `jwt_issuer = "https://oidc.contoso.example"`} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("server.conf lacks %s", want)
		}
	}
}
