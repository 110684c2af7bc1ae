// Command image builds the gateway's OCI image from a static binary with no
// container runtime (make image): one layer holding the binary, the CA
// certificates of golang.org/x/crypto/x509roots/fallback (Mozilla's roots,
// pinned by go.sum, so the build machine's own certificates play no part),
// /etc/passwd and /etc/group naming the non-root user 65532, and the data
// directory that user owns. There is no shell and no package manager.
//
// The image is named as the chart's defaults expect it (the chart's
// image.registry, image.repository and appVersion) and written as an OCI
// image layout and as a tarball for `docker load` or `podman load`. Every
// timestamp is --created and the tar entries are sorted with fixed owners,
// so the same binary gives the same digest.
package main

import (
	"archive/tar"
	"bytes"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/x509roots/fallback/bundle"
	"sigs.k8s.io/yaml"
)

// Paths inside the image.
const (
	BinaryPath = "/usr/local/bin/spiffe-entra-gateway"
	CAFile     = "/etc/ssl/certs/ca-certificates.crt"
	DataDir    = "/var/lib/spiffe-entra-gateway"
	// User is the non-root user and group, distroless' "nonroot".
	User = "65532:65532"
)

// Options say what goes into the image.
type Options struct {
	// Binary is the static gateway binary for Arch.
	Binary []byte
	// Arch is the GOARCH the binary was built for.
	Arch string
	// Version and Revision become labels; Source is the repository's URL.
	Version, Revision, Source string
	// Created is every timestamp in the image.
	Created time.Time
}

func main() {
	binary := flag.String("binary", "", "the static linux binary")
	arch := flag.String("arch", "", "its GOARCH")
	chartDir := flag.String("chart", "charts/spiffe-entra-gateway", "the chart whose default image reference names the image")
	version := flag.String("version", "devel", "the version label")
	revision := flag.String("revision", "", "the commit")
	created := flag.Int64("created", 0, "every timestamp, in seconds since 1970 (the commit's time)")
	out := flag.String("layout", "bin/image", "the OCI image layout directory to write (replaced)")
	tarPath := flag.String("tarball", "bin/image.tar", "the tarball to write for docker load")
	flag.Parse()
	if err := run(*binary, *arch, *chartDir, *version, *revision, *created, *out, *tarPath); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(binary, arch, chartDir, version, revision string, created int64, out, tarPath string) error {
	if binary == "" || arch == "" {
		return errors.New("--binary and --arch are required")
	}
	bin, err := os.ReadFile(binary)
	if err != nil {
		return err
	}
	ref, source, err := ChartReference(chartDir)
	if err != nil {
		return err
	}
	img, err := Build(Options{Binary: bin, Arch: arch, Version: version, Revision: revision, Source: source, Created: time.Unix(created, 0).UTC()})
	if err != nil {
		return err
	}
	if err := Write(img, ref, out, tarPath); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	size, err := compressedSize(img)
	if err != nil {
		return err
	}
	fmt.Printf("%s@%s (%d bytes compressed) in %s and %s\n", ref.Name(), digest, size, out, tarPath)
	return nil
}

// ChartReference returns the image reference the chart's default values
// name (image.registry/image.repository:appVersion) and the chart's home,
// the source repository.
func ChartReference(chartDir string) (name.Tag, string, error) {
	var chart struct {
		AppVersion string `json:"appVersion"`
		Home       string `json:"home"`
	}
	var values struct {
		Image struct {
			Registry   string `json:"registry"`
			Repository string `json:"repository"`
		} `json:"image"`
	}
	for file, v := range map[string]any{"Chart.yaml": &chart, "values.yaml": &values} {
		raw, err := os.ReadFile(filepath.Join(chartDir, file))
		if err != nil {
			return name.Tag{}, "", err
		}
		if err := yaml.Unmarshal(raw, v); err != nil {
			return name.Tag{}, "", fmt.Errorf("%s: %w", file, err)
		}
	}
	ref, err := name.NewTag(values.Image.Registry+"/"+values.Image.Repository+":"+chart.AppVersion, name.StrictValidation)
	return ref, chart.Home, err
}

// Build assembles the image.
func Build(o Options) (v1.Image, error) {
	rootfs, err := RootFS(o.Binary, o.Created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(rootfs)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	labels := map[string]string{
		"org.opencontainers.image.title":       "spiffe-entra-gateway",
		"org.opencontainers.image.description": "SPIFFE workloads reaching Microsoft Entra ID with no secrets",
		"org.opencontainers.image.source":      o.Source,
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.revision":    o.Revision,
		"org.opencontainers.image.created":     o.Created.Format(time.RFC3339),
	}
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: o.Arch,
		OS:           "linux",
		Config: v1.Config{
			User:       User,
			Entrypoint: []string{BinaryPath},
			WorkingDir: "/",
			// Go reads this file first on Linux anyway; the variable says
			// where the roots are to anyone inspecting the image.
			Env:          []string{"SSL_CERT_FILE=" + CAFile},
			ExposedPorts: map[string]struct{}{"8443/tcp": {}, "9443/tcp": {}, "8008/tcp": {}, "9090/tcp": {}},
			Labels:       labels,
		},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, err
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: o.Created}, CreatedBy: "make image", Comment: "the static gateway binary, CA certificates, users"},
	})
	if err != nil {
		return nil, err
	}
	img, err = mutate.CreatedAt(img, v1.Time{Time: o.Created})
	if err != nil {
		return nil, err
	}
	return mutate.Annotations(img, labels).(v1.Image), nil
}

