package statelock

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSecondHolderRefusedWithTheFirstsPID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.lock")
	first, err := Acquire(path, "data directory /d")
	if err != nil {
		t.Fatal(err)
	}
	// A second open file description is a second holder, as another
	// process would be.
	_, err = Acquire(path, "data directory /d")
	var held *HeldError
	if !errors.As(err, &held) || held.PID != os.Getpid() {
		t.Fatalf("a second holder: %v", err)
	}
	for _, want := range []string{"data directory /d is in use by another gateway", "process " + strconv.Itoa(os.Getpid()), path} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	again, err := Acquire(path, "data directory /d")
	if err != nil {
		t.Fatalf("after the release: %v", err)
	}
	again.Release()
}

// TestLockOfAKilledProcessIsFree holds the lock in a child process, kills
// it, and takes the lock: a lock file left behind never blocks a restart.
func TestLockOfAKilledProcessIsFree(t *testing.T) {
	if os.Getenv("STATELOCK_HOLD") != "" {
		if _, err := Acquire(os.Getenv("STATELOCK_HOLD"), "held"); err != nil {
			os.Exit(2)
		}
		os.Stdout.WriteString("held\n")
		time.Sleep(time.Hour) // not select{}: with no other goroutine the runtime would end the process
	}
	path := filepath.Join(t.TempDir(), "gateway.lock")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockOfAKilledProcessIsFree$")
	cmd.Env = append(os.Environ(), "STATELOCK_HOLD="+path)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := out.Read(buf); err != nil || string(buf) != "held\n" {
		t.Fatalf("the child did not take the lock: %q %v", buf, err)
	}
	_, err := Acquire(path, "data directory /d")
	var held *HeldError
	if !errors.As(err, &held) || held.PID != cmd.Process.Pid {
		t.Fatalf("while the child holds it: %v", err)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	l, err := Acquire(path, "data directory /d")
	if err != nil {
		t.Fatalf("after the holder was killed: %v", err)
	}
	l.Release()
}
