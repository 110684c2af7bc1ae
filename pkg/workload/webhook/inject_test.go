package webhook

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func testInjection(t *testing.T) *Injection {
	t.Helper()
	c := &Injection{Sidecar: Sidecar{Image: "example.org/seg:1"}}
	if err := c.setDefaults(); err != nil {
		t.Fatal(err)
	}
	return c
}

// optedIn is a pod that opts in with a client id and tenant id.
func optedIn(spec corev1.PodSpec) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "app-", Namespace: "apps",
			Labels:      map[string]string{LabelUse: "true"},
			Annotations: map[string]string{AnnotationClientID: "11111111-1111-1111-1111-111111111111", AnnotationTenantID: "22222222-2222-2222-2222-222222222222"},
		},
		Spec: spec,
	}
}

// apply runs Mutate and applies its patch to the pod's JSON, as the API
// server does, returning the patched pod.
func apply(t *testing.T, c *Injection, pod *corev1.Pod, sa *corev1.ServiceAccount) (*corev1.Pod, []Operation) {
	t.Helper()
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	return applyRaw(t, c, raw, sa)
}

func applyRaw(t *testing.T, c *Injection, raw []byte, sa *corev1.ServiceAccount) (*corev1.Pod, []Operation) {
	t.Helper()
	var pod corev1.Pod
	if err := json.Unmarshal(raw, &pod); err != nil {
		t.Fatal(err)
	}
	ops, err := c.Mutate(&pod, sa)
	if err != nil {
		t.Fatalf("Mutate: %v", err)
	}
	out := patched(t, raw, ops)
	var got corev1.Pod
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	// A second admission of the result changes nothing.
	if again, err := c.Mutate(&got, sa); err != nil || len(again) != 0 {
		t.Fatalf("second admission: %v %s", err, mustJSON(again))
	}
	return &got, ops
}

func patched(t *testing.T, raw []byte, ops []Operation) []byte {
	t.Helper()
	p, err := jsonpatch.DecodePatch(mustJSON(ops))
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Apply(raw)
	if err != nil {
		t.Fatalf("the patch does not apply: %v\n%s", err, mustJSON(ops))
	}
	return out
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func envOf(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		if _, dup := m[e.Name]; dup {
			m[e.Name] = "DUPLICATE"
			continue
		}
		m[e.Name] = e.Value
	}
	return m
}

func checkApp(t *testing.T, c corev1.Container, want map[string]string) {
	t.Helper()
	got := envOf(c)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("container %s: %s=%q, want %q (env %v)", c.Name, k, got[k], v, got)
		}
	}
	n := 0
	for _, m := range c.VolumeMounts {
		if m.MountPath == TokenDir {
			n++
			if m.Name != TokenVolume || !m.ReadOnly {
				t.Errorf("container %s mounts %+v at the token directory", c.Name, m)
			}
		}
	}
	if n != 1 {
		t.Errorf("container %s: %d mounts of the token directory", c.Name, n)
	}
}

var wantEnv = map[string]string{
	"AZURE_CLIENT_ID":            "11111111-1111-1111-1111-111111111111",
	"AZURE_TENANT_ID":            "22222222-2222-2222-2222-222222222222",
	"AZURE_FEDERATED_TOKEN_FILE": TokenFile,
}

