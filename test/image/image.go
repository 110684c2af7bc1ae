// Package image checks the gateway's OCI image as make image writes it:
// its configuration and the files of its root filesystem.
package image

import (
	"archive/tar"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// Want is what the image must say about itself.
type Want struct {
	Version, Source string
}

// Files are the only regular files the image may hold.
var Files = []string{
	"etc/group",
	"etc/passwd",
	"etc/ssl/certs/ca-certificates.crt",
	"usr/local/bin/spiffe-entra-gateway",
}

// Open reads the one image of the OCI image layout at dir and the
// reference its index names it by.
func Open(dir string) (v1.Image, string, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, "", err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, "", err
	}
	if len(m.Manifests) != 1 {
		return nil, "", fmt.Errorf("%d manifests in %s, want 1", len(m.Manifests), dir)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	return img, m.Manifests[0].Annotations["io.containerd.image.name"], err
}

// Check returns every way img differs from the image the chart expects:
// user 65532, the binary as entrypoint, the OCI labels, and a root
// filesystem of the binary, CA certificates and users alone, with no shell
// and nothing world-writable.
func Check(img v1.Image, want Want) []error {
	var errs []error
	cf, err := img.ConfigFile()
	if err != nil {
		return []error{err}
	}
	c := cf.Config
	if c.User != "65532:65532" {
		errs = append(errs, fmt.Errorf("user %q, want 65532:65532", c.User))
	}
	if len(c.Entrypoint) != 1 || c.Entrypoint[0] != "/usr/local/bin/spiffe-entra-gateway" {
		errs = append(errs, fmt.Errorf("entrypoint %q", c.Entrypoint))
	}
	if len(c.Cmd) != 0 || len(c.Shell) != 0 {
		errs = append(errs, fmt.Errorf("cmd %q shell %q: the chart gives the arguments", c.Cmd, c.Shell))
	}
	for k, v := range map[string]string{"org.opencontainers.image.source": want.Source, "org.opencontainers.image.version": want.Version} {
		if c.Labels[k] != v || v == "" {
			errs = append(errs, fmt.Errorf("label %s = %q, want %q", k, c.Labels[k], v))
		}
	}
	if cf.OS != "linux" || cf.Created.IsZero() {
		errs = append(errs, fmt.Errorf("os %q created %v", cf.OS, cf.Created))
	}
	files := map[string]bool{}
	err = walk(img, func(h *tar.Header, r io.Reader) error {
		name := strings.TrimSuffix(path.Clean(h.Name), "/")
		switch {
		case h.Typeflag == tar.TypeReg:
			files[name] = true
		case h.Typeflag != tar.TypeDir:
			errs = append(errs, fmt.Errorf("%s: type %c, want only files and directories (no links, no devices)", name, h.Typeflag))
		}
		if h.Mode&0o002 != 0 {
			errs = append(errs, fmt.Errorf("%s is world-writable (%o)", name, h.Mode))
		}
		if h.Mode&0o6000 != 0 {
			errs = append(errs, fmt.Errorf("%s is setuid or setgid (%o)", name, h.Mode))
		}
		if h.Typeflag == tar.TypeReg && h.Uid != 0 {
			errs = append(errs, fmt.Errorf("%s owned by %d: the user must not be able to change it", name, h.Uid))
		}
		if name == "etc/ssl/certs/ca-certificates.crt" {
			if n, err := countCertificates(r); err != nil || n < 100 {
				errs = append(errs, fmt.Errorf("CA certificates: %d, %w", n, err))
			}
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	for _, f := range Files {
		if !files[f] {
			errs = append(errs, fmt.Errorf("%s is missing", f))
		}
		delete(files, f)
	}
	for f := range files {
		errs = append(errs, fmt.Errorf("unexpected file %s (a shell, a package manager?)", f))
	}
	return errs
}

func countCertificates(r io.Reader) (int, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		var b *pem.Block
		b, raw = pem.Decode(raw)
		if b == nil {
			break
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return n, err
		}
		n++
	}
	if len(strings.TrimSpace(string(raw))) != 0 {
		return n, errors.New("trailing data after the certificates")
	}
	return n, nil
}

func walk(img v1.Image, fn func(*tar.Header, io.Reader) error) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(h, tr); err != nil {
			return err
		}
	}
}
