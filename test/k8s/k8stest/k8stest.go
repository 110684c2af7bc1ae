// Package k8stest runs a real Kubernetes control plane for tests: Debian's
// etcd, and a kube-apiserver and kube-controller-manager built by
// test/k8s/build.sh, on loopback ports and in the test's temporary
// directory. There is no scheduler and no kubelet: the ReplicaSet controller
// creates pods and admission (PodSecurity, webhooks) judges them, but no pod
// runs. Every process stops when the test ends, even on failure.
package k8stest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/loopback"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/spire"
)

// BinEnv names the directory holding kube-apiserver and
// kube-controller-manager (test/k8s/build.sh prints it).
const BinEnv = "GATEWAY_TEST_K8S_BIN"

// ServiceAccountIssuer is the issuer of the API server's service-account
// tokens.
const ServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"

// Cluster is a running control plane.
type Cluster struct {
	// Config authenticates as a member of system:masters.
	Config *rest.Config
	// Kubeconfig is a file holding the same credentials, for clients that
	// read one (Helm, kubectl).
	Kubeconfig string
	// Client is a typed client for Config.
	Client kubernetes.Interface
	// Dir is the cluster's scratch directory (certificates, etcd data, logs).
	Dir string
	// CAPEM is the certificate authority of the API server's serving
	// certificate.
	CAPEM []byte

	// APIServer, ControllerManager and Etcd are the running processes.
	APIServer, ControllerManager, Etcd *spire.Process

	pki pki
}

// Bin returns the control plane's binaries' directory, skipping the test
// when it is not set: `make e2e` sets it.
func Bin(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(BinEnv)
	if dir == "" {
		t.Skipf("%s is not set: make e2e builds the control plane and runs this test", BinEnv)
	}
	return dir
}

// Start starts etcd, kube-apiserver and kube-controller-manager and returns
// once the API server is ready and the controllers have given the default
// namespace its ServiceAccount.
func Start(t testing.TB) *Cluster {
	t.Helper()
	bin := Bin(t)
	started := time.Now()
	etcd, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatalf("etcd: %v (test/k8s/build.sh installs Debian's etcd-server)", err)
	}
	dir, err := os.MkdirTemp("", "k8stest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c := &Cluster{Dir: dir}
	pki := newPKI(t, dir)
	c.pki, c.CAPEM = pki, pki.caPEM
	token := pki.token

	ports := loopback.Ports(t, 3)
	clientPort, peerPort, apiPort := ports[0], ports[1], ports[2]
	etcdURL := "http://127.0.0.1:" + clientPort
	peerURL := "http://127.0.0.1:" + peerPort
	c.Etcd = spire.Start(t, dir, etcd,
		"--name=k8stest", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=k8stest="+peerURL, "--log-level=warn")

	c.APIServer = spire.Start(t, dir, filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+apiPort,
		"--tls-cert-file="+pki.serverCert, "--tls-private-key-file="+pki.serverKey,
		"--token-auth-file="+pki.tokenFile, "--authorization-mode=RBAC",
		"--service-account-issuer="+ServiceAccountIssuer,
		"--service-account-key-file="+pki.saKey, "--service-account-signing-key-file="+pki.saKey,
		"--service-cluster-ip-range=10.96.0.0/24",
		// No kubelet registers the API server's own endpoints.
		"--endpoint-reconciler-type=none",
		"--enable-priority-and-fairness=false", "--profiling=false")

	host := "https://127.0.0.1:" + apiPort
	c.Config = &rest.Config{Host: host, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: pki.caPEM}, QPS: 100, Burst: 200}
	c.Kubeconfig = filepath.Join(dir, "kubeconfig")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["k8stest"] = &clientcmdapi.Cluster{Server: host, CertificateAuthorityData: pki.caPEM}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: token}
	kc.Contexts["k8stest"] = &clientcmdapi.Context{Cluster: "k8stest", AuthInfo: "admin", Namespace: "default"}
	kc.CurrentContext = "k8stest"
	if err := clientcmd.WriteToFile(*kc, c.Kubeconfig); err != nil {
		t.Fatal(err)
	}
	if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
		t.Fatal(err)
	}
	c.eventually(t, "the API server to be ready", 60*time.Second, func(ctx context.Context) error {
		if c.APIServer.Exited() {
			return fmt.Errorf("kube-apiserver %w", errExited)
		}
		body, err := c.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			return fmt.Errorf("%w: %s", err, body)
		}
		return nil
	})

	c.ControllerManager = spire.Start(t, dir, filepath.Join(bin, "kube-controller-manager"),
		"--kubeconfig="+c.Kubeconfig, "--leader-elect=false",
		"--bind-address=127.0.0.1", "--secure-port=0",
		"--service-account-private-key-file="+pki.saKey, "--root-ca-file="+pki.caFile,
		// Nodes, routes and cloud load balancers do not exist here.
		"--controllers=*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller")
	c.eventually(t, "the controllers to create the default ServiceAccount", 60*time.Second, func(ctx context.Context) error {
		if c.ControllerManager.Exited() {
			return fmt.Errorf("kube-controller-manager %w", errExited)
		}
		_, err := c.Client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err
	})
	t.Logf("control plane ready in %s (docs/benchmarks.md)", time.Since(started).Round(time.Millisecond))
	return c
}

// Namespace creates a namespace with labels (for example
// pod-security.kubernetes.io/enforce) and waits for its default
// ServiceAccount. The namespace is deleted when the test ends.
func (c *Cluster) Namespace(t testing.TB, name string, labels map[string]string) {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		err := c.Client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", name, err)
		}
	})
	c.eventually(t, "the default ServiceAccount of "+name, 30*time.Second, func(ctx context.Context) error {
		_, err := c.Client.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
}

// Eventually retries f until it succeeds or timeout passes, then fails the
// test with what f last returned.
func (c *Cluster) Eventually(t testing.TB, what string, timeout time.Duration, f func(context.Context) error) {
	t.Helper()
	c.eventually(t, what, timeout, f)
}

// errExited ends a wait at once: a process that exited will not become
// ready.
var errExited = errors.New("exited")

func (c *Cluster) eventually(t testing.TB, what string, timeout time.Duration, f func(context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := f(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || errors.Is(err, errExited) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