func TestOneContainer(t *testing.T) {
	c := testInjection(t)
	pod, _ := apply(t, c, optedIn(corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}}), nil)
	if len(pod.Spec.InitContainers) != 1 {
		t.Fatalf("init containers %+v", pod.Spec.InitContainers)
	}
	s := pod.Spec.InitContainers[0]
	if s.Name != SidecarName || s.RestartPolicy == nil || *s.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("the sidecar is not a native sidecar: %+v", s)
	}
	wantArgs := []string{"token", "--write", TokenFile, "--socket", "unix:///spiffe-workload-api/spire-agent.sock", "--health-addr", ":18090"}
	if !slices.Equal(s.Args, wantArgs) || s.Image != "example.org/seg:1" {
		t.Errorf("sidecar %s %q", s.Image, s.Args)
	}
	if s.StartupProbe == nil || s.ReadinessProbe == nil || s.ReadinessProbe.HTTPGet.Path != "/readyz" || s.LivenessProbe.HTTPGet.Path != "/livez" {
		t.Errorf("sidecar probes %+v %+v", s.StartupProbe, s.ReadinessProbe)
	}
	sc := s.SecurityContext
	if sc == nil || !*sc.RunAsNonRoot || *sc.AllowPrivilegeEscalation || !*sc.ReadOnlyRootFilesystem || sc.Capabilities.Drop[0] != "ALL" ||
		sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("sidecar security context %+v", sc)
	}
	if s.Resources.Limits.Memory().String() != "64Mi" {
		t.Errorf("sidecar resources %+v", s.Resources)
	}
	if len(s.Env) != 0 {
		t.Errorf("sidecar env %+v", s.Env)
	}
	checkApp(t, pod.Spec.Containers[0], wantEnv)
	if _, ok := envOf(pod.Spec.Containers[0])["AZURE_AUTHORITY_HOST"]; ok {
		t.Error("AZURE_AUTHORITY_HOST set though nobody asked")
	}
	if len(pod.Spec.Volumes) != 2 || pod.Spec.Volumes[0].EmptyDir == nil || pod.Spec.Volumes[1].CSI == nil ||
		pod.Spec.Volumes[1].CSI.Driver != "csi.spiffe.io" || !*pod.Spec.Volumes[1].CSI.ReadOnly {
		t.Errorf("volumes %s", mustJSON(pod.Spec.Volumes))
	}
}

func TestInitContainersAndSeveralContainers(t *testing.T) {
	c := testInjection(t)
	in := optedIn(corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "migrate"}, {Name: "warm", Env: []corev1.EnvVar{{Name: "X", Value: "1"}}}},
		Containers:     []corev1.Container{{Name: "app"}, {Name: "proxy"}, {Name: "metrics"}},
	})
	in.Annotations[AnnotationSkipContainers] = "proxy, nothing"
	pod, _ := apply(t, c, in, nil)
	var names []string
	for _, ct := range pod.Spec.InitContainers {
		names = append(names, ct.Name)
	}
	if !slices.Equal(names, []string{SidecarName, "migrate", "warm"}) {
		t.Fatalf("init containers %v: the sidecar must come first", names)
	}
	checkApp(t, pod.Spec.InitContainers[1], wantEnv)
	checkApp(t, pod.Spec.InitContainers[2], wantEnv)
	if envOf(pod.Spec.InitContainers[2])["X"] != "1" {
		t.Error("an init container lost its own variable")
	}
	checkApp(t, pod.Spec.Containers[0], wantEnv)
	checkApp(t, pod.Spec.Containers[2], wantEnv)
	if p := pod.Spec.Containers[1]; len(p.Env) != 0 || len(p.VolumeMounts) != 0 {
		t.Errorf("a skipped container was changed: %+v", p)
	}
}

func TestExistingEnvIsKept(t *testing.T) {
	c := testInjection(t)
	in := optedIn(corev1.PodSpec{Containers: []corev1.Container{
		{Name: "app", Env: []corev1.EnvVar{
			{Name: "AZURE_CLIENT_ID", Value: "mine"},
			{Name: "AZURE_AUTHORITY_HOST", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{Key: "host"}}},
		}},
	}})
	in.Annotations[AnnotationAuthorityHost] = "https://login.example"
	pod, _ := apply(t, c, in, nil)
	env := pod.Spec.Containers[0].Env
	if env[0].Value != "mine" || env[1].ValueFrom == nil || env[1].Value != "" {
		t.Errorf("the pod's own values were overridden: %s", mustJSON(env))
	}
	checkApp(t, pod.Spec.Containers[0], map[string]string{"AZURE_CLIENT_ID": "mine", "AZURE_TENANT_ID": wantEnv["AZURE_TENANT_ID"], "AZURE_FEDERATED_TOKEN_FILE": TokenFile})
	if len(env) != 4 {
		t.Errorf("env %s", mustJSON(env))
	}
}

