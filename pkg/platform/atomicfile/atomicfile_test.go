package atomicfile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/atomicfile"
)

// A leftover or planted file beside the target, such as PATH.tmp made
// readable by others, never receives the content.
func TestWriteIgnoresFilesPreparedBesideIt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key.pem")
	planted := path + ".tmp"
	if err := os.WriteFile(planted, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.Write(path, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(planted); len(got) != 0 {
		t.Fatalf("the planted file received %q", got)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	if got, _ := os.ReadFile(path); string(got) != "secret" {
		t.Fatalf("content %q", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("%d files left in the directory, want the target and the planted one", len(entries))
	}
}

func TestWriteReplacesAtTheGivenMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	for _, content := range []string{"one", "two"} {
		if err := atomicfile.Write(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := os.ReadFile(path); string(got) != "two" {
		t.Fatalf("content %q, want the last write", got)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v, want 0644", fi.Mode().Perm())
	}
}
