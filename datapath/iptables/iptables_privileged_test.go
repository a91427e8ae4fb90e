package iptables

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"weir.dev/weir/datapath"
	"weir.dev/weir/test/netns"
)

// newNode makes a network namespace with two backend addresses on lo and a
// route that lets connects to the service range leave the socket layer.
func newNode(t *testing.T) string {
	name := netns.New(t, "ipt")
	for _, c := range [][]string{
		{"ip", "addr", "add", "10.180.0.1/32", "dev", "lo"},
		{"ip", "addr", "add", "10.180.0.2/32", "dev", "lo"},
		{"ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"},
		{"ip", "link", "set", "v0", "up"},
		{"ip", "link", "set", "v1", "up"},
		{"ip", "addr", "add", "10.99.0.1/24", "dev", "v0"},
		{"ip", "route", "add", "172.30.0.0/16", "dev", "v0"},
	} {
		netns.Exec(t, name, c...)
	}
	return name
}

// serve answers each connection with the address it listens on.
func serve(t *testing.T, ns, addr string) {
	netns.Do(t, ns, func() {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("listen %s: %v", addr, err)
			return
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				fmt.Fprintf(c, "%s\n", addr)
				c.Close()
			}
		}()
	})
}

// dial connects to the VIP from inside ns and returns the backend's answer.
func dial(t *testing.T, ns, addr string) (string, error) {
	var got string
	var derr error
	netns.Do(t, ns, func() {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			derr = err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		got, derr = bufio.NewReader(c).ReadString('\n')
		got = strings.TrimSpace(got)
	})
	return got, derr
}

func TestIPTablesDataplaneInNamespace(t *testing.T) {
	for _, backend := range []Backend{BackendNFT, BackendLegacy} {
		t.Run(string(backend), func(t *testing.T) {
			ns := newNode(t)
			serve(t, ns, "10.180.0.1:8080")
			serve(t, ns, "10.180.0.2:8080")
			d, err := New(Config{Backend: backend, Exec: []string{"ip", "netns", "exec", ns}})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			port := datapath.Port{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80,
				Backends: []datapath.Backend{be("10.180.0.1", 8080, "n1"), be("10.180.0.2", 8080, "n1")}}
			st := &datapath.State{NodeName: "n1", Services: []datapath.Service{svc("default", "web", "172.30.0.41", port)}}
			if err := d.Apply(ctx, st); err != nil {
				t.Fatal(err)
			}
			if !d.LastSync.Full {
				t.Errorf("first sync was not full")
			}
			seen := map[string]int{}
			for range 60 {
				got, err := dial(t, ns, "172.30.0.41:80")
				if err != nil {
					t.Fatalf("connect through the VIP: %v", err)
				}
				seen[got]++
			}
			if seen["10.180.0.1:8080"] == 0 || seen["10.180.0.2:8080"] == 0 {
				t.Fatalf("connections did not spread over both endpoints: %v", seen)
			}

			// One endpoint leaves: a partial sync, and it gets nothing more.
			st.Services[0].Ports[0].Backends = st.Services[0].Ports[0].Backends[:1]
			if err := d.Apply(ctx, st); err != nil {
				t.Fatal(err)
			}
			if d.LastSync.Full {
				t.Errorf("one-endpoint change did a full sync")
			}
			for range 20 {
				if got, err := dial(t, ns, "172.30.0.41:80"); err != nil || got != "10.180.0.1:8080" {
					t.Fatalf("after removing 10.180.0.2: got %q %v", got, err)
				}
			}

			// No endpoints: refused at once, not a timeout.
			st.Services[0].Ports[0].Backends = nil
			if err := d.Apply(ctx, st); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = dial(t, ns, "172.30.0.41:80")
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("no endpoints: got %v, want connection refused", err)
			}
			if time.Since(start) > time.Second {
				t.Fatalf("refusal took %s", time.Since(start))
			}

			// A restarted agent (a new Dataplane) full-syncs and deletes
			// the chains of services that are gone.
			d2, _ := New(Config{Backend: backend, Exec: []string{"ip", "netns", "exec", ns}})
			if err := d2.Apply(ctx, &datapath.State{NodeName: "n1"}); err != nil {
				t.Fatal(err)
			}
			left, err := d2.existingChains(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(left) != 0 {
				t.Fatalf("stale chains after a full sync: %v", left)
			}
			if err := d2.Remove(ctx); err != nil {
				t.Fatalf("remove: %v", err)
			}
			out, _ := exec.Command("ip", "netns", "exec", ns, d2.bin("iptables-save")).Output()
			if strings.Contains(string(out), "KUBE-") {
				t.Fatalf("rules left after Remove:\n%s", out)
			}
		})
	}
}
