// Package filemode keeps the gateway's state private: a file or directory
// that others can read is narrowed to its owner, with a log line, or
// refused with the command that fixes it.
package filemode

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
)

// Tighten removes from path's mode every permission beyond want (0600
// for files, 0700 for directories), logging what it changed; a missing path
// is left alone.
func Tighten(path string, want fs.FileMode, logger *slog.Logger) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&^want == 0 {
		return nil
	}
	if err := os.Chmod(path, fi.Mode().Perm()&want); err != nil {
		return fmt.Errorf("%s is readable by others (%v) and cannot be tightened: %w; run chmod %o %s", path, fi.Mode().Perm(), err, want, path)
	}
	if logger != nil {
		logger.Warn("tightened the permissions of gateway state readable by others", "path", path, "was", fi.Mode().Perm().String(), "now", (fi.Mode().Perm() & want).String())
	}
	return nil
}
