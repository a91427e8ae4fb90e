package etcdproc

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func newClient(t *testing.T, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("etcd client for %v: %v", endpoints, err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func put(t *testing.T, cli *clientv3.Client, key, val string, timeout time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	_, err := cli.Put(ctx, key, val)
	return err
}

func mustGet(t *testing.T, cli *clientv3.Client, key, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, key) // linearizable: sees every committed put
	if err != nil {
		t.Fatalf("get %s via %v: %v", key, cli.Endpoints(), err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != want {
		t.Fatalf("get %s via %v = %v, want %q", key, cli.Endpoints(), resp.Kvs, want)
	}
}

func TestStartSingle(t *testing.T) {
	c := Start(t)
	if len(c.Members) != 1 || len(c.Endpoints()) != 1 {
		t.Fatalf("Start: %d members, endpoints %v; want 1", len(c.Members), c.Endpoints())
	}
	m := c.Members[0]
	if !strings.HasPrefix(m.ClientURL, "http://127.0.0.1:") || !strings.HasPrefix(m.PeerURL, "http://127.0.0.1:") {
		t.Fatalf("member URLs %q, %q: want loopback", m.ClientURL, m.PeerURL)
	}
	cli := newClient(t, c.Endpoints()...)
	if err := put(t, cli, "/weir/single", "v1", 10*time.Second); err != nil {
		t.Fatalf("put: %v", err)
	}
	mustGet(t, cli, "/weir/single", "v1")

	// Kill and Restart keep the data.
	if err := m.Kill(); err != nil {
		t.Fatalf("kill: %v", err)
	}
	if err := m.Kill(); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("second kill = %v, want ErrNotRunning", err)
	}
	if err := m.Restart(t); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if err := m.Restart(t); err == nil {
		t.Fatal("restart of a running member succeeded, want an error")
	}
	mustGet(t, newClient(t, m.ClientURL), "/weir/single", "v1")
}

func TestCleanupKillsProcesses(t *testing.T) {
	var pids []int
	t.Run("cluster", func(t *testing.T) {
		for _, m := range StartCluster(t, 2).Members {
			pids = append(pids, m.Pid())
		}
	})
	if len(pids) != 2 {
		t.Fatalf("got pids %v, want 2", pids)
	}
	for _, pid := range pids {
		if pid == 0 {
			t.Fatalf("member had no pid: %v", pids)
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("etcd pid %d after cleanup: kill(0) = %v, want ESRCH", pid, err)
		}
	}
}

func TestClusterQuorum(t *testing.T) {
	c := StartCluster(t, 3)
	if got := len(c.Endpoints()); got != 3 {
		t.Fatalf("endpoints %v, want 3", c.Endpoints())
	}
	m0, m1, m2 := c.Members[0], c.Members[1], c.Members[2]
	seen := map[string]bool{}
	for _, m := range c.Members {
		for _, u := range []string{m.ClientURL, m.PeerURL} {
			if seen[u] {
				t.Fatalf("URL %s used twice", u)
			}
			seen[u] = true
		}
	}

	// Written through one member, read through another.
	if err := put(t, newClient(t, m0.ClientURL), "/weir/k", "v1", 10*time.Second); err != nil {
		t.Fatalf("put via %s: %v", m0.Name, err)
	}
	cli2 := newClient(t, m2.ClientURL)
	mustGet(t, cli2, "/weir/k", "v1")

	// One of three down: a quorum remains and writes succeed. If m0 led, a
	// request in flight at the kill fails with "request timed out, possibly
	// due to previous leader failure"; WaitHealthy waits for the new leader.
	if err := m0.Kill(); err != nil {
		t.Fatalf("kill %s: %v", m0.Name, err)
	}
	c.WaitHealthy(t)
	if err := put(t, newClient(t, m1.ClientURL), "/weir/k", "v2", 15*time.Second); err != nil {
		t.Fatalf("put with one member down: %v", err)
	}
	mustGet(t, cli2, "/weir/k", "v2")

	// Two of three down: no quorum, a write cannot commit.
	if err := m1.Kill(); err != nil {
		t.Fatalf("kill %s: %v", m1.Name, err)
	}
	if err := put(t, cli2, "/weir/k", "v3", 2*time.Second); err == nil {
		t.Fatal("put with two of three members down succeeded, want an error")
	} else {
		t.Logf("put without quorum failed as expected: %v", err)
	}

	// Restarting one member restores the quorum; the restarted member has
	// kept its data and catches up.
	if err := m1.Restart(t); err != nil {
		t.Fatalf("restart %s: %v", m1.Name, err)
	}
	if err := put(t, cli2, "/weir/k", "v4", 15*time.Second); err != nil {
		t.Fatalf("put after restart: %v", err)
	}
	mustGet(t, newClient(t, m1.ClientURL), "/weir/k", "v4")

	// A member restarted without a quorum answers but is not healthy until
	// the quorum returns.
	if err := m1.Kill(); err != nil {
		t.Fatalf("kill %s: %v", m1.Name, err)
	}
	if err := m2.Kill(); err != nil {
		t.Fatalf("kill %s: %v", m2.Name, err)
	}
	if err := m0.Restart(t); err != nil {
		t.Fatalf("restart %s alone: %v", m0.Name, err)
	}
	if err := m2.Restart(t); err != nil {
		t.Fatalf("restart %s: %v", m2.Name, err)
	}
	c.WaitHealthy(t)
	mustGet(t, newClient(t, m0.ClientURL), "/weir/k", "v4")
}
