// Package chart renders the Helm chart with the Helm SDK and the kustomize
// manifests with kustomize's API, and decodes every object strictly into
// its Kubernetes type, for the tests of charts/ and deploy/.
package chart

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// Object is one rendered object: its kind, name and the decoded value (a
// k8s.io/api type, or map[string]any for custom resources).
type Object struct {
	Kind, Name string
	Value      any
}

// Rendered is a chart or kustomization's output.
type Rendered struct {
	Objects []Object
	Notes   string
}

// Find returns the object of kind whose name ends with suffix.
func (r Rendered) Find(kind, suffix string) (Object, bool) {
	for _, o := range r.Objects {
		if o.Kind == kind && strings.HasSuffix(o.Name, suffix) {
			return o, true
		}
	}
	return Object{}, false
}

// Namespace is the object's metadata.namespace: empty for cluster-scoped
// kinds, and for namespaced ones unless the chart sets it.
func (o Object) Namespace() string {
	b, _ := json.Marshal(o.Value)
	var v struct {
		Metadata struct{ Namespace string } `json:"metadata"`
	}
	_ = json.Unmarshal(b, &v)
	return v.Metadata.Namespace
}

// Kinds counts the objects by kind.
func (r Rendered) Kinds() map[string]int {
	out := map[string]int{}
	for _, o := range r.Objects {
		out[o.Kind]++
	}
	return out
}

// Namespace is the namespace charts are rendered into.
const Namespace = "spire-system"

// Render renders the chart at dir as release "gw" with values, as `helm
// install --dry-run` does, values schema included.
func Render(dir string, values map[string]any) (Rendered, error) {
	r, _, err := render(dir, "gw", values, nil)
	return r, err
}

// RenderRelease is Render for a release name that also returns the
// manifest (without hooks) as Helm wrote it.
func RenderRelease(dir, release string, values map[string]any) (Rendered, string, error) {
	return render(dir, release, values, nil)
}

// RenderWithAPIs is Render on a cluster that also serves apiVersions (such
// as cert-manager.io/v1), for templates that look at .Capabilities.
func RenderWithAPIs(dir string, values map[string]any, apiVersions ...string) (Rendered, error) {
	r, _, err := render(dir, "gw", values, apiVersions)
	return r, err
}

func render(dir, release string, values map[string]any, apiVersions []string) (Rendered, string, error) {
	ch, err := loader.Load(dir)
	if err != nil {
		return Rendered{}, "", err
	}
	cfg := &action.Configuration{
		Releases:     storage.Init(driver.NewMemory()),
		KubeClient:   &fake.PrintingKubeClient{Out: &bytes.Buffer{}},
		Capabilities: chartutil.DefaultCapabilities,
	}
	install := action.NewInstall(cfg)
	install.ReleaseName, install.Namespace = release, Namespace
	install.DryRun, install.ClientOnly, install.Replace = true, true, true
	// A client-only install starts from Helm's default capabilities plus
	// these.
	install.APIVersions = apiVersions
	rel, err := install.Run(ch, values)
	if err != nil {
		return Rendered{}, "", err
	}
	manifest := rel.Manifest
	for _, h := range rel.Hooks {
		manifest += "\n---\n" + h.Manifest
	}
	objs, err := Decode([]byte(manifest))
	if err != nil {
		return Rendered{}, "", err
	}
	return Rendered{Objects: objs, Notes: rel.Info.Notes}, rel.Manifest, nil
}

// Kustomize builds the kustomization at dir.
func Kustomize(dir string) (Rendered, error) {
	out, err := KustomizeYAML(dir)
	if err != nil {
		return Rendered{}, err
	}
	objs, err := Decode(out)
	return Rendered{Objects: objs}, err
}

// KustomizeYAML builds the kustomization at dir into the YAML stream
// `kustomize build` prints.
func KustomizeYAML(dir string) ([]byte, error) {
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, err
	}
	return res.AsYaml()
}

// types are the kinds decoded into k8s.io/api types.
var types = map[string]func() any{
	"apps/v1/Deployment":                              func() any { return &appsv1.Deployment{} },
	"v1/Service":                                      func() any { return &corev1.Service{} },
	"v1/ConfigMap":                                    func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                                       func() any { return &corev1.Secret{} },
	"v1/ServiceAccount":                               func() any { return &corev1.ServiceAccount{} },
	"v1/PersistentVolumeClaim":                        func() any { return &corev1.PersistentVolumeClaim{} },
	"v1/Pod":                                          func() any { return &corev1.Pod{} },
	"v1/Namespace":                                    func() any { return &corev1.Namespace{} },
	"networking.k8s.io/v1/Ingress":                    func() any { return &networkingv1.Ingress{} },
	"networking.k8s.io/v1/NetworkPolicy":              func() any { return &networkingv1.NetworkPolicy{} },
	"policy/v1/PodDisruptionBudget":                   func() any { return &policyv1.PodDisruptionBudget{} },
	"autoscaling/v2/HorizontalPodAutoscaler":          func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"rbac.authorization.k8s.io/v1/ClusterRole":        func() any { return &rbacv1.ClusterRole{} },
	"rbac.authorization.k8s.io/v1/ClusterRoleBinding": func() any { return &rbacv1.ClusterRoleBinding{} },
	"admissionregistration.k8s.io/v1/MutatingWebhookConfiguration": func() any {
		return &admissionregistrationv1.MutatingWebhookConfiguration{}
	},
}

// customKinds are the custom resources the chart may render; they are
// decoded as maps, with no duplicate keys.
var customKinds = map[string]bool{
	"cert-manager.io/v1/Certificate":           true,
	"cert-manager.io/v1/Issuer":                true,
	"spire.spiffe.io/v1alpha1/ClusterSPIFFEID": true,
	"gateway.networking.k8s.io/v1/HTTPRoute":   true,
	"monitoring.coreos.com/v1/ServiceMonitor":  true,
}

// Decode splits a multi-document YAML stream and decodes each object
// strictly: an unknown or duplicate field is an error, and so is a kind
// the chart is not expected to render.
func Decode(stream []byte) ([]Object, error) {
	var out []Object
	for _, doc := range strings.Split("\n"+string(stream), "\n---") {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			return nil, fmt.Errorf("%w in:\n%s", err, doc)
		}
		key := head.APIVersion + "/" + head.Kind
		var v any
		if newT, ok := types[key]; ok {
			v = newT()
		} else if customKinds[key] {
			v = &map[string]any{}
		} else {
			return nil, fmt.Errorf("unexpected kind %s (%s)", key, head.Metadata.Name)
		}
		if err := yaml.UnmarshalStrict([]byte(doc+"\n"), v); err != nil {
			return nil, fmt.Errorf("%s %s: %w", key, head.Metadata.Name, err)
		}
		out = append(out, Object{Kind: head.Kind, Name: head.Metadata.Name, Value: v})
	}
	return out, nil
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// Lint returns the warnings and errors `helm lint --strict` fails on.
func Lint(dir string) []string {
	var out []string
	for _, m := range lint.All(dir, nil, Namespace, true).Messages {
		if m.Severity >= support.WarningSev {
			out = append(out, m.Error())
		}
	}
	return out
}
