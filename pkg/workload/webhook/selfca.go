package webhook

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"slices"
	"sync"
	"time"
)

// maxBundle bounds the CAs kept in the caBundle: each replica adds its own
// and they leave only when they expire, so a crash-looping webhook must not
// grow the object without end. The newest are kept; a live replica whose CA
// was dropped adds it again on its next pass.
const maxBundle = 32

// SelfCA serves the webhook's certificate when cert-manager is not there:
// each replica makes its own CA and serving certificate in memory (the key
// never leaves the process, so the webhook needs no Secret and no RBAC
// beyond its MutatingWebhookConfiguration) and adds the CA to the
// configuration's caBundle, which may hold several: one per replica, and
// during a rotation the old one beside the new. Expired CAs are removed.
type SelfCA struct {
	kube     *Kube
	config   string
	dnsNames []string
	ips      []net.IP
	validity time.Duration
	grace    time.Duration
	interval time.Duration
	logger   *slog.Logger
	now      func() time.Time

	pending *issued // issued, not yet in the bundle (Run's goroutine only)

	mu      sync.Mutex
	current *issued // served, its CA in the bundle; nil until the first pass
}

// issued is one CA and the serving certificate it signed.
type issued struct {
	caPEM []byte
	cert  tls.Certificate
	until time.Time
}

// NewSelfCA manages the certificate for the MutatingWebhookConfiguration
// named config. The certificate names dnsNames and ips and is valid for
// validity; it is replaced when a third is left.
func NewSelfCA(kube *Kube, config string, dnsNames []string, ips []net.IP, validity time.Duration, logger *slog.Logger) *SelfCA {
	return &SelfCA{kube: kube, config: config, dnsNames: dnsNames, ips: ips, validity: validity,
		grace: min(time.Minute, validity/10), interval: min(time.Minute, validity/10), logger: logger, now: time.Now}
}

// GetCertificate is tls.Config.GetCertificate.
func (s *SelfCA) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current == nil {
		return nil, errors.New("no serving certificate yet")
	}
	return &s.current.cert, nil
}

// Ready reports whether the served certificate's CA is in the caBundle.
func (s *SelfCA) Ready() (bool, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current == nil {
		return false, "the CA is not in the caBundle of " + s.config + " yet"
	}
	return true, "serving certificate valid until " + s.current.until.UTC().Format(time.RFC3339)
}

// Run keeps the CA in the caBundle (Helm or kubectl may write the
// configuration without it) and rotates before expiry, until ctx ends.
func (s *SelfCA) Run(ctx context.Context) {
	retry := 250 * time.Millisecond
	for {
		wait := s.interval
		if err := s.pass(ctx); err != nil {
			s.logger.Warn("webhook certificate", "error", err, "retry_in", retry)
			wait, retry = retry, min(2*retry, s.interval)
		} else {
			retry = 250 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// pass issues a certificate when there is none or a third of its life is
// left, makes sure its CA is in the bundle, and serves it: at once the first
// time, after a grace period on rotation so that the API server has seen the
// new bundle (the old certificate is still valid meanwhile).
func (s *SelfCA) pass(ctx context.Context) error {
	s.mu.Lock()
	cur := s.current
	s.mu.Unlock()
	next := cur
	if cur == nil || cur.until.Sub(s.now()) < s.validity/3 {
		// The same new CA until it is in the bundle: a write that failed,
		// or whose answer was lost, is retried with it, not with another.
		if s.pending == nil {
			var err error
			if s.pending, err = s.issue(); err != nil {
				return err
			}
		}
		next = s.pending
	}
	if err := s.ensureBundle(ctx, next.caPEM); err != nil {
		return err
	}
	s.pending = nil
	if next != cur {
		if cur != nil {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(s.grace):
			}
		}
		s.logger.Info("webhook certificate issued", "config", s.config, "until", next.until.UTC().Format(time.RFC3339))
	}
	s.mu.Lock()
	s.current = next
	s.mu.Unlock()
	return nil
}

// issue makes a CA and a serving certificate signed by it, both valid for
// the validity period.
func (s *SelfCA) issue() (*issued, error) {
	now := s.now()
	until := now.Add(s.validity)
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: serialNumber(), Subject: pkix.Name{CommonName: "spiffe-entra-gateway webhook CA " + now.UTC().Format(time.RFC3339)},
		NotBefore: now.Add(-time.Minute), NotAfter: until, IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: serialNumber(), Subject: pkix.Name{CommonName: cmp.Or(firstOf(s.dnsNames), "spiffe-entra-gateway-webhook")},
		NotBefore: now.Add(-time.Minute), NotAfter: until, DNSNames: s.dnsNames, IPAddresses: s.ips,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	return &issued{
		caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		cert:  tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key},
		until: until,
	}, nil
}

func serialNumber() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func firstOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// ensureBundle adds caPEM to the configuration's caBundle, dropping expired
// and unreadable certificates, and writes it only when it changed.
func (s *SelfCA) ensureBundle(ctx context.Context, caPEM []byte) error {
	c, err := s.kube.webhookConfiguration(ctx, s.config)
	if err != nil {
		return err
	}
	if len(c.Webhooks) == 0 {
		return fmt.Errorf("MutatingWebhookConfiguration %s has no webhooks", s.config)
	}
	have := c.Webhooks[0].ClientConfig.CABundle
	want := mergeBundle(have, caPEM, s.now())
	same := bytes.Equal(have, want)
	for _, w := range c.Webhooks[1:] {
		same = same && bytes.Equal(w.ClientConfig.CABundle, want)
	}
	if same {
		return nil
	}
	if err := s.kube.setCABundle(ctx, c, want); err != nil {
		return err
	}
	s.logger.Info("caBundle updated", "config", s.config, "cas", bytes.Count(want, []byte("-----BEGIN CERTIFICATE-----")))
	return nil
}

// mergeBundle is bundle without expired certificates, with ca added if
// missing, holding at most maxBundle certificates (the newest).
func mergeBundle(bundle, ca []byte, now time.Time) []byte {
	type entry struct {
		der       []byte
		notBefore time.Time
	}
	var keep []entry
	for rest := append(bytes.Clone(bundle), ca...); ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if block.Type != "CERTIFICATE" || err != nil || now.After(cert.NotAfter) {
			continue
		}
		if !slices.ContainsFunc(keep, func(e entry) bool { return bytes.Equal(e.der, block.Bytes) }) {
			keep = append(keep, entry{block.Bytes, cert.NotBefore})
		}
	}
	slices.SortStableFunc(keep, func(a, b entry) int { return b.notBefore.Compare(a.notBefore) })
	keep = keep[:min(len(keep), maxBundle)]
	slices.SortStableFunc(keep, func(a, b entry) int { return a.notBefore.Compare(b.notBefore) })
	var out []byte
	for _, e := range keep {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.der})...)
	}
	return out
}
