package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Kube is the webhook's client of the Kubernetes API: it reads
// ServiceAccounts (for their annotations) and patches the caBundle of its own
// MutatingWebhookConfiguration, nothing else, which is all its RBAC allows.
// client-go's rest package handles the credentials (the projected
// service-account token is read again as the kubelet renews it) and TLS.
type Kube struct {
	host   string
	client *http.Client
}

// NewKube connects with the kubeconfig file at path, or in-cluster when path
// is empty.
func NewKube(path string) (*Kube, error) {
	var cfg *rest.Config
	var err error
	if path == "" {
		cfg, err = rest.InClusterConfig()
	} else {
		cfg, err = clientcmd.BuildConfigFromFlags("", path)
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &Kube{host: strings.TrimSuffix(cfg.Host, "/"), client: client}, nil
}

// errNotFound is a 404 from the API server.
var errNotFound = errors.New("not found")

// maxAnswer bounds what the webhook reads of one answer: a ServiceAccount
// or its own MutatingWebhookConfiguration is a few KiB.
const maxAnswer = 4 << 20

// do sends one request and decodes a 2xx answer into out.
func (k *Kube) do(ctx context.Context, method, path, contentType string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, k.host+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return err
	}
	if len(data) > maxAnswer {
		return fmt.Errorf("kubernetes API: %s %s answered more than %d bytes", method, path, maxAnswer)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return errNotFound
	case resp.StatusCode/100 != 2:
		var status struct{ Message string }
		_ = json.Unmarshal(data, &status)
		return &kubeError{Code: resp.StatusCode, Message: status.Message}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

// kubeError is a refusal from the API server.
type kubeError struct {
	Code    int
	Message string
}

func (e *kubeError) Error() string { return fmt.Sprintf("kubernetes API: %d %s", e.Code, e.Message) }

// ServiceAccount returns the ServiceAccount ns/name, or nil when there is
// none.
func (k *Kube) ServiceAccount(ctx context.Context, ns, name string) (*corev1.ServiceAccount, error) {
	var sa corev1.ServiceAccount
	err := k.do(ctx, http.MethodGet, "/api/v1/namespaces/"+url.PathEscape(ns)+"/serviceaccounts/"+url.PathEscape(name), "", nil, &sa)
	if errors.Is(err, errNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ServiceAccount %s/%s: %w", ns, name, err)
	}
	return &sa, nil
}

const webhookConfigPath = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/"

func (k *Kube) webhookConfiguration(ctx context.Context, name string) (*admissionregistrationv1.MutatingWebhookConfiguration, error) {
	var c admissionregistrationv1.MutatingWebhookConfiguration
	if err := k.do(ctx, http.MethodGet, webhookConfigPath+url.PathEscape(name), "", nil, &c); err != nil {
		return nil, fmt.Errorf("MutatingWebhookConfiguration %s: %w", name, err)
	}
	return &c, nil
}

// setCABundle sets every webhook's caBundle of the configuration as it was
// at resourceVersion: the patch's test fails, and nothing changes, when
// another replica or Helm wrote it since.
func (k *Kube) setCABundle(ctx context.Context, c *admissionregistrationv1.MutatingWebhookConfiguration, bundle []byte) error {
	ops := []Operation{{Op: "test", Path: "/metadata/resourceVersion", Value: c.ResourceVersion}}
	for i, w := range c.Webhooks {
		ops = append(ops,
			Operation{Op: "test", Path: fmt.Sprintf("/webhooks/%d/name", i), Value: w.Name},
			Operation{Op: "add", Path: fmt.Sprintf("/webhooks/%d/clientConfig/caBundle", i), Value: bundle})
	}
	body, err := json.Marshal(ops)
	if err != nil {
		return err
	}
	if err := k.do(ctx, http.MethodPatch, webhookConfigPath+url.PathEscape(c.Name), "application/json-patch+json", body, nil); err != nil {
		return fmt.Errorf("MutatingWebhookConfiguration %s: %w", c.Name, err)
	}
	return nil
}
