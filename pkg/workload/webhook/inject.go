// Package webhook is the mutating admission webhook that gives opted-in pods
// their Azure identity without a manifest edit: the token-file sidecar, the
// Workload API volume, a shared token directory and the AZURE_* variables
// every Azure SDK's WorkloadIdentityCredential reads.
//
// Every change is an addition expressed as a JSON patch computed from the pod
// as it arrived, never a replacement of a whole list: fields this build's
// k8s.io/api types do not know (an API server newer than the webhook) survive,
// and an element the pod already has under the same name is the pod's own
// choice and is kept. A second admission of a mutated pod yields no operation.
package webhook

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// The label and annotations a pod or its ServiceAccount carry. They are
// distinct from Azure Workload Identity's azure.workload.identity/* so that
// both webhooks can run in one cluster.
const (
	// LabelUse opts a pod in with the value "true". The webhook's
	// objectSelector matches it, so other pods never reach the webhook.
	LabelUse = "spiffe-entra-gateway.io/use"
	// AnnotationClientID is the client id of the app registration or managed
	// identity (AZURE_CLIENT_ID). Required unless allowMissingClientID.
	AnnotationClientID = "spiffe-entra-gateway.io/client-id"
	// AnnotationTenantID is the tenant id (AZURE_TENANT_ID); the configured
	// default applies when neither the pod nor its ServiceAccount sets it.
	AnnotationTenantID = "spiffe-entra-gateway.io/tenant-id"
	// AnnotationAuthorityHost is AZURE_AUTHORITY_HOST, such as the gateway's
	// own Entra endpoint; absent, the SDKs use Entra.
	AnnotationAuthorityHost = "spiffe-entra-gateway.io/authority-host"
	// AnnotationAudience is the JWT-SVID audience the sidecar asks for;
	// absent, api://AzureADTokenExchange.
	AnnotationAudience = "spiffe-entra-gateway.io/audience"
	// AnnotationIdentityEndpoint "true" also starts the sidecar's
	// managed-identity endpoint and sets IDENTITY_ENDPOINT and
	// IDENTITY_HEADER, for SDKs without WorkloadIdentityCredential.
	AnnotationIdentityEndpoint = "spiffe-entra-gateway.io/identity-endpoint"
	// AnnotationSkipContainers lists (comma-separated) containers that get
	// neither the variables nor the token mount.
	AnnotationSkipContainers = "spiffe-entra-gateway.io/skip-containers"
)

// The names and paths the webhook adds. Prefixed so that they cannot be
// mistaken for a pod's own.
const (
	// SidecarName is the token-file sidecar's container name.
	SidecarName = "spiffe-entra-gateway-token"
	// TokenVolume is the emptyDir the sidecar writes and the containers read.
	TokenVolume = "spiffe-entra-gateway-token"
	// WorkloadAPIVolume holds the SPIRE agent's socket, for the sidecar only.
	WorkloadAPIVolume = "spiffe-entra-gateway-workload-api"
	// TokenDir is where TokenVolume is mounted in every container.
	TokenDir = "/var/run/secrets/spiffe-entra-gateway"
	// TokenFile is AZURE_FEDERATED_TOKEN_FILE.
	TokenFile = TokenDir + "/token"
	// socketDir is where WorkloadAPIVolume is mounted in the sidecar.
	socketDir = "/spiffe-workload-api"
)

// Refusal is a pod the webhook refuses to admit, with the reason shown to
// whoever created it.
type Refusal struct{ Message string }

func (r *Refusal) Error() string { return r.Message }

// identity is what one pod asked for, from its annotations and its
// ServiceAccount's, the pod's winning.
type identity struct {
	clientID, tenantID, authorityHost, audience string
	identityEndpoint                            bool
	identityHeader                              string
	skip                                        []string
}

func (c *Injection) identityOf(pod *corev1.Pod, sa *corev1.ServiceAccount) (identity, error) {
	if pod.Spec.HostNetwork {
		// The sidecar's ports would be the node's: taken by the next such
		// pod on the node, and reachable by every process there.
		return identity{}, &Refusal{Message: fmt.Sprintf("pod opts in with %s=true but uses hostNetwork: the token sidecar's ports would be the node's; remove the label or hostNetwork", LabelUse)}
	}
	get := func(key string) string {
		if v := strings.TrimSpace(pod.Annotations[key]); v != "" {
			return v
		}
		if sa != nil {
			return strings.TrimSpace(sa.Annotations[key])
		}
		return ""
	}
	id := identity{
		clientID:         get(AnnotationClientID),
		tenantID:         cmp.Or(get(AnnotationTenantID), c.Defaults.TenantID),
		authorityHost:    cmp.Or(get(AnnotationAuthorityHost), c.Defaults.AuthorityHost),
		audience:         cmp.Or(get(AnnotationAudience), c.Defaults.Audience),
		identityEndpoint: get(AnnotationIdentityEndpoint) == "true",
	}
	if id.identityEndpoint {
		id.identityHeader = identityHeader(pod)
	}
	for _, name := range strings.Split(get(AnnotationSkipContainers), ",") {
		if name = strings.TrimSpace(name); name != "" {
			id.skip = append(id.skip, name)
		}
	}
	// The managed-identity endpoint exchanges for a tenant and a default
	// client id: the sidecar does not start without them.
	if !c.AllowMissingClientID || id.identityEndpoint {
		sa := cmp.Or(pod.Spec.ServiceAccountName, "default")
		for _, need := range []struct{ value, annotation, what string }{
			{id.clientID, AnnotationClientID, "a client id"},
			{id.tenantID, AnnotationTenantID, "a tenant id"},
		} {
			if need.value == "" {
				return id, &Refusal{Message: fmt.Sprintf("pod opts in with %s=true but has no %s: set the annotation %s on the pod or on its ServiceAccount %q",
					LabelUse, need.what, need.annotation, sa)}
			}
		}
	}
	return id, nil
}

