package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// fakeAPI serves one MutatingWebhookConfiguration: GET, and PATCH with a
// JSON patch applied as the API server applies it (a failed test op is a
// 422 and changes nothing), bumping resourceVersion on each write.
type fakeAPI struct {
	mu      sync.Mutex
	obj     []byte
	version int
	patches int
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Path != webhookConfigPath+"seg" {
		http.Error(w, `{"message":"not found"}`, http.StatusNotFound)
		return
	}
	switch r.Method {
	case http.MethodGet:
		w.Write(f.obj)
	case http.MethodPatch:
		body, _ := io.ReadAll(r.Body)
		p, err := jsonpatch.DecodePatch(body)
		if err != nil || r.Header.Get("Content-Type") != "application/json-patch+json" {
			http.Error(w, `{"message":"bad patch"}`, http.StatusBadRequest)
			return
		}
		out, err := p.Apply(f.obj)
		if err != nil {
			http.Error(w, `{"message":"`+err.Error()+`"}`, http.StatusUnprocessableEntity)
			return
		}
		f.version++
		f.patches++
		f.obj = f.setVersion(out)
		w.Write(f.obj)
	}
}

func (f *fakeAPI) setVersion(obj []byte) []byte {
	var c admissionregistrationv1.MutatingWebhookConfiguration
	_ = json.Unmarshal(obj, &c)
	c.ResourceVersion = strconv.Itoa(f.version)
	return mustJSON(c)
}

func (f *fakeAPI) get() admissionregistrationv1.MutatingWebhookConfiguration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var c admissionregistrationv1.MutatingWebhookConfiguration
	_ = json.Unmarshal(f.obj, &c)
	return c
}

func newFakeAPI(t *testing.T, bundle []byte) (*fakeAPI, *Kube) {
	f := &fakeAPI{version: 1}
	f.obj = f.setVersion(mustJSON(admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "seg"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{
			{Name: "a.spiffe-entra-gateway.io", ClientConfig: admissionregistrationv1.WebhookClientConfig{CABundle: bundle}},
			{Name: "b.spiffe-entra-gateway.io"},
		},
	}))
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	return f, &Kube{host: srv.URL, client: srv.Client()}
}

// caPEM makes a throw-away CA valid from notBefore to notAfter.
func caPEM(t *testing.T, notBefore, notAfter time.Time) []byte {
	t.Helper()
	s := &SelfCA{validity: notAfter.Sub(notBefore), now: func() time.Time { return notBefore.Add(time.Minute) }}
	is, err := s.issue()
	if err != nil {
		t.Fatal(err)
	}
	return is.caPEM
}

// verify checks that the served certificate chains to the bundle for name.
func verify(t *testing.T, s *SelfCA, bundle []byte, name string, at time.Time) {
	t.Helper()
	cert, err := s.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(bundle) {
		t.Fatal("empty bundle")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name, CurrentTime: at}); err != nil {
		t.Fatalf("the served certificate does not verify against the caBundle: %v", err)
	}
}

func countCerts(bundle []byte) int {
	n := 0
	for rest := bundle; ; n++ {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return n
		}
	}
}

