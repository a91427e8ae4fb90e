// Package netns gives tests network namespaces of their own: created with
// a unique name, entered on a locked thread for a function, deleted in
// t.Cleanup. It never touches the host's own namespace.
package netns

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	vnetns "github.com/vishvananda/netns"

	"weir.dev/weir/test/topology"
)

// New creates a namespace named prefix+random with lo up.
func New(t testing.TB, prefix string) string {
	t.Helper()
	name := topology.UniqueName(t, prefix)
	Sh(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	Exec(t, name, "ip", "link", "set", "lo", "up")
	return name
}

// Sh runs a command and fails the test on error.
func Sh(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// Exec runs a command inside ns.
func Exec(t testing.TB, ns string, args ...string) {
	t.Helper()
	Sh(t, append([]string{"ip", "netns", "exec", ns}, args...)...)
}

// Do runs f on an OS thread inside ns. Sockets f opens stay in ns. The
// thread is thrown away afterwards instead of being switched back, so the
// host's namespace is never at risk.
func Do(t testing.TB, ns string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		h, err := vnetns.GetFromName(ns)
		if err != nil {
			t.Errorf("open netns %s: %v", ns, err)
			return
		}
		defer h.Close()
		if err := vnetns.Set(h); err != nil {
			t.Errorf("enter netns %s: %v", ns, err)
			return
		}
		f()
	}()
	<-done
}

// Dialer returns a dial function (net.Dialer.DialContext's shape) whose
// connections are made from inside ns, for clients such as probes that
// must reach addresses only ns can route to. Each dial runs on a thread
// of its own that is thrown away, as in Do.
func Dialer(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type res struct {
			c   net.Conn
			err error
		}
		ch := make(chan res, 1)
		go func() {
			runtime.LockOSThread()
			h, err := vnetns.GetFromName(ns)
			if err != nil {
				ch <- res{nil, fmt.Errorf("open netns %s: %w", ns, err)}
				return
			}
			defer h.Close()
			if err := vnetns.Set(h); err != nil {
				ch <- res{nil, fmt.Errorf("enter netns %s: %w", ns, err)}
				return
			}
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			ch <- res{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
}
