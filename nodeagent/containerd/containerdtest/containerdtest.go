// Package containerdtest gives a test its own containerd daemon, started
// with package containerd under a fresh directory and torn down in
// t.Cleanup even when the test fails: every task is killed, every
// container and namespace removed, the daemon stopped and leftover mounts
// under its directory unmounted. It needs root and Debian's containerd and
// runc; when they are missing the test fails, it does not skip.
package containerdtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"weir.dev/weir/nodeagent/containerd"
)

// Daemon is a test's containerd.
type Daemon struct {
	Dir     string
	Address string
	Client  *client.Client
}

// Start starts a daemon for t and connects a client to it.
func Start(t testing.TB) *Daemon {
	t.Helper()
	for _, bin := range []string{"containerd", "containerd-shim-runc-v2", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			if _, err2 := os.Stat(filepath.Join("/usr/sbin", bin)); err2 != nil {
				t.Fatalf("%s not found (run make deps): %v", bin, err)
			}
		}
	}
	if os.Geteuid() != 0 {
		t.Fatalf("containerd tests need root")
	}
	// A short path: unix socket paths are limited to 107 bytes.
	dir, err := os.MkdirTemp("", "weircd")
	if err != nil {
		t.Fatal(err)
	}
	d, err := containerd.Ensure(t.Context(), containerd.Config{Dir: dir})
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("start containerd: %v", err)
	}
	c, err := client.New(d.Address, client.WithTimeout(10*time.Second))
	t.Cleanup(func() { cleanup(t, dir, c) })
	if err != nil {
		t.Fatalf("connect to containerd: %v", err)
	}
	return &Daemon{Dir: dir, Address: d.Address, Client: c}
}

func cleanup(t testing.TB, dir string, c *client.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if c != nil {
		if nss, err := c.NamespaceService().List(ctx); err == nil {
			for _, ns := range nss {
				removeAll(ctx, t, c, ns)
			}
		}
		c.Close()
	}
	if err := containerd.Stop(ctx, dir, 10*time.Second); err != nil {
		t.Logf("stop containerd: %v", err)
	}
	unmountUnder(t, dir)
	if err := os.RemoveAll(dir); err != nil {
		t.Logf("remove %s: %v", dir, err)
	}
}

func removeAll(ctx context.Context, t testing.TB, c *client.Client, ns string) {
	ctx = namespaces.WithNamespace(ctx, ns)
	ctrs, err := c.Containers(ctx)
	if err != nil {
		t.Logf("list containers in %s: %v", ns, err)
		return
	}
	for _, ctr := range ctrs {
		if task, err := ctr.Task(ctx, nil); err == nil {
			_ = task.Kill(ctx, syscall.SIGKILL, client.WithKillAll)
			if ch, err := task.Wait(ctx); err == nil {
				select {
				case <-ch:
				case <-time.After(10 * time.Second):
				}
			}
			if _, err := task.Delete(ctx, client.WithProcessKill); err != nil {
				t.Logf("delete task %s: %v", ctr.ID(), err)
			}
		}
		if err := ctr.Delete(ctx, client.WithSnapshotCleanup); err != nil {
			t.Logf("delete container %s: %v", ctr.ID(), err)
		}
	}
	imgs, _ := c.ImageService().List(ctx)
	for _, img := range imgs {
		_ = c.ImageService().Delete(ctx, img.Name)
	}
	_ = c.NamespaceService().Delete(ctx, ns)
}

// unmountUnder lazily unmounts every mount below dir, deepest first.
func unmountUnder(t testing.TB, dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mps []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			mps = append(mps, f[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(mps)))
	for _, mp := range mps {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil {
			t.Logf("unmount %s: %v", mp, err)
		}
	}
}
