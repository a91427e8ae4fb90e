package containerd

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestEnsureStartsAndReuses starts a daemon, checks it runs in its own
// session with its own files, that a second Ensure reuses it, and that
// Stop ends it.
func TestEnsureStartsAndReuses(t *testing.T) {
	dir, err := os.MkdirTemp("", "weircd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = Stop(t.Context(), dir, 5*time.Second)
		os.RemoveAll(dir)
	})
	ctx := t.Context()
	start := time.Now()
	d, err := Ensure(ctx, Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("containerd started in %v", time.Since(start))
	if !d.Started {
		t.Errorf("first Ensure: Started = false")
	}
	sid, err := unix.Getsid(d.PID)
	if err != nil {
		t.Fatal(err)
	}
	if sid != d.PID {
		t.Errorf("daemon session id %d, want its own (%d)", sid, d.PID)
	}
	if sid == syscall.Getpid() || sid == mustSid(t) {
		t.Errorf("daemon shares the test's session")
	}
	for _, f := range []string{"config.toml", "containerd.sock", "containerd.pid", "root", "state"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	cfg, _ := os.ReadFile(filepath.Join(dir, "config.toml"))
	if !strings.Contains(string(cfg), `"io.containerd.grpc.v1.cri"`) {
		t.Errorf("config does not disable CRI:\n%s", cfg)
	}

	d2, err := Ensure(ctx, Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if d2.Started || d2.PID != d.PID {
		t.Errorf("second Ensure: started=%v pid=%d, want reuse of pid %d", d2.Started, d2.PID, d.PID)
	}

	if err := Stop(ctx, dir, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.exited:
	case <-time.After(5 * time.Second):
		t.Fatal("daemon did not exit after Stop")
	}
	d3, err := Ensure(ctx, Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !d3.Started || d3.PID == d.PID {
		t.Errorf("Ensure after Stop: started=%v pid=%d, want a new daemon", d3.Started, d3.PID)
	}
}

func mustSid(t *testing.T) int {
	sid, err := unix.Getsid(0)
	if err != nil {
		t.Fatal(err)
	}
	return sid
}

// TestRunRestartsDaemon kills the supervised daemon with SIGKILL and
// expects Run to start a new one.
func TestRunRestartsDaemon(t *testing.T) {
	dir, err := os.MkdirTemp("", "weircd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = Stop(context.Background(), dir, 5*time.Second)
		os.RemoveAll(dir)
	})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pids := make(chan int, 4)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Config{Dir: dir}, 50*time.Millisecond, func(d *Daemon) { pids <- d.PID }) }()
	first := <-pids
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case second := <-pids:
		if second == first {
			t.Errorf("restarted daemon has the old pid %d", first)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("daemon not restarted")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if _, ok := runningPID(dir); !ok {
		t.Error("daemon stopped with its supervisor")
	}
}
