package ebpf

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"weir.dev/weir/datapath"
)

// randomService is service i of a random state: one or two ports, maybe
// a nodePort, maybe an externalIP from a pool of two (so that services
// sometimes claim the same frontend), some of six backends in random
// conditions, maybe ClientIP affinity.
func randomService(r *rand.Rand, i int) datapath.Service {
	s := datapath.Service{Namespace: "ns", Name: fmt.Sprintf("s%02d", i), Type: corev1.ServiceTypeNodePort,
		ClusterIP: netip.AddrFrom4([4]byte{10, 96, 0, byte(i + 1)})}
	if r.IntN(12) == 0 {
		s.ExternalIPs = []netip.Addr{netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + r.IntN(3))})}
	}
	if r.IntN(4) == 0 {
		s.AffinityTimeout = 30 * 1e9
	}
	for j := range 1 + r.IntN(2) {
		p := datapath.Port{Name: fmt.Sprintf("p%d", j), Protocol: corev1.ProtocolTCP, Port: uint16(80 + j)}
		if r.IntN(2) == 0 {
			p.Protocol = corev1.ProtocolUDP
		}
		if r.IntN(3) == 0 {
			p.NodePort = uint16(30000 + 10*i + j)
		}
		for b := range 6 {
			if r.IntN(2) == 0 {
				continue
			}
			ready := r.IntN(4) != 0
			p.Backends = append(p.Backends, datapath.Backend{Addr: netip.AddrFrom4([4]byte{10, 244, byte(i), byte(b + 1)}), Port: 8080,
				NodeName: "n1", Ready: ready, Serving: ready || r.IntN(2) == 0, Terminating: !ready})
		}
		s.Ports = append(s.Ports, p)
	}
	return s
}

// randomChange changes, adds and deletes a few services of ss (of at
// most n) and sometimes the node's addresses; it returns the change.
func randomChange(r *rand.Rand, ss *datapath.ServiceState, n int) (datapath.NodeInfo, []datapath.Service, []datapath.ServiceKey) {
	node := ss.Node
	if r.IntN(10) == 0 {
		node = datapath.NodeInfo{Name: node.Name, IPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 123, 0, byte(1 + r.IntN(3))})}}
	}
	var changed []datapath.Service
	var deleted []datapath.ServiceKey
	for range 1 + r.IntN(3) {
		i := r.IntN(n)
		k := datapath.ServiceKey{Namespace: "ns", Name: fmt.Sprintf("s%02d", i)}
		if _, ok := ss.Services[k]; ok && r.IntN(4) == 0 {
			deleted = append(deleted, k)
			continue
		}
		s := randomService(r, i)
		if old, ok := ss.Services[k]; ok && r.IntN(2) == 0 {
			// The common case: one endpoint of a port changes.
			s = old
			s.Ports = slices.Clone(old.Ports)
			p := &s.Ports[r.IntN(len(s.Ports))]
			p.Backends = slices.Clone(p.Backends)
			if len(p.Backends) > 0 {
				b := &p.Backends[r.IntN(len(p.Backends))]
				b.Ready, b.Terminating = !b.Ready, b.Ready
			} else {
				p.Backends = append(p.Backends, datapath.Backend{Addr: netip.AddrFrom4([4]byte{10, 244, byte(i), 9}), Port: 8080, Ready: true, Serving: true})
			}
		}
		changed = append(changed, s)
	}
	return node, changed, deleted
}