func TestExistingVolumesWithTheSameName(t *testing.T) {
	c := testInjection(t)
	// The pod brings its own Workload API volume (a hostPath it is allowed)
	// and a token volume; one container already mounts something at the
	// token directory.
	own := []corev1.Volume{
		{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: WorkloadAPIVolume, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/run/own"}}},
		{Name: TokenVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	in := optedIn(corev1.PodSpec{Volumes: own, Containers: []corev1.Container{
		{Name: "app", VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: TokenDir}}},
		{Name: "other", VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}},
	}})
	pod, ops := apply(t, c, in, nil)
	if string(mustJSON(pod.Spec.Volumes)) != string(mustJSON(own)) {
		t.Errorf("volumes changed: %s", mustJSON(pod.Spec.Volumes))
	}
	if m := pod.Spec.Containers[0].VolumeMounts; len(m) != 1 || m[0].Name != "data" {
		t.Errorf("a second mount at the token directory: %+v", m)
	}
	checkApp(t, pod.Spec.Containers[1], wantEnv)
	for _, op := range ops {
		if op.Op != "add" {
			t.Errorf("operation %s %s: the webhook only adds", op.Op, op.Path)
		}
	}
}

func TestAnnotationsFromTheServiceAccount(t *testing.T) {
	c := testInjection(t)
	c.Defaults = Defaults{TenantID: "default-tenant", Audience: "api://default"}
	in := optedIn(corev1.PodSpec{ServiceAccountName: "worker", Containers: []corev1.Container{{Name: "app"}}})
	// An empty annotation on the pod does not hide its ServiceAccount's.
	in.Annotations = map[string]string{AnnotationAudience: "api://pod", AnnotationClientID: " "}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "worker", Annotations: map[string]string{
		AnnotationClientID: "sa-client", AnnotationAudience: "api://sa", AnnotationAuthorityHost: "https://gw.example/",
	}}}
	pod, _ := apply(t, c, in, sa)
	checkApp(t, pod.Spec.Containers[0], map[string]string{
		"AZURE_CLIENT_ID": "sa-client", "AZURE_TENANT_ID": "default-tenant", "AZURE_AUTHORITY_HOST": "https://gw.example/",
	})
	if args := pod.Spec.InitContainers[0].Args; !slices.Equal(args[len(args)-2:], []string{"--audience", "api://pod"}) {
		t.Errorf("sidecar args %q: the pod's audience wins", args)
	}
}

func TestRefusedWithoutClientID(t *testing.T) {
	c := testInjection(t)
	in := optedIn(corev1.PodSpec{ServiceAccountName: "worker", Containers: []corev1.Container{{Name: "app"}}})
	delete(in.Annotations, AnnotationClientID)
	_, err := c.Mutate(in, &corev1.ServiceAccount{})
	var r *Refusal
	if !errors.As(err, &r) || !strings.Contains(r.Message, AnnotationClientID) || !strings.Contains(r.Message, `"worker"`) {
		t.Fatalf("got %v, want a refusal naming %s and the ServiceAccount", err, AnnotationClientID)
	}
	delete(in.Annotations, AnnotationTenantID)
	in.Annotations[AnnotationClientID] = "c"
	if _, err := c.Mutate(in, nil); err == nil || !strings.Contains(err.Error(), AnnotationTenantID) {
		t.Fatalf("no tenant: %v", err)
	}
	host := optedIn(corev1.PodSpec{HostNetwork: true, Containers: []corev1.Container{{Name: "app"}}})
	if _, err := c.Mutate(host, nil); err == nil || !strings.Contains(err.Error(), "hostNetwork") {
		t.Errorf("hostNetwork: %v", err)
	}
	c.AllowMissingClientID = true
	delete(in.Annotations, AnnotationClientID)
	pod, _ := apply(t, c, in, nil)
	env := envOf(pod.Spec.Containers[0])
	if _, ok := env["AZURE_CLIENT_ID"]; ok || env["AZURE_FEDERATED_TOKEN_FILE"] != TokenFile {
		t.Errorf("allowed without a client id: env %v", env)
	}
}

