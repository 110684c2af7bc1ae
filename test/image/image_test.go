package image_test

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"sigs.k8s.io/yaml"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/dev/devcert"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/image"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/loopback"
)

// TestCheckRefusesABadImage gives Check an image with a shell, a
// world-writable directory, a symbolic link and no CA certificates.
func TestCheckRefusesABadImage(t *testing.T) {
	var buf bytes.Buffer
	tw := newTar(&buf)
	tw.dir("tmp", 0o1777)
	tw.file("bin/sh", 0o755, "#!")
	tw.link("usr/local/bin/spiffe-entra-gateway", "/bin/sh")
	tw.close(t)
	img, err := mutate.AppendLayers(empty.Image, static.NewLayer(buf.Bytes(), types.OCIUncompressedLayer))
	if err != nil {
		t.Fatal(err)
	}
	img, _ = mutate.Config(img, v1.Config{User: "0", Entrypoint: []string{"/bin/sh"}})
	got := fmt.Sprint(image.Check(img, image.Want{Version: "v1", Source: "https://example.org/src"}))
	for _, want := range []string{`user "0"`, "entrypoint", "tmp is world-writable", "unexpected file bin/sh",
		"usr/local/bin/spiffe-entra-gateway: type 2", "etc/ssl/certs/ca-certificates.crt is missing", "label org.opencontainers.image.source"} {
		if !strings.Contains(got, want) {
			t.Errorf("Check did not report %q: %s", want, got)
		}
	}
}

// TestBuiltImage checks the image make image wrote (GATEWAY_IMAGE_LAYOUT,
// set by test/e2e/run.sh), unpacks it by its name with umoci
// (GATEWAY_TEST_UMOCI), an OCI implementation of its own, and runs its
// binary from its root filesystem with runc (GATEWAY_TEST_RUNC): read-only,
// as the image's user, with no capability, as the chart's securityContext
// runs it.
func TestBuiltImage(t *testing.T) {
	dir := os.Getenv("GATEWAY_IMAGE_LAYOUT")
	if dir == "" {
		t.Skip("GATEWAY_IMAGE_LAYOUT is not set: make image, then see test/e2e/run.sh")
	}
	img, ref, err := image.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var chartMeta struct{ Home string }
	raw, err := os.ReadFile("../../charts/spiffe-entra-gateway/Chart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &chartMeta); err != nil {
		t.Fatal(err)
	}
	version := cf.Config.Labels["org.opencontainers.image.version"]
	for _, err := range image.Check(img, image.Want{Version: version, Source: chartMeta.Home}) {
		t.Error(err)
	}
	t.Logf("%s: %s", ref, version)

	// The tarball beside the layout, read by skopeo (containers/image, as
	// podman load reads it) by the name docker load would give it: the same
	// configuration, so the same image ID.
	if skopeo := os.Getenv("GATEWAY_TEST_SKOPEO"); skopeo != "" {
		out, err := exec.Command(skopeo, "inspect", "--raw", "--config", "docker-archive:"+dir+".tar:"+ref).Output()
		if err != nil {
			t.Fatalf("skopeo inspect the tarball: %v %s", err, exitStderr(err))
		}
		want, _ := img.ConfigName()
		if got := fmt.Sprintf("sha256:%x", sha256.Sum256(out)); got != want.String() {
			t.Errorf("the tarball's configuration is %s, the layout's %s", got, want)
		}
	}

	runc, umoci := os.Getenv("GATEWAY_TEST_RUNC"), os.Getenv("GATEWAY_TEST_UMOCI")
	if runc == "" || umoci == "" || os.Geteuid() != 0 {
		t.Skip("running the image needs umoci and runc (test/image/tools.sh) and root")
	}
	// umoci finds the image by the tag the layout's index names and writes
	// the runtime configuration from the image's: user, entrypoint, env.
	bundle := filepath.Join(t.TempDir(), "bundle")
	tag := ref[strings.LastIndex(ref, ":")+1:]
	if out, err := exec.Command(umoci, "unpack", "--image", dir+":"+tag, bundle).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack: %v\n%s", err, out)
	}
	base, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	r := &runtime{t: t, runc: runc, bundle: bundle, state: t.TempDir(), base: base}

	out := r.run("version")
	if strings.TrimSpace(out) != "spiffe-entra-gateway "+version {
		t.Errorf("version printed %q, the label says %q", out, version)
	}

	// serve --config: the discovery provider on a JWKS file and the Entra
	// endpoint on SQLite, TLS from files, health on loopback.
	conf := t.TempDir()
	paths, _, err := devcert.Ensure(filepath.Join(conf, "tls"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	write(t, filepath.Join(conf, "jwks.json"), string(jwks))
	addrs := loopback.Addrs(t, 3)
	oidcAddr, entraAddr, healthAddr := addrs[0], addrs[1], addrs[2]
	write(t, filepath.Join(conf, "gateway.yaml"), fmt.Sprintf(`
oidc:
  listen_addr: %s
  trust_domain: example.org
  issuer: https://localhost
  bundle_file: /config/jwks.json
entra:
  listen_addr: %s
  key_encryption: {key: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}
tls:
  mode: files
  cert_file: /config/tls/tls.crt
  key_file: /config/tls/tls.key
health:
  listen_addr: %s
metrics:
  listen_addr: ""
`, oidcAddr, entraAddr, healthAddr))
	chownAll(t, conf, 65532)
	data := t.TempDir()
	chownAll(t, data, 65532)
	r.mounts = []mount{{src: conf, dst: "/config", ro: true}, {src: data, dst: "/var/lib/spiffe-entra-gateway"}}
	stop := r.start("serve", "--config", "/config/gateway.yaml")
	defer stop()

	waitFor(t, "http://"+healthAddr+"/livez", nil, r)
	waitFor(t, "http://"+healthAddr+"/readyz", nil, r)
	pool, err := devcert.Pool(paths)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	body := waitFor(t, "https://localhost:"+port(oidcAddr)+"/.well-known/openid-configuration", client, r)
	if !strings.Contains(body, `"issuer":"https://localhost"`) && !strings.Contains(body, `"issuer": "https://localhost"`) {
		t.Errorf("discovery document %s", body)
	}
	if files, _ := os.ReadDir(data); len(files) == 0 {
		t.Error("the Entra endpoint wrote nothing to its data directory")
	}
}

func exitStderr(err error) string {
	if e := (*exec.ExitError)(nil); errors.As(err, &e) {
		return string(e.Stderr)
	}
	return ""
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func chownAll(t *testing.T, dir string, id int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, id, id)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// tarWriter writes the layers of the images Check must refuse.
type tarWriter struct{ w *tar.Writer }

func newTar(w io.Writer) tarWriter { return tarWriter{tar.NewWriter(w)} }

func (tw tarWriter) dir(name string, mode int64) {
	tw.w.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode})
}

func (tw tarWriter) file(name string, mode int64, body string) {
	tw.w.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body))})
	io.WriteString(tw.w, body)
}

func (tw tarWriter) link(name, target string) {
	tw.w.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777})
}

func (tw tarWriter) close(t *testing.T) {
	if err := tw.w.Close(); err != nil {
		t.Fatal(err)
	}
}
