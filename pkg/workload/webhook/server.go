package webhook

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/health"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/httpserve"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/metrics"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/servingtls"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/strictyaml"
)

// Config is the webhook's configuration file (`webhook --config FILE`).
// Its keys are camelCase, unlike the gateway's: the file embeds Kubernetes
// objects (resources, securityContext) and the chart writes it from its
// values as they are.
type Config struct {
	// ListenAddr serves POST /mutate over TLS (default :9443).
	ListenAddr string `json:"listenAddr"`
	// HealthAddr serves /livez, /readyz and /metrics over plain HTTP
	// (default :8008).
	HealthAddr string `json:"healthAddr"`
	// Namespace is the webhook's own; its pods are never touched (default
	// $POD_NAMESPACE).
	Namespace string `json:"namespace"`
	// ExcludedNamespaces are also never touched; kube-system always is.
	ExcludedNamespaces []string `json:"excludedNamespaces"`
	// Kubeconfig is the kubeconfig file; empty means in-cluster.
	Kubeconfig string `json:"kubeconfig"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `json:"logLevel"`
	// TLS is the serving certificate: files (cert-manager) or self-managed.
	TLS TLS `json:"tls"`
	// Injection is what opted-in pods get.
	Injection Injection `json:"injection"`
}

// TLS is exactly one source of the serving certificate.
type TLS struct {
	// CertFile and KeyFile are a PEM pair, read again when renewed (the
	// Secret cert-manager keeps; its CA injector fills the caBundle).
	CertFile string `json:"certFile"`
	KeyFile  string `json:"keyFile"`
	// SelfManaged makes the webhook its own CA (see SelfCA).
	SelfManaged *SelfManaged `json:"selfManaged"`
}

// SelfManaged configures SelfCA.
type SelfManaged struct {
	// WebhookConfiguration is the MutatingWebhookConfiguration whose
	// caBundle the webhook keeps.
	WebhookConfiguration string `json:"webhookConfiguration"`
	// DNSNames and IPAddresses are the serving certificate's names: the
	// Service's <name>.<namespace>.svc.
	DNSNames    []string `json:"dnsNames"`
	IPAddresses []string `json:"ipAddresses"`
	// Validity of the CA and the certificate (default 168h); replaced when a
	// third is left.
	Validity metav1.Duration `json:"validity"`
}

// LoadConfig reads the file at path strictly (an unknown key is an error,
// named by its path with a suggestion), applies defaults and checks it.
func LoadConfig(path string) (Config, error) {
	var c Config
	data, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	if err := strictyaml.Decode(data, &c); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	if err := c.setDefaults(); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func (c *Config) setDefaults() error {
	c.ListenAddr = cmp.Or(c.ListenAddr, ":9443")
	c.HealthAddr = cmp.Or(c.HealthAddr, ":8008")
	c.Namespace = cmp.Or(c.Namespace, os.Getenv("POD_NAMESPACE"))
	if c.Namespace == "" {
		return errors.New("namespace is required (or POD_NAMESPACE): the webhook's own pods must never depend on it")
	}
	if !slices.Contains(c.ExcludedNamespaces, "kube-system") {
		c.ExcludedNamespaces = append(c.ExcludedNamespaces, "kube-system")
	}
	files := c.TLS.CertFile != "" || c.TLS.KeyFile != ""
	switch {
	case files == (c.TLS.SelfManaged != nil):
		return errors.New("tls: set either certFile and keyFile or selfManaged")
	case files && (c.TLS.CertFile == "" || c.TLS.KeyFile == ""):
		return errors.New("tls: certFile and keyFile go together")
	case c.TLS.SelfManaged != nil:
		s := c.TLS.SelfManaged
		if s.WebhookConfiguration == "" || len(s.DNSNames)+len(s.IPAddresses) == 0 {
			return errors.New("tls.selfManaged: webhookConfiguration and at least one of dnsNames and ipAddresses are required")
		}
		for _, ip := range s.IPAddresses {
			if net.ParseIP(ip) == nil {
				return fmt.Errorf("tls.selfManaged.ipAddresses: %q is not an IP address", ip)
			}
		}
		if s.Validity.Duration == 0 {
			s.Validity.Duration = 7 * 24 * time.Hour
		}
		if s.Validity.Duration < 30*time.Second {
			return fmt.Errorf("tls.selfManaged.validity %s: want at least 30s", s.Validity.Duration)
		}
	}
	return c.Injection.setDefaults()
}

// Serve runs the webhook until ctx ends: the admission listener, the health
// listener, and the certificate's upkeep.
func Serve(ctx context.Context, c Config, logger *slog.Logger) error {
	kube, err := NewKube(c.Kubeconfig)
	if err != nil {
		return err
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	var certReady health.Check
	if s := c.TLS.SelfManaged; s != nil {
		var ips []net.IP
		for _, ip := range s.IPAddresses {
			ips = append(ips, net.ParseIP(ip))
		}
		ca := NewSelfCA(kube, s.WebhookConfiguration, s.DNSNames, ips, s.Validity.Duration, logger)
		go ca.Run(ctx)
		tlsConfig.GetCertificate = ca.GetCertificate
		certReady = health.Check{Name: "certificate", Ready: ca.Ready}
	} else {
		files, err := servingtls.NewFiles(c.TLS.CertFile, c.TLS.KeyFile, servingtls.WithLogger(logger))
		if err != nil {
			return err
		}
		go files.Run(ctx)
		tlsConfig = files.Config()
		certReady = health.Check{Name: "certificate", Ready: func() (bool, any) { return true, "from " + c.TLS.CertFile }}
	}
	m := metrics.New()
	handler := &Handler{
		Injection:      &c.Injection,
		Skip:           append([]string{c.Namespace}, c.ExcludedNamespaces...),
		ServiceAccount: kube.ServiceAccount,
		Logger:         logger,
		Metrics:        m,
	}
	mux := http.NewServeMux()
	mux.Handle("/mutate", m.Instrument("webhook", func(*http.Request) string { return "/mutate" }, handler))
	// Health and metrics share the plain listener: the kubelet and
	// Prometheus reach it, the API server never does.
	plain := http.NewServeMux()
	plain.Handle("GET /metrics", m.Handler())
	plain.Handle("/", health.Handler(certReady))
	// Both addresses are bound before either serves, so that a taken one
	// leaves nothing running.
	admission, err := net.Listen("tcp", c.ListenAddr)
	if err != nil {
		return err
	}
	healthLn, err := net.Listen("tcp", c.HealthAddr)
	if err != nil {
		admission.Close()
		return err
	}
	logger.Info("listening", "addr", admission.Addr().String(), "tls", true)
	logger.Info("listening", "addr", healthLn.Addr().String(), "tls", false)
	return httpserve.Serve(ctx, logger,
		httpserve.Listener{Name: "webhook", Net: admission, Handler: mux, TLS: tlsConfig},
		httpserve.Listener{Name: "health", Net: healthLn, Handler: plain})
}