func TestSelfCAKeepsTheBundle(t *testing.T) {
	now := time.Now()
	other := caPEM(t, now.Add(-time.Hour), now.Add(time.Hour))      // another replica's
	expired := caPEM(t, now.Add(-3*time.Hour), now.Add(-time.Hour)) // a dead replica's
	api, kube := newFakeAPI(t, append(append([]byte{}, expired...), other...))
	s := NewSelfCA(kube, "seg", []string{"seg-webhook.spire-system.svc"}, []net.IP{net.ParseIP("127.0.0.1")}, time.Hour, slog.New(slog.DiscardHandler))
	s.grace = 0
	clock := now
	s.now = func() time.Time { return clock }

	if ok, _ := s.Ready(); ok {
		t.Fatal("ready before the bundle holds the CA")
	}
	if err := s.pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := api.get()
	bundle := c.Webhooks[0].ClientConfig.CABundle
	if string(c.Webhooks[1].ClientConfig.CABundle) != string(bundle) || countCerts(bundle) != 2 {
		t.Fatalf("bundles %d and %d certificates", countCerts(bundle), countCerts(c.Webhooks[1].ClientConfig.CABundle))
	}
	if string(bundle[:len(other)]) != string(other) {
		t.Error("the other replica's CA was dropped, or the expired one kept")
	}
	verify(t, s, bundle, "seg-webhook.spire-system.svc", clock)
	if ok, _ := s.Ready(); !ok {
		t.Error("not ready")
	}

	// A write that fails is retried with the same new CA.
	api.mu.Lock()
	api.obj = api.setVersion(mustJSON(admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "seg"}}))
	api.mu.Unlock()
	s.current = nil
	for range 2 {
		if err := s.pass(context.Background()); err == nil {
			t.Fatal("a configuration without webhooks accepted")
		}
	}
	retried := s.pending
	api.mu.Lock()
	api.obj = api.setVersion(mustJSON(admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "seg"}, Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "a.spiffe-entra-gateway.io"}}}))
	api.mu.Unlock()
	if err := s.pass(context.Background()); err != nil || s.current != retried || s.pending != nil {
		t.Fatalf("after the retry: %v, serving the CA first issued: %v", err, s.current == retried)
	}

	// Nothing to do: no write.
	before := api.patches
	if err := s.pass(context.Background()); err != nil || api.patches != before {
		t.Fatalf("a pass with nothing to do wrote: %v", err)
	}

	// Helm wrote the configuration without a caBundle: the CA comes back.
	api.mu.Lock()
	api.obj = api.setVersion(mustJSON(admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "seg"}, Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "a.spiffe-entra-gateway.io"}}}))
	api.mu.Unlock()
	if err := s.pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	verify(t, s, api.get().Webhooks[0].ClientConfig.CABundle, "seg-webhook.spire-system.svc", clock)

	// Forty minutes on, a third of the hour is left: a new CA beside the
	// old, and the new certificate served.
	old, _ := s.GetCertificate(nil)
	clock = now.Add(41 * time.Minute)
	if err := s.pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	bundle = api.get().Webhooks[0].ClientConfig.CABundle
	if countCerts(bundle) != 2 {
		t.Fatalf("after rotation %d CAs, want the old and the new", countCerts(bundle))
	}
	if cur, _ := s.GetCertificate(nil); cur == old {
		t.Fatal("not rotated")
	}
	verify(t, s, bundle, "seg-webhook.spire-system.svc", clock)
	leaf, _ := x509.ParseCertificate(old.Certificate[0])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: poolOf(bundle), DNSName: "seg-webhook.spire-system.svc", CurrentTime: clock}); err != nil {
		t.Errorf("the old certificate stopped verifying during the rotation: %v", err)
	}
}

func poolOf(bundle []byte) *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(bundle)
	return p
}

func TestSelfCAStalePatchAndRun(t *testing.T) {
	api, kube := newFakeAPI(t, nil)
	s := NewSelfCA(kube, "seg", []string{"w"}, nil, time.Hour, slog.New(slog.DiscardHandler))
	c, err := kube.webhookConfiguration(context.Background(), "seg")
	if err != nil {
		t.Fatal(err)
	}
	// Someone writes between our read and our patch: the test op fails.
	api.mu.Lock()
	api.version++
	api.obj = api.setVersion(api.obj)
	api.mu.Unlock()
	if err := kube.setCABundle(context.Background(), c, []byte("x")); err == nil {
		t.Fatal("a stale resourceVersion was written over")
	}
	if len(api.get().Webhooks[0].ClientConfig.CABundle) != 0 {
		t.Fatal("the failed patch changed the object")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for ok := false; !ok; ok, _ = s.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("never ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.TLS = &tls.Config{GetCertificate: s.GetCertificate}
	srv.StartTLS()
	defer srv.Close()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: poolOf(api.get().Webhooks[0].ClientConfig.CABundle), ServerName: "w"}}
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
	if err != nil {
		t.Fatalf("a client trusting the caBundle: %v", err)
	}
	resp.Body.Close()
}

func TestMergeBundleIsBounded(t *testing.T) {
	now := time.Now()
	var bundle []byte
	var newest []byte
	for i := range maxBundle + 5 {
		newest = caPEM(t, now.Add(time.Duration(i)*time.Second-time.Hour), now.Add(time.Hour))
		bundle = mergeBundle(bundle, newest, now)
	}
	if countCerts(bundle) != maxBundle || string(bundle[len(bundle)-len(newest):]) != string(newest) {
		t.Errorf("%d CAs kept, the newest last: %v", countCerts(bundle), string(bundle[len(bundle)-len(newest):]) == string(newest))
	}
	if again := mergeBundle(bundle, newest, now); string(again) != string(bundle) {
		t.Error("merging a CA already there changed the bundle")
	}
}

// TestKubeRefusesAnOversizedAnswer: an answer past maxAnswer is an error
// that says so, not a truncated document that fails to decode.
func TestKubeRefusesAnOversizedAnswer(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"metadata":{"name":"default","annotations":{"a":"`))
		_, _ = w.Write(bytes.Repeat([]byte("x"), maxAnswer))
		_, _ = w.Write([]byte(`"}}}`))
	}))
	defer srv.Close()
	k := &Kube{host: srv.URL, client: srv.Client()}
	_, err := k.ServiceAccount(context.Background(), "ns", "default")
	if err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("got %v, want an answer-too-large error", err)
	}
}
