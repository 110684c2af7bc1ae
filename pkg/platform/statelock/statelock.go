// Package statelock keeps a second gateway process off state that one
// process owns (a development data directory, a SQLite database): an
// exclusive advisory lock on a file, taken without waiting, which records
// the holder's process id so that the refusal can name it.
package statelock

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Lock is a held lock; the kernel releases it when the process ends, even
// on kill -9, so a stale lock file never blocks a restart.
type Lock struct{ f *os.File }

// HeldError is the refusal when another process holds the lock.
type HeldError struct {
	What string // what the lock guards, such as "data directory /srv/data"
	Path string // the lock file
	PID  int    // the holder's process id, 0 when it has not written it yet
}

func (e *HeldError) Error() string {
	holder := "another process"
	if e.PID > 0 {
		holder = "process " + strconv.Itoa(e.PID)
	}
	return fmt.Sprintf("%s is in use by another gateway: %s holds the lock %s; stop that gateway, or give this one its own", e.What, holder, e.Path)
}

// Acquire takes the exclusive lock on path, creating the file, for the
// state described by what. It does not wait: when another process holds
// the lock it returns a *HeldError naming it.
func Acquire(path, what string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s: the lock %s cannot be opened: %w", what, path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		raw, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
			return nil, &HeldError{What: what, Path: path, PID: pid}
		}
		return nil, fmt.Errorf("%s: locking %s: %w", what, path, err)
	}
	if err = f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: writing the lock %s: %w", what, path, err)
	}
	return &Lock{f: f}, nil
}

// Release gives the lock up. The file stays: removing it would let a
// third process lock a new file while a second still waits on the old one.
func (l *Lock) Release() error {
	if l == nil {
		return nil
	}
	return l.f.Close()
}