// env is the environment every container gets, in a fixed order; empty
// values are left out (the SDKs' defaults apply).
func (c *Injection) env(id identity) []corev1.EnvVar {
	var out []corev1.EnvVar
	add := func(name, value string) {
		if value != "" {
			out = append(out, corev1.EnvVar{Name: name, Value: value})
		}
	}
	add("AZURE_CLIENT_ID", id.clientID)
	add("AZURE_TENANT_ID", id.tenantID)
	add("AZURE_FEDERATED_TOKEN_FILE", TokenFile)
	add("AZURE_AUTHORITY_HOST", id.authorityHost)
	if id.identityEndpoint {
		out = append(out, c.identityEndpointEnv(id.identityHeader)...)
	}
	return out
}

// Mutate returns the JSON patch that gives pod its identity, empty when the
// pod already has everything, or a *Refusal. sa is the pod's ServiceAccount,
// nil when it does not exist (yet).
func (c *Injection) Mutate(pod *corev1.Pod, sa *corev1.ServiceAccount) ([]Operation, error) {
	id, err := c.identityOf(pod, sa)
	if err != nil {
		return nil, err
	}
	env := c.env(id)
	mount := corev1.VolumeMount{Name: TokenVolume, MountPath: TokenDir, ReadOnly: true}
	var ops []Operation
	// Init containers first, at their indices before the sidecar is
	// inserted in front of them.
	for i, ct := range pod.Spec.InitContainers {
		if ct.Name != SidecarName && !slices.Contains(id.skip, ct.Name) {
			ops = append(ops, containerOps(fmt.Sprintf("/spec/initContainers/%d", i), ct, env, mount)...)
		}
	}
	for i, ct := range pod.Spec.Containers {
		if ct.Name != SidecarName && !slices.Contains(id.skip, ct.Name) {
			ops = append(ops, containerOps(fmt.Sprintf("/spec/containers/%d", i), ct, env, mount)...)
		}
	}
	var volumes []any
	for _, v := range []corev1.Volume{
		{Name: TokenVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
		c.WorkloadAPI.volume(),
	} {
		if !slices.ContainsFunc(pod.Spec.Volumes, func(have corev1.Volume) bool { return have.Name == v.Name }) {
			volumes = append(volumes, v)
		}
	}
	ops = append(ops, appendOps("/spec/volumes", len(pod.Spec.Volumes), volumes)...)
	if !hasContainer(pod, SidecarName) {
		// First among the init containers: the kubelet starts the others, and
		// then the application, once its startup probe says the file is there.
		sidecar := c.sidecar(id)
		if len(pod.Spec.InitContainers) == 0 {
			ops = append(ops, Operation{Op: "add", Path: "/spec/initContainers", Value: []corev1.Container{sidecar}})
		} else {
			ops = append(ops, Operation{Op: "add", Path: "/spec/initContainers/0", Value: sidecar})
		}
	}
	return ops, nil
}

// containerOps adds to one container the variables it does not set itself
// and the token mount unless it mounts something at that path already.
func containerOps(path string, ct corev1.Container, env []corev1.EnvVar, mount corev1.VolumeMount) []Operation {
	var missing []any
	for _, e := range env {
		if !slices.ContainsFunc(ct.Env, func(have corev1.EnvVar) bool { return have.Name == e.Name }) {
			missing = append(missing, e)
		}
	}
	ops := appendOps(path+"/env", len(ct.Env), missing)
	if !slices.ContainsFunc(ct.VolumeMounts, func(have corev1.VolumeMount) bool {
		return have.Name == mount.Name || have.MountPath == mount.MountPath
	}) {
		ops = append(ops, appendOps(path+"/volumeMounts", len(ct.VolumeMounts), []any{mount})...)
	}
	return ops
}

// appendOps appends values to the list at path, creating it when the pod has
// none (JSON patch cannot append to a missing list).
func appendOps(path string, have int, values []any) []Operation {
	if len(values) == 0 {
		return nil
	}
	if have == 0 {
		return []Operation{{Op: "add", Path: path, Value: values}}
	}
	ops := make([]Operation, 0, len(values))
	for _, v := range values {
		ops = append(ops, Operation{Op: "add", Path: path + "/-", Value: v})
	}
	return ops
}

func hasContainer(pod *corev1.Pod, name string) bool {
	named := func(c corev1.Container) bool { return c.Name == name }
	return slices.ContainsFunc(pod.Spec.InitContainers, named) || slices.ContainsFunc(pod.Spec.Containers, named)
}

// Operation is one RFC 6902 JSON patch operation. The webhook only adds.
type Operation struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}
