package ebpf

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/prometheus/client_golang/prometheus"

	"weir.dev/weir/test/netns"
	"weir.dev/weir/test/topology"
)

// TestUplinkLifecycle opens a node with an uplink, restarts it in every
// XDP mode and removes it: links are pinned and reused (same link, new
// program), conntrack survives a restart, the XDP link follows the mode,
// and Remove leaves nothing attached or pinned.
func TestUplinkLifecycle(t *testing.T) {
	ns := netns.New(t, "upl")
	netns.Exec(t, ns, "ip", "link", "add", "up0", "type", "veth", "peer", "name", "up1")
	netns.Exec(t, ns, "ip", "addr", "add", npNode+"/24", "dev", "up0")
	netns.Exec(t, ns, "ip", "link", "set", "up0", "up")
	netns.Exec(t, ns, "ip", "link", "set", "up1", "up")
	cg := filepath.Join(cgroupRoot, "weir-test-"+topology.UniqueName(t, "upl"))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeCgroup(t, cg) })
	cfg := Config{Node: topology.UniqueName(t, "upl"), CgroupPath: cg, Uplink: "up0"}
	t.Cleanup(func() { Remove(cfg) })

	var ifindex int
	inNS := func(f func()) { netns.Do(t, ns, f) }
	inNS(func() {
		if ifc, err := net.InterfaceByName("up0"); err == nil {
			ifindex = ifc.Index
		}
	})
	open := func(xdp XDPMode) *Dataplane {
		t.Helper()
		c := cfg
		c.XDP = xdp
		var d *Dataplane
		var err error
		inNS(func() { d, err = Open(t.Context(), c) })
		if err != nil {
			t.Fatalf("open with xdp %s: %v", xdp, err)
		}
		return d
	}
	attached := func(at ebpf.AttachType) int {
		t.Helper()
		var n int
		var err error
		inNS(func() {
			var r *link.QueryResult
			if r, err = link.QueryPrograms(link.QueryOptions{Target: ifindex, Attach: at}); err == nil {
				n = len(r.Programs)
			}
		})
		if err != nil {
			t.Fatalf("query %s programs: %v", at, err)
		}
		return n
	}
	linkID := func(pin string) link.ID {
		t.Helper()
		l, err := link.LoadPinnedLink(filepath.Join(cfg.PinDir(), "links", pin), nil)
		if err != nil {
			t.Fatalf("pinned link %s: %v", pin, err)
		}
		defer l.Close()
		info, err := l.Info()
		if err != nil {
			t.Fatal(err)
		}
		return info.ID
	}
	pinned := func(pin string) bool {
		_, err := os.Stat(filepath.Join(cfg.PinDir(), "links", pin))
		return err == nil
	}

	d := open(XDPOff)
	if attached(ebpf.AttachTCXIngress) != 1 || attached(ebpf.AttachTCXEgress) != 1 {
		t.Fatal("tcx ingress and egress programs not attached to up0")
	}
	ingressID := linkID(pinTCIngress)
	// A flow the programs would have made: it must survive restarts.
	k := tcnpCt4Key{Saddr: addrBits(mustAddr(npClient)), Daddr: addrBits(mustAddr(npNode)), Sport: htons(40000), Dport: htons(npNodePrt), Proto: 6}
	v := tcnpCt4Entry{NatSaddr: k.Saddr, NatDaddr: addrBits(mustAddr(npLocal1)), NatSport: k.Sport, NatDport: htons(8080), SvcId: 3}
	if err := d.np.tc.Ct4Flows.Put(&k, &v); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if attached(ebpf.AttachTCXIngress) != 1 {
		t.Fatal("closing the dataplane detached the uplink program: links must outlive the agent")
	}

	for _, mode := range []XDPMode{XDPGeneric, XDPNative, XDPOff} {
		d = open(mode)
		if id := linkID(pinTCIngress); id != ingressID {
			t.Fatalf("xdp %s: tc ingress link %d replaced by %d, want the pinned link reused", mode, ingressID, id)
		}
		if attached(ebpf.AttachTCXIngress) != 1 {
			t.Fatalf("xdp %s: %d tcx ingress programs", mode, attached(ebpf.AttachTCXIngress))
		}
		if pinned(pinXDPGeneric) != (mode == XDPGeneric) || pinned(pinXDPNative) != (mode == XDPNative) {
			t.Fatalf("xdp %s: generic pinned %v, native pinned %v", mode, pinned(pinXDPGeneric), pinned(pinXDPNative))
		}
		ct, err := ReadConntrack(cfg.PinDir())
		if err != nil {
			t.Fatal(err)
		}
		if len(ct) != 1 || ct[0].NATDst.String() != npLocal1+":8080" || ct[0].Proto != "tcp" {
			t.Fatalf("xdp %s: conntrack after restart %v, want the one flow", mode, ct)
		}
		c, err := d.Counters()
		if err != nil {
			t.Fatal(err)
		}
		if c.Uplink == nil || c.Uplink.XDP != mode || c.Uplink.Uplink != "up0" {
			t.Fatalf("xdp %s: counters report uplink %+v", mode, c.Uplink)
		}
		d.Close()
	}

	// Tables pinned with one Maglev size refuse another.
	d = open(XDPOff)
	if err := d.Apply(t.Context(), npState(nil, npBackend(npLocal1, "node"))); err != nil {
		t.Fatal(err)
	}
	if c, err := d.Counters(); err != nil || len(c.Uplink.Services) != 2 {
		t.Fatalf("counters after apply: %+v %v, want the tcp and udp ports", c.Uplink, err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(d))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				got[f.GetName()+"/"+l.GetName()+"="+l.GetValue()] = true
			}
		}
	}
	for _, want := range []string{"weir_dataplane_uplink_xdp_mode/mode=off", "weir_dataplane_uplink_flows_total/port=tcp",
		"weir_dataplane_drops_total/reason=no_local_backend", "weir_dataplane_service_connects_total/port=udp"} {
		if !got[want] {
			t.Errorf("metrics lack %s", want)
		}
	}
	d.Close()
	resized := cfg
	resized.MaglevSize = 4093
	inNS(func() { _, err = Open(t.Context(), resized) })
	if !errors.Is(err, ebpf.ErrMapIncompatible) || !strings.Contains(err.Error(), "maglev") {
		t.Fatalf("open with another maglev size: %v, want a map-incompatible error naming the tables", err)
	}

	if err := Remove(cfg); err != nil {
		t.Fatal(err)
	}
	if n := attached(ebpf.AttachTCXIngress) + attached(ebpf.AttachTCXEgress); n != 0 {
		t.Fatalf("%d tcx programs left on up0 after Remove", n)
	}
	if _, err := os.Stat(cfg.PinDir()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pin dir %s left after Remove: %v", cfg.PinDir(), err)
	}
	if _, err := ReadConntrack(cfg.PinDir()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadConntrack after Remove: %v, want not exist", err)
	}
}

func TestConfigXDPNeedsUplink(t *testing.T) {
	_, err := Config{Node: "n", CgroupPath: "/x", XDP: XDPGeneric}.withDefaults()
	if err == nil {
		t.Fatal("xdp without an uplink accepted")
	}
	if _, err := (Config{Node: "n", CgroupPath: "/x", Uplink: "eth0", XDP: "fast"}).withDefaults(); err == nil {
		t.Fatal("xdp mode fast accepted")
	}
	if _, err := (Config{Node: "n", CgroupPath: "/x", Uplink: "eth0", MaglevSize: 1000}).withDefaults(); err == nil {
		t.Fatal("maglev size 1000 (not prime) accepted")
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
