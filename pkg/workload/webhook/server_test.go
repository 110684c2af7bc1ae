package webhook

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "webhook.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadConfig(t *testing.T) {
	c, err := LoadConfig(writeConfig(t, `
namespace: spire-system
tls:
  selfManaged:
    webhookConfiguration: seg
    dnsNames: [seg-webhook.spire-system.svc]
injection:
  sidecar:
    image: example.org/seg:1
    resources:
      limits: {memory: 32Mi}
  workloadAPI: {mode: hostPath, hostPath: /run/spire/agent-sockets}
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.ListenAddr != ":9443" || c.HealthAddr != ":8008" || c.TLS.SelfManaged.Validity.Duration != 7*24*time.Hour ||
		c.ExcludedNamespaces[0] != "kube-system" || c.Injection.Sidecar.Resources.Limits.Memory().String() != "32Mi" ||
		c.Injection.WorkloadAPI.SocketName != "spire-agent.sock" {
		t.Errorf("defaults: %+v", c)
	}
	// Every problem at once, each under its key path.
	_, err = LoadConfig(writeConfig(t, "namespace: a\ntls: {certFile: a, keyFile: b}\ninjection: {sidecar: {image: i, imagePullPolicy: 3, resources: {limits: {memory: lots}}}, defaults: {tenantId: t}}"))
	for _, want := range []string{"injection.defaults.tenantId", "tenantID", "injection.sidecar.resources.limits.memory"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
	for name, body := range map[string]string{
		"unknown key":  "namespace: a\nnamspace: b\ntls: {certFile: a, keyFile: b}\ninjection: {sidecar: {image: i}}",
		"no namespace": "tls: {certFile: a, keyFile: b}\ninjection: {sidecar: {image: i}}",
		"two tls":      "namespace: a\ntls: {certFile: a, keyFile: b, selfManaged: {webhookConfiguration: w, dnsNames: [x]}}\ninjection: {sidecar: {image: i}}",
		"no tls":       "namespace: a\ninjection: {sidecar: {image: i}}",
		"half a pair":  "namespace: a\ntls: {certFile: a}\ninjection: {sidecar: {image: i}}",
		"no names":     "namespace: a\ntls: {selfManaged: {webhookConfiguration: w}}\ninjection: {sidecar: {image: i}}",
		"bad ip":       "namespace: a\ntls: {selfManaged: {webhookConfiguration: w, ipAddresses: [localhost]}}\ninjection: {sidecar: {image: i}}",
		"short":        "namespace: a\ntls: {selfManaged: {webhookConfiguration: w, dnsNames: [x], validity: 1s}}\ninjection: {sidecar: {image: i}}",
		"no image":     "namespace: a\ntls: {certFile: a, keyFile: b}",
	} {
		t.Setenv("POD_NAMESPACE", "")
		if _, err := LoadConfig(writeConfig(t, body)); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.Contains(err.Error(), "webhook.yaml") {
			t.Errorf("%s: %v does not name the file", name, err)
		}
	}
}
