package webhook

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/workload/identityendpoint"
)

// The managed-identity endpoint (pkg/workload/identityendpoint) that the
// sidecar serves on loopback with `token --identity-endpoint`, for SDKs
// without WorkloadIdentityCredential and for az.

// envIdentityHeader carries the endpoint's secret, to the sidecar (which
// reads it from its environment rather than its command line, where every
// process of the node could see it) and to the application.
const envIdentityHeader = "IDENTITY_HEADER"

// identityEndpointEnv is the environment pointing the application's clients
// at the sidecar's endpoint. The header is a per-pod random value: the
// endpoint refuses App Service requests without it, so that a server-side
// request forgery in the application cannot fetch tokens. Anyone who may
// read the pod may read it, as on App Service anyone who may read the
// process environment.
func (c *Injection) identityEndpointEnv(header string) []corev1.EnvVar {
	var out []corev1.EnvVar
	for _, kv := range identityendpoint.Env("http://"+c.identityEndpointAddr(), header) {
		out = append(out, corev1.EnvVar{Name: kv[0], Value: kv[1]})
	}
	return out
}

// identityEndpointAddr is where the sidecar serves the endpoint: the pod's
// loopback, which only the pod's containers reach.
func (c *Injection) identityEndpointAddr() string {
	return "127.0.0.1:" + strconv.Itoa(int(c.Sidecar.IdentityEndpointPort))
}

// identityEndpointArgs are the sidecar's flags for the endpoint; the header
// reaches it through its environment, not its command line.
func (c *Injection) identityEndpointArgs(id identity) []string {
	args := []string{"--identity-endpoint", c.identityEndpointAddr(),
		"--client-id", id.clientID, "--tenant", id.tenantID}
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
