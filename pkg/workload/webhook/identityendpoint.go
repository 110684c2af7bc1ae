package webhook

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"

	corev1 "k8s.io/api/core/v1"
)

// The managed-identity endpoint (App Service's protocol, api-version
// 2019-08-01) that the sidecar serves on loopback with
// `token --identity-endpoint`, for SDKs without WorkloadIdentityCredential.
const (
	envIdentityEndpoint = "IDENTITY_ENDPOINT"
	envIdentityHeader   = "IDENTITY_HEADER"
	identityPath        = "/msi/token"
)

// identityEndpointEnv is IDENTITY_ENDPOINT and IDENTITY_HEADER for the
// application. The header is a per-pod random value: the endpoint refuses a
// request without it, so that a server-side request forgery in the
// application cannot fetch tokens. Anyone who may read the pod may read it,
// as on App Service anyone who may read the process environment.
func (c *Injection) identityEndpointEnv(header string) []corev1.EnvVar {
	return []corev1.EnvVar{
		{Name: envIdentityEndpoint, Value: "http://127.0.0.1:" + strconv.Itoa(int(c.Sidecar.IdentityEndpointPort)) + identityPath},
		{Name: envIdentityHeader, Value: header},
	}
}

// identityEndpointArgs are the sidecar's flags for the endpoint; the header
// reaches it through its environment, not its command line.
func (c *Injection) identityEndpointArgs(id identity) []string {
	args := []string{"--identity-endpoint", "127.0.0.1:" + strconv.Itoa(int(c.Sidecar.IdentityEndpointPort))}
	if id.clientID != "" {
		args = append(args, "--client-id", id.clientID)
	}
	if id.tenantID != "" {
		args = append(args, "--tenant", id.tenantID)
	}
	if id.authorityHost != "" {
		args = append(args, "--authority-host", id.authorityHost)
	}
	return args
}

// identityHeader is the header the pod's sidecar already has (a
// reinvocation adds it to a container another webhook added), or a new one.
func identityHeader(pod *corev1.Pod) string {
	for _, ct := range pod.Spec.InitContainers {
		if ct.Name != SidecarName {
			continue
		}
		for _, e := range ct.Env {
			if e.Name == envIdentityHeader {
				return e.Value
			}
		}
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
