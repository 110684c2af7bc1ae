package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/workload/webhook"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/loopback"
)

// TestWebhookSidecarRuns runs the sidecar exactly as the webhook writes it
// into a pod (with the identity endpoint), only the pod's paths and the
// Workload API moved to the test's, and calls Azure the way the
// application's clients would, from the variables the webhook gave them.
func TestWebhookSidecarRuns(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	ports := loopback.Ports(t, 2)
	healthPort, endpointPort := ports[0], ports[1]
	cfgFile := filepath.Join(dir, "webhook.yaml")
	if err := os.WriteFile(cfgFile, fmt.Appendf(nil, `namespace: spire-system
tls: {certFile: a, keyFile: b}
injection:
  sidecar: {image: example.org/seg:1, healthPort: %s, identityEndpointPort: %s}
`, healthPort, endpointPort), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := webhook.LoadConfig(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := cfg.Injection.Mutate(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{webhook.LabelUse: "true"}, Annotations: map[string]string{
			webhook.AnnotationClientID: c.info.ClientID, webhook.AnnotationTenantID: c.info.TenantID,
			webhook.AnnotationAuthorityHost: c.info.AuthorityHost, webhook.AnnotationIdentityEndpoint: "true",
		}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var sidecar corev1.Container
	appEnv := map[string]string{}
	for _, op := range ops {
		switch v := op.Value.(type) {
		case []corev1.Container:
			sidecar = v[0]
		case []any:
			for _, e := range v {
				if e, ok := e.(corev1.EnvVar); ok {
					appEnv[e.Name] = e.Value
				}
			}
		}
	}
	token := filepath.Join(dir, "token")
	var args []string
	for _, a := range sidecar.Args {
		switch {
		case a == webhook.TokenFile:
			a = token
		case strings.HasPrefix(a, "unix:///spiffe-workload-api/"):
			a = c.info.WorkloadSocket
		case a == ":"+healthPort:
			a = "127.0.0.1" + a
		}
		args = append(args, a)
	}
	var env []string
	for _, e := range sidecar.Env {
		env = append(env, e.Name+"="+e.Value)
	}
	stderr := c.start(env, args...)

	// The startup probe's request, until it passes.
	probe := sidecar.StartupProbe.HTTPGet
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", probe.Port.IntValue(), probe.Path))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the startup probe never passed: %v\n%s", err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if b, err := os.ReadFile(token); err != nil || strings.Count(string(b), ".") != 2 {
		t.Fatalf("token file: %v %q", err, b)
	}

	// An App Service client, from the application's variables.
	resource := strings.TrimSuffix(c.info.Scope, "/.default")
	req, _ := http.NewRequest("GET", appEnv["IDENTITY_ENDPOINT"]+"?api-version=2019-08-01&resource="+url.QueryEscape(resource), nil)
	req.Header.Set("X-IDENTITY-HEADER", appEnv["IDENTITY_HEADER"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || body["client_id"] != c.info.ClientID || strings.Count(body["access_token"], ".") != 2 {
		t.Fatalf("App Service request: %d %v\n%s", resp.StatusCode, body, stderr.String())
	}
	if strings.Contains(stderr.String(), appEnv["IDENTITY_HEADER"]) {
		t.Error("the sidecar logged the identity header")
	}
}