func TestUnknownFieldsSurvive(t *testing.T) {
	c := testInjection(t)
	// A field of a newer API server than this build's k8s.io/api.
	raw := []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"` + LabelUse + `":"true"},
	  "annotations":{"` + AnnotationClientID + `":"c","` + AnnotationTenantID + `":"t"}},
	  "spec":{"futureField":{"a":1},"containers":[{"name":"app","futureContainerField":true,"env":[{"name":"A","value":"1"}]}]}}`)
	var pod corev1.Pod
	if err := json.Unmarshal(raw, &pod); err != nil {
		t.Fatal(err)
	}
	ops, err := c.Mutate(&pod, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := string(patched(t, raw, ops))
	if !strings.Contains(out, `"futureField":{"a":1}`) || !strings.Contains(out, `"futureContainerField":true`) {
		t.Errorf("unknown fields lost: %s", out)
	}
}

func TestHostPathWorkloadAPI(t *testing.T) {
	c := &Injection{Sidecar: Sidecar{Image: "i"}, WorkloadAPI: WorkloadAPI{Mode: "hostPath", HostPath: "/run/spire/agent-sockets", SocketName: "agent.sock"}}
	if err := c.setDefaults(); err != nil {
		t.Fatal(err)
	}
	pod, _ := apply(t, c, optedIn(corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}), nil)
	v := pod.Spec.Volumes[1]
	if v.HostPath == nil || v.HostPath.Path != "/run/spire/agent-sockets" || *v.HostPath.Type != corev1.HostPathDirectory {
		t.Errorf("volume %s", mustJSON(v))
	}
	if !slices.Contains(pod.Spec.InitContainers[0].Args, "unix:///spiffe-workload-api/agent.sock") {
		t.Errorf("args %q", pod.Spec.InitContainers[0].Args)
	}
}

func TestIdentityEndpoint(t *testing.T) {
	c := testInjection(t)
	in := optedIn(corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}})
	in.Annotations[AnnotationIdentityEndpoint] = "true"
	in.Annotations[AnnotationAuthorityHost] = "https://gw.example"
	pod, _ := apply(t, c, in, nil)
	s := pod.Spec.InitContainers[0]
	header := envOf(s)[envIdentityHeader]
	if len(header) < 32 {
		t.Fatalf("sidecar header %q", header)
	}
	if !strings.Contains(strings.Join(s.Args, " "), "--identity-endpoint 127.0.0.1:18091 --client-id 11111111-1111-1111-1111-111111111111 --tenant 22222222-2222-2222-2222-222222222222 --authority-host https://gw.example") {
		t.Errorf("sidecar args %q", s.Args)
	}
	if strings.Contains(strings.Join(s.Args, " "), header) {
		t.Error("the header is on the command line")
	}
	checkApp(t, pod.Spec.Containers[0], map[string]string{
		"IDENTITY_ENDPOINT": "http://127.0.0.1:18091/msi/token", envIdentityHeader: header,
		"MSI_ENDPOINT": "http://127.0.0.1:18091/msi/token", "MSI_SECRET": header,
		"AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:18091",
		"AZURE_FEDERATED_TOKEN_FILE":        TokenFile,
	})

	// The endpoint needs a client id even where other pods may go without.
	c.AllowMissingClientID = true
	noClient := optedIn(corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}})
	noClient.Annotations[AnnotationIdentityEndpoint] = "true"
	delete(noClient.Annotations, AnnotationClientID)
	if _, err := c.Mutate(noClient, nil); err == nil || !strings.Contains(err.Error(), AnnotationClientID) {
		t.Errorf("identity endpoint without a client id: %v", err)
	}

	// Another webhook adds a container; the reinvocation gives it the same
	// header as the sidecar's.
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "late"})
	again, _ := apply(t, c, pod, nil)
	checkApp(t, again.Spec.Containers[1], map[string]string{envIdentityHeader: header})
}

func TestConfigRefusesNonsense(t *testing.T) {
	for name, c := range map[string]Injection{
		"no image":   {},
		"mode":       {Sidecar: Sidecar{Image: "i"}, WorkloadAPI: WorkloadAPI{Mode: "nfs"}},
		"hostPath":   {Sidecar: Sidecar{Image: "i"}, WorkloadAPI: WorkloadAPI{Mode: "hostPath"}},
		"same ports": {Sidecar: Sidecar{Image: "i", HealthPort: 9000, IdentityEndpointPort: 9000}},
		"port range": {Sidecar: Sidecar{Image: "i", HealthPort: 70000}},
	} {
		if err := c.setDefaults(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