// normalize is what a kernel view means to a reader, independent of the
// service ids and generations chosen: per frontend its flags, its
// service's flags and timeout and its backend set. It also reports
// entries no reader can reach.
func normalize(v kernelView) map[string]string {
	out := map[string]string{}
	reached := map[uint32]bool{}
	for f, e := range v.Frontends {
		s, ok := v.Services[e.ID]
		if !ok {
			out[f.String()] = "BROKEN: no service"
			continue
		}
		reached[e.ID] = true
		var bs []string
		for i := range s.Count {
			b, ok := v.Slots[slotRef{e.ID, i, s.Gen}]
			if !ok {
				bs = append(bs, fmt.Sprintf("BROKEN: slot %d", i))
				continue
			}
			bs = append(bs, b.String())
		}
		slices.Sort(bs)
		out[f.String()] = fmt.Sprintf("fe=%#x svc=%#x timeout=%d backends=[%s]", e.Flags, s.Flags, s.Timeout, strings.Join(bs, " "))
	}
	for id := range v.Services {
		if !reached[id] {
			out[fmt.Sprintf("service %d", id)] = "unreachable"
		}
	}
	for r := range v.Slots {
		s, ok := v.Services[r.ID]
		if !ok || r.Gen != s.Gen || r.Slot >= s.Count {
			out[fmt.Sprintf("slot %d/%d/%d", r.ID, r.Gen, r.Slot)] = "unreachable"
		}
	}
	return out
}

var clusterIPs = netip.MustParsePrefix("10.96.0.0/24")

// modelDataplane is a Dataplane whose maps are the model of sync_test.go.
func modelDataplane(m *model) *Dataplane {
	return &Dataplane{log: slog.New(slog.DiscardHandler), lb: newLBSync(m, m.caps), idx: newServiceIndex(), mapFull: map[string]uint64{}}
}

// An ApplyServices leaves the maps as a full Apply of the resulting state
// would, through random changes including node address changes and
// frontends two services claim, and no reader ever sees a service half
// written on the way.
func TestApplyServicesEqualsApply(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const n = 40
	ctx := context.Background()
	node := datapath.NodeInfo{Name: "n1", IPs: []netip.Addr{netip.MustParseAddr("10.123.0.1")}}
	st := &datapath.State{NodeName: node.Name, NodeIPs: node.IPs}
	for i := range n {
		if r.IntN(4) != 0 {
			st.Services = append(st.Services, randomService(r, i))
		}
	}
	inc := newModel(bigCaps)
	dInc := modelDataplane(inc)
	if err := dInc.Apply(ctx, st); err != nil {
		t.Fatal(err)
	}
	want := datapath.NewServiceState(st)
	for round := range 300 {
		node, changed, deleted := randomChange(r, want, n)
		want.Update(node, changed, deleted)

		before := inc.view()
		inc.views, inc.ops = nil, nil
		if err := dInc.ApplyServices(ctx, node, changed, deleted); err != nil {
			t.Fatalf("round %d: apply services: %v", round, err)
		}
		after := inc.view()
		for i, v := range inc.views {
			for _, f := range unionKeys(before, after, v) {
				if strings.HasPrefix(v[f], "BROKEN") {
					t.Fatalf("round %d: after write %d (%s) %s showed %q", round, i, inc.ops[i], f, v[f])
				}
				// A ClusterIP frontend shows its port's old set or its new
				// one; an externalIP or nodePort that moves to another
				// service may show its old service's new set on the way.
				if clusterIPs.Contains(f.Addr) && v[f] != before[f] && v[f] != after[f] {
					t.Fatalf("round %d: after write %d (%s) %s showed %q; want %q or %q", round, i, inc.ops[i], f, v[f], before[f], after[f])
				}
			}
		}
		checkAccounting(t, inc, dInc.lb)

		full := newModel(bigCaps)
		full.noViews = true
		if err := modelDataplane(full).Apply(ctx, want.State()); err != nil {
			t.Fatalf("round %d: full apply: %v", round, err)
		}
		if diff := cmp.Diff(normalize(full.kernelView()), normalize(inc.kernelView())); diff != "" {
			t.Fatalf("round %d: changed %d deleted %v: incremental maps differ from a full apply (-full +incremental):\n%s", round, len(changed), deleted, diff)
		}
	}
	// Both paths ran: the incremental one most of the time, the whole
	// apply for node address changes and conflicts.
	if w := dInc.idx.wholes; w < 20 || w > 200 {
		t.Fatalf("%d of 300 changes fell back to a whole apply; the test no longer exercises both paths", w)
	}
	t.Logf("%d of 300 changes fell back to a whole apply", dInc.idx.wholes)
}

