package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/metrics"
)

func testHandler(t *testing.T, logs *bytes.Buffer) *Handler {
	return &Handler{
		Injection: testInjection(t),
		Skip:      []string{"spire-system", "kube-system"},
		ServiceAccount: func(_ context.Context, ns, name string) (*corev1.ServiceAccount, error) {
			if name == "broken" {
				return nil, errors.New("connection refused")
			}
			return nil, nil
		},
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	}
}

func review(t *testing.T, h http.Handler, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	t.Helper()
	body := mustJSON(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  req,
	})
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Response == nil {
		t.Fatalf("answer %s: %v", w.Body, err)
	}
	if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || out.Response.UID != req.UID {
		t.Errorf("answer %s does not echo the review", w.Body)
	}
	return out.Response
}

func podRequest(ns string, pod *corev1.Pod) *admissionv1.AdmissionRequest {
	return &admissionv1.AdmissionRequest{
		UID: types.UID("uid-" + ns), Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, Namespace: ns,
		Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: mustJSON(pod)},
	}
}

func TestHandlerDecisions(t *testing.T) {
	var logs bytes.Buffer
	h := testHandler(t, &logs)
	app := corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}

	m := metrics.New()
	h.Metrics = m
	resp := review(t, h, podRequest("apps", optedIn(app)))
	if !resp.Allowed || resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch || len(resp.Patch) == 0 {
		t.Fatalf("opted-in pod: %+v", resp)
	}
	var ops []Operation
	if err := json.Unmarshal(resp.Patch, &ops); err != nil || len(ops) == 0 {
		t.Fatalf("patch %s: %v", resp.Patch, err)
	}

	for name, req := range map[string]*admissionv1.AdmissionRequest{
		"own namespace": podRequest("spire-system", optedIn(app)),
		"kube-system":   podRequest("kube-system", optedIn(app)),
		"no label":      podRequest("apps", &corev1.Pod{Spec: app}),
		"label false":   podRequest("apps", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{LabelUse: "false"}}, Spec: app}),
	} {
		if resp := review(t, h, req); !resp.Allowed || resp.Patch != nil {
			t.Errorf("%s: %+v", name, resp)
		}
	}
	update := podRequest("apps", optedIn(app))
	update.Operation = admissionv1.Update
	if resp := review(t, h, update); !resp.Allowed || resp.Patch != nil {
		t.Errorf("update: %+v", resp)
	}
	binding := podRequest("apps", optedIn(app))
	binding.SubResource = "binding"
	if resp := review(t, h, binding); !resp.Allowed || resp.Patch != nil {
		t.Errorf("subresource: %+v", resp)
	}

	noClient := optedIn(app)
	delete(noClient.Annotations, AnnotationClientID)
	resp = review(t, h, podRequest("apps", noClient))
	if resp.Allowed || resp.Result == nil || resp.Result.Code != 403 || !strings.Contains(resp.Result.Message, AnnotationClientID) {
		t.Errorf("no client id: %+v", resp)
	}

	broken := optedIn(app)
	broken.Spec.ServiceAccountName = "broken"
	resp = review(t, h, podRequest("apps", broken))
	if resp.Allowed || resp.Result.Code != 500 || !strings.Contains(resp.Result.Message, "ServiceAccount") {
		t.Errorf("ServiceAccount lookup failed: %+v", resp)
	}

	bad := podRequest("apps", nil)
	bad.Object.Raw = []byte(`{"spec":{"containers":"no"}}`)
	if resp := review(t, h, bad); resp.Allowed || resp.Result.Code != 400 {
		t.Errorf("undecodable pod: %+v", resp)
	}
	var scrape strings.Builder
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	scrape.Write(w.Body.Bytes())
	for decision, n := range map[string]int{"mutated": 1, "ignored": 6, "refused": 1, "failed": 2} {
		if line := fmt.Sprintf("gateway_webhook_admissions_total{decision=%q} %d\n", decision, n); !strings.Contains(scrape.String(), line) {
			t.Errorf("metrics lack %q", line)
		}
	}
	if strings.Contains(logs.String(), "AZURE_") || strings.Contains(logs.String(), TokenFile) {
		t.Errorf("the log holds the patch:\n%s", logs.String())
	}
}

func TestHandlerRefusesWhatIsNotAReview(t *testing.T) {
	h := testHandler(t, &bytes.Buffer{})
	for _, tc := range []struct {
		method, ctype, body string
		want                int
	}{
		{http.MethodGet, "", "", http.StatusMethodNotAllowed},
		{http.MethodPost, "text/plain", "{}", http.StatusUnsupportedMediaType},
		{http.MethodPost, "application/json", "{", http.StatusBadRequest},
		{http.MethodPost, "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, http.StatusBadRequest},
		{http.MethodPost, "application/json", `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}`, http.StatusBadRequest},
		{http.MethodPost, "application/json", `{"request":{"object":"` + strings.Repeat("a", maxReview) + `"}}`, http.StatusRequestEntityTooLarge},
	} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(tc.method, "/mutate", strings.NewReader(tc.body))
		r.Header.Set("Content-Type", tc.ctype)
		h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("%s %s %.40q: %d, want %d", tc.method, tc.ctype, tc.body, w.Code, tc.want)
		}
	}
}