// Write replaces the OCI image layout at dir with one holding img named
// ref, and writes the tarball for docker load at tarPath.
func Write(img v1.Image, ref name.Tag, dir, tarPath string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		// The tag by OCI's convention, and the full name as containerd and
		// podman read it.
		"org.opencontainers.image.ref.name": ref.TagStr(),
		"io.containerd.image.name":          ref.Name(),
	})); err != nil {
		return err
	}
	return tarball.WriteToFile(tarPath, ref, img)
}

func compressedSize(img v1.Image) (int64, error) {
	layers, err := img.Layers()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, l := range layers {
		s, err := l.Size()
		if err != nil {
			return 0, err
		}
		n += s
	}
	return n, nil
}

// entry is one file or directory of the root filesystem.
type entry struct {
	mode     int64
	uid, gid int
	body     []byte // nil for a directory
}

// RootFS returns the image's only layer, an uncompressed tar: entries
// sorted by path, owned by root unless they are the non-root user's, every
// time created, no world-writable path.
func RootFS(binary []byte, created time.Time) ([]byte, error) {
	roots, err := CACertificates()
	if err != nil {
		return nil, err
	}
	uid, gid := userIDs()
	files := map[string]entry{
		"etc/passwd": {mode: 0o644, body: []byte("root:x:0:0:root:/root:/sbin/nologin\n" +
			"nonroot:x:" + strconv.Itoa(uid) + ":" + strconv.Itoa(gid) + ":nonroot:/home/nonroot:/sbin/nologin\n")},
		"etc/group":                         {mode: 0o644, body: []byte("root:x:0:\nnonroot:x:" + strconv.Itoa(gid) + ":\n")},
		strings.TrimPrefix(CAFile, "/"):     {mode: 0o644, body: roots},
		strings.TrimPrefix(BinaryPath, "/"): {mode: 0o755, body: binary},
		// The default data_dir, for a container run without a volume there.
		strings.TrimPrefix(DataDir, "/"): {mode: 0o700, uid: uid, gid: gid},
		"home/nonroot":                   {mode: 0o700, uid: uid, gid: gid},
	}
	// Every parent directory, owned by root.
	for p := range files {
		for d := filepath.Dir(p); d != "."; d = filepath.Dir(d) {
			if _, ok := files[d]; !ok {
				files[d] = entry{mode: 0o755}
			}
		}
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		e := files[p]
		h := &tar.Header{Name: p, Mode: e.mode, Uid: e.uid, Gid: e.gid, ModTime: created, Format: tar.FormatUSTAR}
		if e.body == nil {
			h.Typeflag, h.Name = tar.TypeDir, p+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func userIDs() (uid, gid int) {
	u, g, _ := strings.Cut(User, ":")
	uid, _ = strconv.Atoi(u)
	gid, _ = strconv.Atoi(g)
	return uid, gid
}

// CACertificates returns, as PEM, the roots of the pinned
// golang.org/x/crypto/x509roots/fallback bundle that carry no extra
// constraint. A root that NSS distrusts after a date cannot say so in a PEM
// file: it is left out rather than trusted without its limit.
func CACertificates() ([]byte, error) {
	var out bytes.Buffer
	for r := range bundle.Roots() {
		if r.Constraint != nil {
			continue
		}
		if err := pem.Encode(&out, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate}); err != nil {
			return nil, err
		}
	}
	if out.Len() == 0 {
		return nil, errors.New("the fallback bundle holds no unconstrained root")
	}
	return out.Bytes(), nil
}
