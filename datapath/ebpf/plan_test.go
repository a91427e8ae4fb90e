package ebpf

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"weir.dev/weir/datapath"
)

func be(last byte) backend {
	return backend{netip.AddrFrom4([4]byte{10, 244, 0, last}), 8080}
}

func bes(lasts ...byte) []backend {
	var out []backend
	for _, l := range lasts {
		out = append(out, be(l))
	}
	return out
}

func TestPlanSlots(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cur    []backend
		gen    uint8
		want   []backend
		force  bool
		layout []backend
		newGen uint8
		writes []slotWrite
		trims  []slotRef
	}{
		{name: "first backends", want: bes(1, 2),
			layout: bes(1, 2), writes: []slotWrite{{0, be(1)}, {1, be(2)}}},
		{name: "unchanged", cur: bes(1, 2), want: bes(1, 2), layout: bes(1, 2)},
		{name: "same set, other order", cur: bes(2, 1), gen: 1, want: bes(1, 2), layout: bes(2, 1), newGen: 1},
		{name: "added: appended in place", cur: bes(1, 3), want: bes(1, 2, 3, 4),
			layout: bes(1, 3, 2, 4), writes: []slotWrite{{2, be(2)}, {3, be(4)}}},
		{name: "tail removed: count shrinks, then trim", cur: bes(1, 2, 3), gen: 1, want: bes(1, 2),
			layout: bes(1, 2), newGen: 1, trims: []slotRef{{Slot: 2, Gen: 1}}},
		{name: "all removed", cur: bes(1, 2), want: nil,
			layout: bes(), trims: []slotRef{{Slot: 0}, {Slot: 1}}},
		{name: "middle removed: other generation, survivors keep slots that fit", cur: bes(1, 2, 3), want: bes(1, 3),
			layout: bes(1, 3), newGen: 1,
			writes: []slotWrite{{0, be(1)}, {1, be(3)}},
			trims:  []slotRef{{Slot: 0}, {Slot: 1}, {Slot: 2}}},
		{name: "one replaced: survivors stay put", cur: bes(1, 2, 3), gen: 1, want: bes(2, 3, 4),
			layout: bes(4, 2, 3), newGen: 0,
			writes: []slotWrite{{0, be(4)}, {1, be(2)}, {2, be(3)}},
			trims:  []slotRef{{Slot: 0, Gen: 1}, {Slot: 1, Gen: 1}, {Slot: 2, Gen: 1}}},
		{name: "all replaced", cur: bes(1), want: bes(5, 6),
			layout: bes(5, 6), newGen: 1,
			writes: []slotWrite{{0, be(5)}, {1, be(6)}},
			trims:  []slotRef{{Slot: 0}}},
		{name: "forced rewrite of a broken layout", cur: []backend{be(1), {}}, want: bes(1, 2), force: true,
			layout: bes(1, 2), newGen: 1,
			writes: []slotWrite{{0, be(1)}, {1, be(2)}},
			trims:  []slotRef{{Slot: 0}, {Slot: 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := planSlots(tc.cur, tc.gen, tc.want, tc.force)
			want := slotPlan{Layout: tc.layout, Gen: tc.newGen, Writes: tc.writes, Trims: tc.trims}
			if tc.layout == nil {
				want.Layout = []backend{}
			}
			if diff := cmp.Diff(want, p, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmpEmpty); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

// cmpEmpty treats nil and empty slices alike.
var cmpEmpty = cmp.FilterValues(func(a, b any) bool { return isEmptySlice(a) && isEmptySlice(b) }, cmp.Ignore())

func isEmptySlice(v any) bool {
	switch s := v.(type) {
	case []backend:
		return len(s) == 0
	case []slotWrite:
		return len(s) == 0
	case []slotRef:
		return len(s) == 0
	}
	return false
}

func TestDesiredPorts(t *testing.T) {
	ip := netip.MustParseAddr
	ready := func(a string, port uint16) datapath.Backend {
		return datapath.Backend{Addr: ip(a), Port: port, Ready: true, Serving: true}
	}
	st := &datapath.State{
		NodeName: "n1",
		NodeIPs:  []netip.Addr{ip("10.0.0.1"), ip("fd00::1")},
		Services: []datapath.Service{
			{Namespace: "a", Name: "web", ClusterIP: ip("10.96.0.1"), ExternalIPs: []netip.Addr{ip("1.2.3.4")},
				LoadBalancerIPs: []netip.Addr{ip("5.6.7.8")}, AffinityTimeout: 1500 * time.Millisecond,
				Ports: []datapath.Port{
					{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, NodePort: 30080, Backends: []datapath.Backend{
						ready("10.244.0.2", 8080), ready("10.244.0.1", 8080), ready("10.244.0.1", 8080),
						{Addr: ip("10.244.0.3"), Port: 8080, Serving: true, Terminating: true},
						ready("fd00::5", 8080),
					}},
					{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53},
					{Name: "sctp", Protocol: corev1.ProtocolSCTP, Port: 99},
				}},
			// Claims web's externalIP: the first service keeps it.
			{Namespace: "b", Name: "thief", ClusterIP: ip("10.96.0.2"), ExternalIPs: []netip.Addr{ip("1.2.3.4")},
				Ports: []datapath.Port{{Protocol: corev1.ProtocolTCP, Port: 80}}},
			// Local: only this node's endpoints.
			{Namespace: "c", Name: "local", ClusterIP: ip("10.96.0.3"), InternalTrafficLocal: true,
				Ports: []datapath.Port{{Name: "p", Protocol: corev1.ProtocolTCP, Port: 1, Backends: []datapath.Backend{
					{Addr: ip("10.244.0.7"), Port: 1, Ready: true, NodeName: "n2"},
					{Addr: ip("10.244.0.8"), Port: 1, Ready: true, NodeName: "n1"},
				}}}},
			{Namespace: "d", Name: "headless"},
		},
	}
	got, conflicts := desiredPorts(st)
	tcp, udp := uint8(6), uint8(17)
	fe := func(a string, port uint16, proto uint8) frontend { return frontend{ip(a), port, proto} }
	want := map[frontend]*svcPort{
		fe("10.96.0.1", 80, tcp): {
			Svc: datapath.ServiceKey{Namespace: "a", Name: "web"}, Name: "a/web:http",
			Frontends: map[frontend]uint16{
				fe("10.96.0.1", 80, tcp): feClusterIP, fe("1.2.3.4", 80, tcp): feExternal, fe("5.6.7.8", 80, tcp): feExternal,
				fe("10.0.0.1", 30080, tcp): feNodePort, fe("0.0.0.0", 30080, tcp): feWildcard,
			},
			Flags: svcAffinity, Timeout: 2,
			Backends: []backend{{ip("10.244.0.1"), 8080}, {ip("10.244.0.2"), 8080}},
		},
		fe("10.96.0.1", 53, udp): {
			Svc: datapath.ServiceKey{Namespace: "a", Name: "web"}, Name: "a/web:dns", Frontends: map[frontend]uint16{
				fe("10.96.0.1", 53, udp): feClusterIP, fe("1.2.3.4", 53, udp): feExternal, fe("5.6.7.8", 53, udp): feExternal,
			},
			Flags: svcAffinity, Timeout: 2,
		},
		fe("10.96.0.2", 80, tcp): {
			Svc: datapath.ServiceKey{Namespace: "b", Name: "thief"}, Name: "b/thief:80", Frontends: map[frontend]uint16{fe("10.96.0.2", 80, tcp): feClusterIP},
		},
		fe("10.96.0.3", 1, tcp): {
			Svc: datapath.ServiceKey{Namespace: "c", Name: "local"}, Name: "c/local:p", Frontends: map[frontend]uint16{fe("10.96.0.3", 1, tcp): feClusterIP},
			Backends: []backend{{ip("10.244.0.8"), 1}},
		},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmpEmpty); diff != "" {
		t.Errorf("desired ports (-want +got):\n%s", diff)
	}
	wantConflicts := []Conflict{{Frontend: "1.2.3.4:80/tcp", Kept: "a/web:http", Lost: "b/thief:80"}}
	if diff := cmp.Diff(wantConflicts, conflicts); diff != "" {
		t.Errorf("conflicts (-want +got):\n%s", diff)
	}
}
