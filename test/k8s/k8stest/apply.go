package k8stest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// FieldManager is the field manager of what Apply applies.
const FieldManager = "k8stest"

// Apply applies every object of a YAML stream with server-side apply, as
// `kubectl apply --server-side` does; objects of a namespaced kind with no
// namespace go into ns. With dryRun the server validates, defaults and
// admits each object but stores nothing (`--dry-run=server`). It returns
// the objects as the server answered.
func (c *Cluster) Apply(ctx context.Context, manifest []byte, ns string, dryRun bool) ([]*unstructured.Unstructured, error) {
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		return nil, err
	}
	// A fresh mapper each time: the kinds of CRDs applied a moment ago count.
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(c.Client.Discovery()))
	opts := metav1.PatchOptions{FieldManager: FieldManager, Force: ptr(true)}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifest), 4096)
	var out []*unstructured.Unstructured
	for {
		var obj unstructured.Unstructured
		if err := dec.Decode(&obj.Object); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return out, err
		}
		if len(obj.Object) == 0 {
			continue
		}
		gvk := obj.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return out, fmt.Errorf("%s %s: %w", gvk.Kind, obj.GetName(), err)
		}
		var r dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			if obj.GetNamespace() == "" {
				obj.SetNamespace(ns)
			}
			r = dyn.Resource(m.Resource).Namespace(obj.GetNamespace())
		}
		data, err := json.Marshal(obj.Object)
		if err != nil {
			return out, err
		}
		got, err := r.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, opts)
		if err != nil {
			return out, fmt.Errorf("%s %s: %w", gvk.Kind, obj.GetName(), err)
		}
		out = append(out, got)
	}
}

func ptr[T any](v T) *T { return &v }

// ModuleFile reads path inside the Go module module@version, downloaded
// through the module proxy into the module cache (`go mod download`): the
// way to take a project's own CRDs at a pinned version.
func ModuleFile(t testing.TB, module, version, path string) []byte {
	t.Helper()
	out, err := exec.Command("go", "mod", "download", "-json", module+"@"+version).Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); jerr != nil || err != nil || info.Error != "" {
		t.Fatalf("go mod download %s@%s: %v %s", module, version, err, info.Error)
	}
	b, err := os.ReadFile(filepath.Join(info.Dir, path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// InstallCRDs applies CustomResourceDefinitions and waits until the server
// serves their kinds.
func (c *Cluster) InstallCRDs(t testing.TB, manifests ...[]byte) {
	t.Helper()
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range manifests {
		objs, err := c.Apply(context.Background(), m, "", false)
		if err != nil {
			t.Fatalf("CRDs: %v", err)
		}
		for _, o := range objs {
			name := o.GetName()
			c.eventually(t, "CRD "+name+" to be established", 30*time.Second, func(ctx context.Context) error {
				crd, err := dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
				for _, cond := range conds {
					if m, _ := cond.(map[string]any); m["type"] == "Established" && m["status"] == "True" {
						return nil
					}
				}
				return apierrors.NewNotFound(crdGVR.GroupResource(), name+" (not established)")
			})
		}
	}
}
