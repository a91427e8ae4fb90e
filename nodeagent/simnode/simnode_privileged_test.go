package simnode_test

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"weir.dev/weir/nodeagent/simnode"
	"weir.dev/weir/test/topology"
)

func TestTwoNodesOnAnUnderlay(t *testing.T) {
	u := simnode.Underlay{Bridge: topology.UniqueName(t, "wul"), Prefix: netip.MustParsePrefix("10.199.7.0/24"), MTU: 1500}
	if err := u.Ensure(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = u.Remove() })
	var nodes []*simnode.Node
	for i := range 2 {
		name := topology.UniqueName(t, "n")
		n, err := u.EnsureNode(name, u.NodeIP(i))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = simnode.RemoveNode(name) })
		nodes = append(nodes, n)
	}
	// Ensure is idempotent.
	if _, err := u.EnsureNode(nodes[0].Name, nodes[0].IP); err != nil {
		t.Fatalf("second EnsureNode: %v", err)
	}

	// Node 0 serves; node 1 and the host reach it over the underlay.
	var ln net.Listener
	if err := nodes[0].Do(func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(nodes[0].IP.String(), "7000"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, c.RemoteAddr().(*net.TCPAddr).IP)
			c.Close()
		}
	}()
	read := func(c net.Conn) string {
		defer c.Close()
		buf := make([]byte, 64)
		n, _ := c.Read(buf)
		return strings.TrimSpace(string(buf[:n]))
	}
	var seen string
	if err := nodes[1].Do(func() error {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			return err
		}
		seen = read(c)
		return nil
	}); err != nil {
		t.Fatalf("node 1 to node 0: %v", err)
	}
	if seen != nodes[1].IP.String() {
		t.Fatalf("node 0 saw the client as %s, want node 1's %s", seen, nodes[1].IP)
	}
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatalf("host to node 0: %v", err)
	}
	if got := read(c); got != u.Gateway().String() {
		t.Fatalf("node 0 saw the host as %s, want the gateway %s", got, u.Gateway())
	}

	// A process started on a node is in its namespace and still sees the
	// host's cgroup and bpf file systems (ip netns exec would hide them).
	out, err := startOutput(nodes[1], "sh", "-c", "ip -4 -o addr show eth0; ls /sys/fs/cgroup | head -3")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, nodes[1].IP.String()+"/24") || strings.Count(strings.TrimSpace(out), "\n") < 1 {
		t.Fatalf("process output:\n%s", out)
	}
}

func startOutput(n *simnode.Node, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	var b strings.Builder
	cmd.Stdout, cmd.Stderr = &b, &b
	if err := n.Start(cmd); err != nil {
		return "", err
	}
	err := cmd.Wait()
	return b.String(), err
}