// One endpoint changed among 1,000 services writes that port's entries
// only: ApplyServices never walks the other ports.
func TestApplyServicesOneEndpointWritesOnePort(t *testing.T) {
	ctx := context.Background()
	m := newModel(bigCaps)
	m.noViews = true
	d := modelDataplane(m)
	st := &datapath.State{NodeName: "n1"}
	for i := range 1000 {
		var bs []datapath.Backend
		for b := range 3 {
			bs = append(bs, datapath.Backend{Addr: netip.AddrFrom4([4]byte{10, 244, byte(i >> 8), byte(i)}), Port: uint16(8000 + b), Ready: true, Serving: true})
		}
		st.Services = append(st.Services, datapath.Service{Namespace: "ns", Name: fmt.Sprintf("s%04d", i),
			ClusterIP: vip(i + 1), Ports: []datapath.Port{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, Backends: bs}}})
	}
	if err := d.Apply(ctx, st); err != nil {
		t.Fatal(err)
	}
	s := st.Services[500]
	s.Ports = slices.Clone(s.Ports)
	s.Ports[0].Backends = slices.Clone(s.Ports[0].Backends)
	s.Ports[0].Backends[2].Ready = false // the tail leaves: the count shrinks, the slot goes
	id := func(i int) uint32 { return d.lb.ports[frontend{vip(i + 1), 80, 6}].ID }
	m.ops = nil
	if err := d.ApplyServices(ctx, st.Node(), []datapath.Service{s}, nil); err != nil {
		t.Fatal(err)
	}
	if want := []string{fmt.Sprintf("put svc %d", id(500)), fmt.Sprintf("del slot %d/0/2", id(500))}; !slices.Equal(m.ops, want) {
		t.Fatalf("writes = %q; want %q", m.ops, want)
	}
	m.ops = nil
	gone := id(7)
	if err := d.ApplyServices(ctx, st.Node(), nil, []datapath.ServiceKey{{Namespace: "ns", Name: "s0007"}}); err != nil {
		t.Fatal(err)
	}
	want := []string{"del fe 10.96.0.8:80/tcp", fmt.Sprintf("del svc %d", gone)}
	for b := range 3 {
		want = append(want, fmt.Sprintf("del slot %d/0/%d", gone, b))
	}
	if !slices.Equal(m.ops, want) {
		t.Fatalf("writes = %q; want %q", m.ops, want)
	}
}

func TestSNATPortsOutside(t *testing.T) {
	for _, tc := range []struct {
		lo, hi int
		want   snatPorts
		err    string
	}{
		{32768, 60999, snatPorts{LowFirst: 1024, LowCount: 31744, HighFirst: 61000, HighCount: 4536}, ""},
		{1024, 60999, snatPorts{HighFirst: 61000, HighCount: 4536}, ""},
		{1, 65534, snatPorts{HighFirst: 65535, HighCount: 1}, ""},
		{32768, 65535, snatPorts{LowFirst: 1024, LowCount: 31744}, ""},
		// 7919 ports, a multiple of the probe stride: one fewer.
		{1024, 65535 - 7919, snatPorts{HighFirst: 65536 - 7919, HighCount: 7918}, ""},
		{1024 + 7919, 65535, snatPorts{LowFirst: 1024, LowCount: 7918}, ""},
		{1024, 65535, snatPorts{}, "leaves no port"},
		{1000, 65535, snatPorts{}, "leaves no port"},
		{60999, 32768, snatPorts{}, "not a range"},
		{0, 100, snatPorts{}, "not a range"},
	} {
		got, err := snatPortsOutside(tc.lo, tc.hi)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%d-%d: error %v, want one saying %q", tc.lo, tc.hi, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%d-%d: %+v, %v; want %+v", tc.lo, tc.hi, got, err, tc.want)
		}
	}
}
