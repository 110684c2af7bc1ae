package seed

import (
	"bytes"
	"context"
	"os"
	"time"
)

// ApplyFile applies the seed file at path and returns the content it
// applied, for Watch.
func (a *Applier) ApplyFile(ctx context.Context, path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return data, a.applyData(ctx, data)
}

func (a *Applier) applyData(ctx context.Context, data []byte) error {
	f, err := Parse(data)
	if err != nil {
		return err
	}
	return a.Apply(ctx, f)
}

// Watch applies the seed file at path again whenever its content differs
// from applied (what ApplyFile or Apply last took), checking every
// interval, until ctx ends: a change made between the first apply and the
// start of the watch is not missed. A changed file that fails to apply is
// logged, the previous state kept, and tried again on its next change.
//
// It polls rather than using inotify because Kubernetes updates ConfigMap
// volumes by swapping a symlink, which file watches miss without care.
func (a *Applier) Watch(ctx context.Context, path string, applied []byte, interval time.Duration) {
	last := applied
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
