package webhook

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// maxReview bounds an AdmissionReview's body: a pod is at most what etcd
// stores (1.5 MiB), and a review carries it once on CREATE.
const maxReview = 4 << 20

// Handler answers the API server's AdmissionReviews for pods.
type Handler struct {
	// Injection is what opted-in pods get.
	Injection *Injection
	// Skip lists the namespaces whose pods are never touched: the
	// webhook's own (its pods must start while it is down) and kube-system.
	// The namespaceSelector already keeps them away; this holds if the
	// configuration is edited.
	Skip []string
	// ServiceAccount returns a pod's ServiceAccount, nil when it does not
	// exist; nil looks up none.
	ServiceAccount func(ctx context.Context, ns, name string) (*corev1.ServiceAccount, error)
	// Logger records one line per opted-in pod, never its spec or the patch.
	Logger *slog.Logger
	// Metrics counts the decisions; nil counts none.
	Metrics Metrics
}

// Metrics counts the webhook's decisions on pods: mutated, unchanged
// (already had everything), refused (by the webhook's rules), failed (the
// pod or its ServiceAccount could not be read) and ignored (not an
// opted-in pod's creation, or an excluded namespace).
type Metrics interface {
	Admission(decision string)
}

// ServeHTTP decodes one AdmissionReview and answers it. A review it cannot
// read is a 400; every decision on a pod is an AdmissionReview response.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "admission reviews are POSTed", http.StatusMethodNotAllowed)
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		http.Error(w, "want Content-Type application/json", http.StatusUnsupportedMediaType)
		return
	}
	var review admissionv1.AdmissionReview
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxReview))
	if err := dec.Decode(&review); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "admission review too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "not an AdmissionReview: "+err.Error(), http.StatusBadRequest)
		return
	}
	if review.Request == nil || review.APIVersion != "admission.k8s.io/v1" || review.Kind != "AdmissionReview" {
		http.Error(w, "want an admission.k8s.io/v1 AdmissionReview with a request", http.StatusBadRequest)
		return
	}
	resp := h.review(r.Context(), review.Request)
	resp.UID = review.Request.UID
	out, _ := json.Marshal(admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp})
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

func (h *Handler) review(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	resp, decision := h.decide(ctx, req)
	if h.Metrics != nil {
		h.Metrics.Admission(decision)
	}
	return resp
}

func (h *Handler) decide(ctx context.Context, req *admissionv1.AdmissionRequest) (*admissionv1.AdmissionResponse, string) {
	allow := &admissionv1.AdmissionResponse{Allowed: true}
	if req.Kind.Group != "" || req.Kind.Kind != "Pod" || req.SubResource != "" || req.Operation != admissionv1.Create ||
		slices.Contains(h.Skip, req.Namespace) {
		return allow, "ignored"
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return deny(http.StatusBadRequest, "the pod does not decode: "+err.Error()), "failed"
	}
	if pod.Labels[LabelUse] != "true" {
		return allow, "ignored"
	}
	start := time.Now()
	name := pod.Name
	if name == "" {
		name = pod.GenerateName + "*"
	}
	log := h.Logger.With("namespace", req.Namespace, "pod", name, "service_account", pod.Spec.ServiceAccountName)
	var sa *corev1.ServiceAccount
	if h.ServiceAccount != nil {
		var err error
		if sa, err = h.ServiceAccount(ctx, req.Namespace, cmp.Or(pod.Spec.ServiceAccountName, "default")); err != nil {
			log.Error("pod refused: its ServiceAccount could not be read", "error", err)
			return deny(http.StatusInternalServerError, "spiffe-entra-gateway webhook: reading the pod's ServiceAccount for its annotations: "+err.Error()), "failed"
		}
	}
	ops, err := h.Injection.Mutate(&pod, sa)
	var refusal *Refusal
	if errors.As(err, &refusal) {
		log.Info("pod refused", "reason", refusal.Message)
		return deny(http.StatusForbidden, refusal.Message), "refused"
	}
	if err != nil {
		return deny(http.StatusInternalServerError, err.Error()), "failed"
	}
	log = log.With("operations", len(ops), "took", time.Since(start))
	if len(ops) == 0 {
		log.Info("pod already has its identity")
		return allow, "unchanged"
	}
	patch, err := json.Marshal(ops)
	if err != nil {
		return deny(http.StatusInternalServerError, err.Error()), "failed"
	}
	log.Info("pod given its identity")
	pt := admissionv1.PatchTypeJSONPatch
	allow.Patch, allow.PatchType = patch, &pt
	return allow, "mutated"
}

func deny(code int32, msg string) *admissionv1.AdmissionResponse {
	reason := map[int32]metav1.StatusReason{
		http.StatusForbidden:  metav1.StatusReasonForbidden,
		http.StatusBadRequest: metav1.StatusReasonBadRequest,
	}[code]
	if reason == "" {
		reason = metav1.StatusReasonInternalError
	}
	return &admissionv1.AdmissionResponse{Allowed: false, Result: &metav1.Status{Status: metav1.StatusFailure, Code: code, Reason: reason, Message: msg}}
}
