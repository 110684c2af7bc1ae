package main

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/chart"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/image"
)

const chartDir = "../../charts/spiffe-entra-gateway"

func options(created time.Time) Options {
	return Options{Binary: []byte("a stand-in for the static binary"), Arch: "amd64", Version: "v1.2.3", Revision: "0123abcd",
		Source: "https://github.com/spiffe-entra-gateway/spiffe-entra-gateway", Created: created}
}

// write builds the image and writes the layout and the tarball under dir.
func write(t *testing.T, o Options, dir string) (layoutDir, tarPath string) {
	t.Helper()
	ref, _, err := ChartReference(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	img, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	layoutDir, tarPath = filepath.Join(dir, "image"), filepath.Join(dir, "image.tar")
	if err := Write(img, ref, layoutDir, tarPath); err != nil {
		t.Fatal(err)
	}
	return layoutDir, tarPath
}

// TestImageStructure checks the image as read back from the layout and
// from the tarball with go-containerregistry's readers.
func TestImageStructure(t *testing.T) {
	layoutDir, tarPath := write(t, options(time.Unix(1767225600, 0)), t.TempDir())
	img, ref, err := image.Open(layoutDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range image.Check(img, image.Want{Version: "v1.2.3", Source: "https://github.com/spiffe-entra-gateway/spiffe-entra-gateway"}) {
		t.Error(err)
	}
	cf, _ := img.ConfigFile()
	if cf.Architecture != "amd64" || !cf.Created.Equal(time.Unix(1767225600, 0)) || cf.Config.Labels["org.opencontainers.image.revision"] != "0123abcd" {
		t.Errorf("config %+v", cf)
	}
	// The name is the chart's default image reference.
	r, err := chart.Render(chartDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := r.Find("Deployment", "")
	if want := d.Value.(*appsv1.Deployment).Spec.Template.Spec.Containers[0].Image; ref != want {
		t.Errorf("the layout names %q, the chart's default is %q", ref, want)
	}
	fromTar, err := tarball.ImageFromPath(tarPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A docker-load tarball keeps the configuration (the image ID) and the
	// layers, not the manifest.
	a, _ := img.ConfigName()
	b, _ := fromTar.ConfigName()
	if a != b {
		t.Errorf("the layout's configuration is %s, the tarball's %s", a, b)
	}
}

// TestImageIsReproducible builds twice: the same inputs give the same
// layout and tarball byte for byte; another time gives another digest.
func TestImageIsReproducible(t *testing.T) {
	created := time.Unix(1767225600, 0)
	l1, t1 := write(t, options(created), t.TempDir())
	l2, t2 := write(t, options(created), t.TempDir())
	if a, b := tree(t, l1), tree(t, l2); len(a) < 5 || !maps.Equal(a, b) {
		t.Errorf("two layouts of the same inputs differ:\n%v\n%v", slices.Sorted(maps.Keys(a)), slices.Sorted(maps.Keys(b)))
	}
	if a, b := read(t, t1), read(t, t2); !bytes.Equal(a, b) {
		t.Error("two tarballs of the same inputs differ")
	}
	img1, _ := Build(options(created))
	img2, _ := Build(options(created.Add(time.Second)))
	d1, _ := img1.Digest()
	d2, _ := img2.Digest()
	if d1 == d2 {
		t.Error("the creation time does not reach the digest")
	}
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = string(read(t, p))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
