package ebpf

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	corev1 "k8s.io/api/core/v1"

	"weir.dev/weir/datapath"
	"weir.dev/weir/test/netns"
	"weir.dev/weir/test/topology"
)

// uplinkNode makes a namespace with an uplink for a node's Config; Open
// must run in it (inNS).
func uplinkNode(t *testing.T, name string) (cfg Config, inNS func(func())) {
	t.Helper()
	ns := netns.New(t, name)
	netns.Exec(t, ns, "ip", "link", "add", "up0", "type", "veth", "peer", "name", "up1")
	netns.Exec(t, ns, "ip", "addr", "add", npNode+"/24", "dev", "up0")
	netns.Exec(t, ns, "ip", "link", "set", "up0", "up")
	netns.Exec(t, ns, "ip", "link", "set", "up1", "up")
	cg := filepath.Join(cgroupRoot, "weir-test-"+topology.UniqueName(t, name))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeCgroup(t, cg) })
	cfg = Config{Node: topology.UniqueName(t, name), CgroupPath: cg, Uplink: "up0"}
	t.Cleanup(func() { Remove(cfg) })
	return cfg, func(f func()) { netns.Do(t, ns, f) }
}

func openIn(t *testing.T, cfg Config, inNS func(func())) *Dataplane {
	t.Helper()
	var d *Dataplane
	var err error
	inNS(func() { d, err = Open(t.Context(), cfg) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// nodePortServices returns n NodePort services with three endpoints each.
func nodePortServices(n int) []datapath.Service {
	out := make([]datapath.Service, n)
	for i := range out {
		out[i] = datapath.Service{
			Namespace: "default", Name: fmt.Sprintf("np-%05d", i), Type: corev1.ServiceTypeNodePort,
			ClusterIP: netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)}),
			Ports:     []datapath.Port{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, NodePort: uint16(20000 + i), Backends: nil}},
		}
		for j := range 3 {
			out[i].Ports[0].Backends = append(out[i].Ports[0].Backends, datapath.Backend{
				Addr: netip.AddrFrom4([4]byte{10, 200 + byte(j), byte(i >> 8), byte(i)}), Port: 8080, NodeName: "node", Ready: true, Serving: true})
		}
	}
	return out
}

// TestMaglevTablesAtScale programs 10,000 NodePort services × 3
// endpoints, then changes one service's endpoints at a time through
// ApplyServices: each change must leave exactly the Maglev table of the
// new backend set in lb4_maglev. The times are logged (issue #4: one
// change was ~12 ms and the full Apply ~2 minutes while every table
// update waited for an RCU grace period), not asserted.
func TestMaglevTablesAtScale(t *testing.T) {
	cfg, inNS := uplinkNode(t, "mgl")
	d := openIn(t, cfg, inNS)
	svcs := nodePortServices(10000)
	node := datapath.NodeInfo{Name: "node", IPs: []netip.Addr{netip.MustParseAddr(npNode)}}
	start := time.Now()
	if err := d.ApplyServices(t.Context(), node, svcs, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("full apply of %d NodePort services × 3 endpoints: %v", len(svcs), time.Since(start))
	if n := len(d.np.tables); n != len(svcs) {
		t.Fatalf("%d maglev tables after the full apply, want %d", n, len(svcs))
	}

	for i, at := range []int{17, 4242, 9999} {
		s := svcs[at]
		// One endpoint replaced by another.
		s.Ports[0].Backends = append([]datapath.Backend(nil), s.Ports[0].Backends...)
		s.Ports[0].Backends[1].Addr = netip.AddrFrom4([4]byte{10, 210, byte(i), byte(at)})
		start := time.Now()
		if err := d.ApplyServices(t.Context(), node, []datapath.Service{s}, nil); err != nil {
			t.Fatal(err)
		}
		t.Logf("one endpoint of service %s changed through ApplyServices: %v", s.Name, time.Since(start))
		checkMaglevTable(t, d, s)
	}
}

// checkMaglevTable reads s's (first port's) table back from lb4_maglev
// and compares it with the Maglev table of its backend set.
func checkMaglevTable(t *testing.T, d *Dataplane, s datapath.Service) {
	t.Helper()
	p := s.Ports[0]
	key := frontend{s.ClusterIP, p.Port, 6}
	lp := d.lb.ports[key]
	if lp == nil {
		t.Fatalf("service %s has no programmed port", s.Name)
	}
	var bs []backend
	for _, b := range p.Backends {
		bs = append(bs, backend{b.Addr, b.Port})
	}
	slices.SortFunc(bs, backend.compare)
	want := maglevTable(bs, d.np.m)
	got, err := d.np.readTable(lp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("service %s: table of %d entries, want %d", s.Name, len(got), len(want))
	}
	for i := range want {
		if got[i] != bs[want[i]] {
			t.Fatalf("service %s: slot %d holds %v, want %v (of %v)", s.Name, i, got[i], bs[want[i]], bs)
		}
	}
}

// TestMaglevOldLayoutPinReplaced restarts a node onto the lb4_maglev pin
// of an earlier build (a map of maps): Open replaces it with a table map
// and the next Apply writes every table into it.
func TestMaglevOldLayoutPinReplaced(t *testing.T) {
	cfg, inNS := uplinkNode(t, "mglold")
	if err := os.MkdirAll(cfg.PinDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	old, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.HashOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 16,
		InnerMap: &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: DefaultMaglevSize}})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := old.Pin(filepath.Join(cfg.PinDir(), tcnpMapLb4Maglev)); err != nil {
		t.Fatal(err)
	}
	d := openIn(t, cfg, inNS)
	if typ := d.np.tc.Lb4Maglev.Type(); typ != ebpf.Hash {
		t.Fatalf("%s is a %s after Open over an old pin, want a hash", tcnpMapLb4Maglev, typ)
	}
	svcs := nodePortServices(3)
	node := datapath.NodeInfo{Name: "node", IPs: []netip.Addr{netip.MustParseAddr(npNode)}}
	if err := d.ApplyServices(t.Context(), node, svcs, nil); err != nil {
		t.Fatal(err)
	}
	for _, s := range svcs {
		checkMaglevTable(t, d, s)
	}
	pinned, err := ebpf.LoadPinnedMap(filepath.Join(cfg.PinDir(), tcnpMapLb4Maglev), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pinned.Close()
	if pinned.Type() != ebpf.Hash {
		t.Fatalf("pinned %s is a %s, want the new hash pinned in place of the old", tcnpMapLb4Maglev, pinned.Type())
	}

	// A restart onto the new pin keeps the tables and knows them.
	d.Close()
	d = openIn(t, cfg, inNS)
	if len(d.np.tables) != len(svcs) {
		t.Fatalf("%d tables recovered from pins, want %d", len(d.np.tables), len(svcs))
	}
	for _, s := range svcs {
		checkMaglevTable(t, d, s)
	}
}

// TestMaglevMaxSize opens a node with the largest Maglev size accepted:
// the kernel must take a table of that size as one value.
func TestMaglevMaxSize(t *testing.T) {
	cfg, inNS := uplinkNode(t, "mglmax")
	cfg.MaglevSize = maxMaglevSize
	d := openIn(t, cfg, inNS)
	svcs := nodePortServices(2)
	node := datapath.NodeInfo{Name: "node", IPs: []netip.Addr{netip.MustParseAddr(npNode)}}
	if err := d.ApplyServices(t.Context(), node, svcs, nil); err != nil {
		t.Fatal(err)
	}
	for _, s := range svcs {
		checkMaglevTable(t, d, s)
	}
}
