package podnet

import (
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"

	"weir.dev/weir/nodeagent/ipam"
	"weir.dev/weir/test/netns"
	"weir.dev/weir/test/topology"
)

// newNetwork builds a Network in a fresh node namespace of its own.
func newNetwork(t *testing.T, cidr string) (*Network, string) {
	t.Helper()
	node := netns.New(t, "wnode")
	alloc, err := ipam.New(t.TempDir(), netip.MustParsePrefix(cidr))
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{NodeNetNS: "/run/netns/" + node, Bridge: "weir0", NetNSPrefix: topology.UniqueName(t, "wp") + "-", Forwarding: true}, alloc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.EnsureBridge(t.Context()); err != nil {
		t.Fatal(err)
	}
	return n, node
}

func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPodsOnOneBridge(t *testing.T) {
	n, node := newNetwork(t, "10.244.5.0/24")
	ctx := t.Context()
	var atts []*Attachment
	for _, id := range []string{"0b5e1c1e-aaaa-4bbb-8ccc-000000000001", "0b5e1c1e-aaaa-4bbb-8ccc-000000000002"} {
		a, err := n.Setup(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Teardown(ctx, id) })
		atts = append(atts, a)
	}
	a, b := atts[0], atts[1]
	if a.IP != netip.MustParseAddr("10.244.5.2") || b.IP != netip.MustParseAddr("10.244.5.3") {
		t.Errorf("addresses %s, %s; want 10.244.5.2, 10.244.5.3", a.IP, b.IP)
	}
	if a.Gateway != netip.MustParseAddr("10.244.5.1") {
		t.Errorf("gateway %s", a.Gateway)
	}
	// Pod side: eth0 with the address, default route via the bridge.
	out := sh(t, "nsenter", "--net="+a.NetNSPath, "ip", "-4", "-o", "addr", "show", "eth0")
	if !strings.Contains(out, "10.244.5.2/24") {
		t.Errorf("eth0 in pod: %s", out)
	}
	out = sh(t, "nsenter", "--net="+a.NetNSPath, "ip", "route", "show", "default")
	if !strings.Contains(out, "default via 10.244.5.1 dev eth0") {
		t.Errorf("default route in pod: %s", out)
	}
	// Node side: the veth is a bridge port with hairpin on.
	out = sh(t, "ip", "netns", "exec", node, "ip", "-d", "link", "show", a.HostIfName)
	if !strings.Contains(out, "master weir0") || !strings.Contains(out, "hairpin on") {
		t.Errorf("host veth: %s", out)
	}
	// Pod to pod and pod to gateway.
	sh(t, "nsenter", "--net="+a.NetNSPath, "busybox", "ping", "-c", "1", "-W", "2", b.IP.String())
	sh(t, "nsenter", "--net="+b.NetNSPath, "busybox", "ping", "-c", "1", "-W", "2", a.Gateway.String())

	// Setup again (an agent restart) keeps everything.
	again, err := n.Setup(ctx, "0b5e1c1e-aaaa-4bbb-8ccc-000000000001")
	if err != nil {
		t.Fatal(err)
	}
	if again.IP != a.IP || again.HostIfIndex != a.HostIfIndex || again.PodMAC.String() != a.PodMAC.String() {
		t.Errorf("second Setup: %+v, want %+v", again, a)
	}

	// Teardown removes the veth and the namespace and frees the address.
	if err := n.Teardown(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if err := n.Teardown(ctx, a.ID); err != nil {
		t.Errorf("second Teardown: %v", err)
	}
	if _, err := os.Stat(a.NetNSPath); !os.IsNotExist(err) {
		t.Errorf("namespace %s still there: %v", a.NetNSPath, err)
	}
	nodeNS, _ := vnetns.GetFromName(node)
	defer nodeNS.Close()
	h, _ := netlink.NewHandleAt(nodeNS)
	defer h.Close()
	if _, err := h.LinkByName(a.HostIfName); err == nil {
		t.Errorf("veth %s still there", a.HostIfName)
	}
	if _, ok, _ := n.alloc.Lookup(a.ID); ok {
		t.Errorf("address of %s not released", a.ID)
	}
	fwd := sh(t, "ip", "netns", "exec", node, "cat", "/proc/sys/net/ipv4/ip_forward")
	if strings.TrimSpace(fwd) != "1" {
		t.Errorf("ip_forward in node namespace = %s", fwd)
	}
}

func TestSyncRoutes(t *testing.T) {
	n, node := newNetwork(t, "10.244.6.0/24")
	ctx := t.Context()
	steps := []struct {
		name   string
		routes []Route
		want   []string
	}{
		{"add two", []Route{
			{netip.MustParsePrefix("10.244.7.0/24"), netip.MustParseAddr("10.244.6.200")},
			{netip.MustParsePrefix("10.244.8.0/24"), netip.MustParseAddr("10.244.6.201")}},
			[]string{"10.244.7.0/24 via 10.244.6.200", "10.244.8.0/24 via 10.244.6.201"}},
		{"change one, drop one", []Route{
			{netip.MustParsePrefix("10.244.7.0/24"), netip.MustParseAddr("10.244.6.202")}},
			[]string{"10.244.7.0/24 via 10.244.6.202"}},
		{"none", nil, nil},
	}
	for _, s := range steps {
		if err := n.SyncRoutes(ctx, s.routes); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		out := sh(t, "ip", "netns", "exec", node, "ip", "-4", "route", "show", "proto", "0x57")
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if f := strings.Fields(l); len(f) >= 3 {
				got = append(got, f[0]+" via "+f[2])
			}
		}
		if strings.Join(got, ",") != strings.Join(s.want, ",") {
			t.Errorf("%s: routes %v, want %v", s.name, got, s.want)
		}
	}
	// Routes not tagged by weir are left alone.
	sh(t, "ip", "netns", "exec", node, "ip", "route", "add", "10.250.0.0/24", "via", "10.244.6.9")
	if err := n.SyncRoutes(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if out := sh(t, "ip", "netns", "exec", node, "ip", "route", "show", "10.250.0.0/24"); !strings.Contains(out, "10.250.0.0/24") {
		t.Errorf("foreign route removed")
	}
}
