package filemode_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/filemode"
)

func perm(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestTightenNarrowsToTheOwnerAndSaysSo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	var logs bytes.Buffer
	if err := filemode.Tighten(dir, 0o700, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
		t.Fatal(err)
	}
	if m := perm(t, dir); m != 0o700 {
		t.Errorf("mode %v, want 0700", m)
	}
	if !strings.Contains(logs.String(), "tightened") || !strings.Contains(logs.String(), dir) {
		t.Errorf("the log does not say what changed:\n%s", logs.String())
	}
}

func TestTightenLeavesPrivateAndMissingPathsAlone(t *testing.T) {
	file := filepath.Join(t.TempDir(), "db")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, 0o400); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	if err := filemode.Tighten(file, 0o600, logger); err != nil || perm(t, file) != 0o400 {
		t.Errorf("a private file changed: %v %v", perm(t, file), err)
	}
	if err := filemode.Tighten(file+"-missing", 0o600, logger); err != nil {
		t.Errorf("a missing path: %v", err)
	}
	if logs.Len() != 0 {
		t.Errorf("nothing changed but the log says:\n%s", logs.String())
	}
}
