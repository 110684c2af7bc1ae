package webhook

import (
	"cmp"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Injection is what the webhook adds to a pod: the sidecar's image and
// settings, where the Workload API is, and the defaults for pods that do not
// say. The chart writes it from its webhook.* values.
type Injection struct {
	// Sidecar is the token-file sidecar.
	Sidecar Sidecar `json:"sidecar"`
	// WorkloadAPI is how the SPIRE agent's socket reaches the sidecar.
	WorkloadAPI WorkloadAPI `json:"workloadAPI"`
	// Defaults apply when neither the pod nor its ServiceAccount annotates.
	Defaults Defaults `json:"defaults"`
	// AllowMissingClientID admits an opted-in pod without a client id or
	// tenant id (the variables are then left out, for the pod to set).
	// Off, such a pod is refused with a message naming the annotation.
	AllowMissingClientID bool `json:"allowMissingClientID"`
}

// Defaults are cluster-wide values for pods that do not set their own.
type Defaults struct {
	TenantID      string `json:"tenantID"`
	AuthorityHost string `json:"authorityHost"`
	Audience      string `json:"audience"`
}

// Sidecar configures the token-file sidecar container.
type Sidecar struct {
	// Image runs `spiffe-entra-gateway token --write`.
	Image string `json:"image"`
	// ImagePullPolicy is the sidecar's pull policy (default IfNotPresent).
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy"`
	// HealthPort serves the sidecar's /livez and /readyz on the pod's
	// network; it must not collide with a port of the application.
	HealthPort int32 `json:"healthPort"`
	// IdentityEndpointPort is the loopback port of the managed-identity
	// endpoint, for pods annotated identity-endpoint: "true".
	IdentityEndpointPort int32 `json:"identityEndpointPort"`
	// Resources of the sidecar (default 10m CPU and 16Mi requested, 64Mi
	// limit).
	Resources *corev1.ResourceRequirements `json:"resources"`
	// SecurityContext of the sidecar (default: what PodSecurity restricted
	// requires, a read-only root and UID 65532).
	SecurityContext *corev1.SecurityContext `json:"securityContext"`
}

// WorkloadAPI is how the SPIRE agent's socket reaches the sidecar.
type WorkloadAPI struct {
	// Mode is csi (the SPIFFE CSI driver, admitted by PodSecurity
	// restricted) or hostPath (refused by restricted and baseline).
	Mode string `json:"mode"`
	// CSIDriver is the CSI driver's name (default csi.spiffe.io).
	CSIDriver string `json:"csiDriver"`
	// HostPath is the host directory holding the socket, for mode hostPath.
	HostPath string `json:"hostPath"`
	// SocketName is the socket's file name (default spire-agent.sock).
	SocketName string `json:"socketName"`
}

// setDefaults fills what was left empty and checks the rest.
func (c *Injection) setDefaults() error {
	s := &c.Sidecar
	if s.Image == "" {
		return fmt.Errorf("injection.sidecar.image is required: the image that runs spiffe-entra-gateway token --write")
	}
	if s.ImagePullPolicy == "" {
		s.ImagePullPolicy = corev1.PullIfNotPresent
	}
	if s.HealthPort == 0 {
		s.HealthPort = 18090
	}
	if s.IdentityEndpointPort == 0 {
		s.IdentityEndpointPort = 18091
	}
	for _, p := range []int32{s.HealthPort, s.IdentityEndpointPort} {
		if p < 1 || p > 65535 {
			return fmt.Errorf("injection.sidecar: port %d out of range", p)
		}
	}
	if s.HealthPort == s.IdentityEndpointPort {
		return fmt.Errorf("injection.sidecar: healthPort and identityEndpointPort are both %d", s.HealthPort)
	}
	if s.Resources == nil {
		s.Resources = &corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
		}
	}
	if s.SecurityContext == nil {
		no, yes, uid := false, true, int64(65532)
		s.SecurityContext = &corev1.SecurityContext{
			AllowPrivilegeEscalation: &no,
			ReadOnlyRootFilesystem:   &yes,
			RunAsNonRoot:             &yes,
			RunAsUser:                &uid,
			RunAsGroup:               &uid,
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		}
	}
	w := &c.WorkloadAPI
	w.Mode = cmp.Or(w.Mode, "csi")
	w.CSIDriver = cmp.Or(w.CSIDriver, "csi.spiffe.io")
	w.SocketName = cmp.Or(w.SocketName, "spire-agent.sock")
	switch {
	case w.Mode == "hostPath" && w.HostPath == "":
		return fmt.Errorf("injection.workloadAPI.hostPath is required with mode hostPath")
	case w.Mode != "csi" && w.Mode != "hostPath":
		return fmt.Errorf("injection.workloadAPI.mode %q: want csi or hostPath", w.Mode)
	}
	return nil
}

func (w WorkloadAPI) volume() corev1.Volume {
	v := corev1.Volume{Name: WorkloadAPIVolume}
	if w.Mode == "hostPath" {
		dir := corev1.HostPathDirectory
		v.HostPath = &corev1.HostPathVolumeSource{Path: w.HostPath, Type: &dir}
	} else {
		ro := true
		v.CSI = &corev1.CSIVolumeSource{Driver: w.CSIDriver, ReadOnly: &ro}
	}
	return v
}

// sidecar is the token-file sidecar for one pod. Every field the API server
// would default is set to its default, so that the stored container is
// exactly this one.
func (c *Injection) sidecar(id identity) corev1.Container {
	s := c.Sidecar
	args := []string{"token", "--write", TokenFile,
		"--socket", "unix://" + socketDir + "/" + c.WorkloadAPI.SocketName,
		"--health-addr", ":" + strconv.Itoa(int(s.HealthPort))}
	if id.audience != "" {
		args = append(args, "--audience", id.audience)
	}
	var env []corev1.EnvVar
	if id.identityEndpoint {
		args = append(args, c.identityEndpointArgs(id)...)
		env = []corev1.EnvVar{{Name: envIdentityHeader, Value: id.identityHeader}}
	}
	always := corev1.ContainerRestartPolicyAlways
	probe := func(path string, period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: path, Port: intstr.FromInt32(s.HealthPort), Scheme: corev1.URISchemeHTTP}},
			PeriodSeconds: period, FailureThreshold: failures, TimeoutSeconds: 1, SuccessThreshold: 1,
		}
	}
	return corev1.Container{
		Name:  SidecarName,
		Image: s.Image,
		Args:  args,
		Env:   env,
		// A native sidecar: started before the other init containers and
		// the application, kept running beside them, stopped after them.
		RestartPolicy: &always,
		// The application starts once the file holds a token (up to two
		// minutes for the agent to attest the pod).
		StartupProbe:   probe("/readyz", 1, 120),
		ReadinessProbe: probe("/readyz", 10, 3),
		LivenessProbe:  probe("/livez", 10, 3),
		Resources:      *s.Resources,
		VolumeMounts: []corev1.VolumeMount{
			{Name: TokenVolume, MountPath: TokenDir},
			{Name: WorkloadAPIVolume, MountPath: socketDir, ReadOnly: true},
		},
		SecurityContext:          s.SecurityContext,
		ImagePullPolicy:          s.ImagePullPolicy,
		TerminationMessagePath:   corev1.TerminationMessagePathDefault,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
}
