package webhook

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	jsonpatch "github.com/evanphx/json-patch"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
)

// FuzzMutate: whatever pod arrives, the patch applies to the pod's own JSON,
// only adds, and a second admission of the result adds nothing.
func FuzzMutate(f *testing.F) {
	for _, seed := range []string{
		`{"metadata":{"annotations":{"` + AnnotationClientID + `":"c","` + AnnotationTenantID + `":"t"}},"spec":{"containers":[{"name":"app"}]}}`,
		`{"metadata":{"annotations":{"` + AnnotationClientID + `":"c","` + AnnotationTenantID + `":"t","` + AnnotationIdentityEndpoint + `":"true","` + AnnotationSkipContainers + `":"b"}},
		  "spec":{"initContainers":[{"name":"i","env":[{"name":"AZURE_CLIENT_ID","value":"x"}]}],"containers":[{"name":"a","volumeMounts":[{"name":"v","mountPath":"` + TokenDir + `"}]},{"name":"b"}],
		  "volumes":[{"name":"` + TokenVolume + `","emptyDir":{}}]}}`,
		`{"spec":{"containers":[{"name":"` + SidecarName + `"}],"initContainers":[]}}`,
	} {
		f.Add([]byte(seed))
	}
	c := &Injection{Sidecar: Sidecar{Image: "i"}, AllowMissingClientID: true}
	if err := c.setDefaults(); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var pod corev1.Pod
		if json.Unmarshal(raw, &pod) != nil {
			return
		}
		ops, err := c.Mutate(&pod, nil)
		if err != nil {
			return // a refusal
		}
		for _, op := range ops {
			if op.Op != "add" {
				t.Fatalf("operation %s", op.Op)
			}
		}
		p, err := jsonpatch.DecodePatch(mustJSON(ops))
		if err != nil {
			t.Fatal(err)
		}
		// The API server applies the patch to the object it sent, as JSON.
		sent, _ := json.Marshal(&pod)
		out, err := p.Apply(sent)
		if err != nil {
			t.Fatalf("the patch does not apply: %v\n%s\n%s", err, sent, mustJSON(ops))
		}
		var got corev1.Pod
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		if again, err := c.Mutate(&got, nil); err != nil || len(again) != 0 {
			t.Fatalf("second admission: %v %s", err, mustJSON(again))
		}
	})
}

// FuzzHandler: any body gets a 4xx or an AdmissionReview answer, never a
// panic or a 5xx.
func FuzzHandler(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod","version":"v1"},"operation":"CREATE","namespace":"a","object":{"metadata":{"labels":{"` + LabelUse + `":"true"}}}}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod","version":"v1"},"operation":"CREATE","object":null}}`))
	h := &Handler{Injection: &Injection{Sidecar: Sidecar{Image: "i"}}, Skip: []string{"kube-system"}, Logger: slog.New(slog.DiscardHandler)}
	if err := h.Injection.setDefaults(); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%d for %q", w.Code, body)
		}
		if w.Code == http.StatusOK {
			var out admissionv1.AdmissionReview
			if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Response == nil {
				t.Fatalf("answer %s: %v", w.Body, err)
			}
		}
	})
}
