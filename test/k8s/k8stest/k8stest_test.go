package k8stest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/k8s/k8stest"
)

// TestControlPlane checks what the harness promises other tests: PodSecurity
// judges pods in a labelled namespace, and an admission webhook on a
// loopback URL is called.
func TestControlPlane(t *testing.T) {
	c := k8stest.Start(t)
	ctx := context.Background()
	c.Namespace(t, "restricted", map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})

	pod := func(name string, labels map[string]string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.org/c"}}},
		}
	}
	_, err := c.Client.CoreV1().Pods("restricted").Create(ctx, pod("loose", nil), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "violates PodSecurity") {
		t.Fatalf("a pod with no security context in a restricted namespace: %v", err)
	}

	called := make(chan string, 10)
	url, ca := c.WebhookServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		called <- review.Request.Name
		review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: false,
			Result: &metav1.Status{Message: "refused by the test webhook"}}
		json.NewEncoder(w).Encode(review)
	}))
	fail, none := admissionregistrationv1.Fail, admissionregistrationv1.SideEffectClassNone
	hook := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "k8stest"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    "refuse.k8stest.example.org",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: ca},
			Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create}, Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}},
			ObjectSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{"k8stest": "refuse"}},
			FailurePolicy:           &fail,
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
	if _, err := c.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, hook, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.Namespace(t, "open", nil)
	// The API server picks the configuration up asynchronously.
	c.Eventually(t, "the webhook to refuse a pod", 30*time.Second, func(ctx context.Context) error {
		_, err := c.Client.CoreV1().Pods("open").Create(ctx, pod("judged", map[string]string{"k8stest": "refuse"}), metav1.CreateOptions{})
		if err == nil {
			c.Client.CoreV1().Pods("open").Delete(ctx, "judged", metav1.DeleteOptions{})
			return fmt.Errorf("admitted")
		}
		if !strings.Contains(err.Error(), "refused by the test webhook") {
			return err
		}
		return nil
	})
	if name := <-called; name != "judged" {
		t.Errorf("the webhook saw %q", name)
	}
	if _, err := c.Client.CoreV1().Pods("open").Create(ctx, pod("unjudged", nil), metav1.CreateOptions{}); err != nil {
		t.Errorf("a pod the webhook does not select: %v", err)
	}
}
