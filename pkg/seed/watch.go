package seed

import (
	"bytes"
	"context"
	"os"
	"time"
)

// ApplyFile applies the seed file at path.
func (a *Applier) ApplyFile(ctx context.Context, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return a.applyData(ctx, data)
}

func (a *Applier) applyData(ctx context.Context, data []byte) error {
	f, err := Parse(data)
	if err != nil {
		return err
	}
	return a.Apply(ctx, f)
}

// Watch applies the seed file at path again whenever its content changes,
// checking every interval, until ctx ends. Call it after ApplyFile: it
// takes the content it first reads as applied. A changed file that fails to
// apply is logged, the previous state kept, and tried again on its next
// change.
//
// It polls rather than using inotify because Kubernetes updates ConfigMap
// volumes by swapping a symlink, which file watches miss without care.
func (a *Applier) Watch(ctx context.Context, path string, interval time.Duration) {
	last, _ := os.ReadFile(path)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		data, err := os.ReadFile(path)
		if err != nil {
			a.log().Warn("seed: cannot read the seed file; keeping the applied state", "path", path, "error", err)
			continue
		}
		if bytes.Equal(data, last) {
			continue
		}
		last = data
		if err := a.applyData(ctx, data); err != nil {
			a.log().Error("seed: the changed seed file was not applied", "path", path, "error", err)
			continue
		}
		a.log().Info("seed: applied the changed seed file", "path", path)
	}
}
