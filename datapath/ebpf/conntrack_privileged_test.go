package ebpf

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
)

// natPortRange is NAT_PORT_RANGE in bpf/lib/ct.h.
const natPortRange = natPortHigh - natPortLow + 1

// flowEnd is how snatFlows ends each flow.
type flowEnd int

const (
	endNone       flowEnd = iota // left open (UDP: one datagram)
	endClientFIN                 // the client sends FIN
	endBackendFIN                // the backend's reply carries FIN
	endBackendRST                // the backend resets
	endBothFIN                   // the client sends FIN, then the backend's reply carries FIN
)

// snatFlows opens n flows from the client (ports 10000 up) to the
// NodePort of the fixture's one remote backend, ends each as end(i) says,
// and returns the SNAT port each got (0: its first packet was dropped).
func (f *npFixture) snatFlows(t *testing.T, proto string, n int, end func(i int) flowEnd) (ports []uint16, dropped int) {
	t.Helper()
	for i := range n {
		cport := uint16(10000 + i)
		ret, s := f.ingress(t, fromClient(proto, npNode, cport, npNodePrt))
		if ret == tcShot {
			ports = append(ports, 0)
			dropped++
			continue
		}
		if ret != tcRedirect || s.src != npNode || s.dst != npRemote || s.sport < natPortLow {
			t.Fatalf("flow %d: verdict %d, %s:%d -> %s:%d, want a redirect from %s:[%d-%d] to %s", i, ret, s.src, s.sport, s.dst, s.dport, npNode, natPortLow, natPortHigh, npRemote)
		}
		ports = append(ports, s.sport)
		clientFIN := func() (flow, string) {
			fl := fromClient(proto, npNode, cport, npNodePrt)
			fl.syn, fl.fin = false, true
			return fl, npRemote
		}
		backend := func(fin, rst bool) (flow, string) {
			fl := flow{proto: proto, src: npRemote, dst: npNode, sport: 8080, dport: s.sport, srcMAC: node2MAC, dstMAC: upMAC}
			fl.fin, fl.rst = fin, rst
			return fl, npClient
		}
		var closing [][2]any
		switch end(i) {
		case endNone:
			continue
		case endClientFIN:
			fl, want := clientFIN()
			closing = append(closing, [2]any{fl, want})
		case endBackendFIN, endBackendRST:
			fl, want := backend(end(i) == endBackendFIN, end(i) == endBackendRST)
			closing = append(closing, [2]any{fl, want})
		case endBothFIN:
			fl, want := clientFIN()
			closing = append(closing, [2]any{fl, want})
			fl, want = backend(true, false)
			closing = append(closing, [2]any{fl, want})
		}
		for _, c := range closing {
			fl, want := c[0].(flow), c[1].(string)
			if ret, r := f.ingress(t, fl); ret != tcRedirect || r.dst != want {
				t.Fatalf("flow %d: closing packet verdict %d to %s, want a redirect to %s", i, ret, r.dst, want)
			}
		}
	}
	return ports, dropped
}

// checkSNATConsistent checks every SNATed flow's two entries name each
// other: a forward entry left behind by a flow whose port was reused
// would translate that client's late packets onto the new flow.
func checkSNATConsistent(t *testing.T, f *npFixture) (forward int) {
	t.Helper()
	byKey := map[string]CTEntry{}
	for _, e := range readCT(t, f) {
		if e.SNAT {
			byKey[e.Proto+" "+e.Src.String()+" "+e.Dst.String()] = e
		}
	}
	for _, e := range byKey {
		if e.Reply {
			continue
		}
		forward++
		r, ok := byKey[e.Proto+" "+e.NATDst.String()+" "+e.NATSrc.String()]
		if !ok || r.NATSrc != e.Dst || r.NATDst != e.Src {
			t.Fatalf("forward entry %v has reply entry %v (found %t), want one translating back to %s -> %s", e, r, ok, e.Dst, e.Src)
		}
	}
	return forward
}

func distinctPorts(t *testing.T, ports []uint16) int {
	t.Helper()
	seen := map[uint16]int{}
	for i, p := range ports {
		if p == 0 {
			continue
		}
		if j, dup := seen[p]; dup {
			t.Fatalf("flows %d and %d, both open, got SNAT port %d", j, i, p)
		}
		seen[p] = i
	}
	return len(seen)
}

// TestTCSNATReclaimsDeadFlows: 10,000 flows to one remote backend (more
// than twice the fixture's 4,536 SNAT ports) all get a port when each closes (reuse
// after the closing timeout, 0 here) or, for UDP, goes idle (UDP timeout
// 0); left open and fresh they exhaust the range: drops counted as
// nat_ports, and never a port handed to two open flows.
func TestTCSNATReclaimsDeadFlows(t *testing.T) {
	const n = 10000
	closeEach := func(i int) flowEnd { return []flowEnd{endClientFIN, endBackendFIN, endBackendRST}[i%3] }
	leaveOpen := func(int) flowEnd { return endNone }
	for _, tc := range []struct {
		name     string
		proto    string
		vars     map[string]any
		end      func(int) flowEnd
		exhausts bool
	}{
		{"tcp/closed", "tcp", map[string]any{tcnpVarCtTimeoutClosing: uint32(0)}, closeEach, false},
		{"tcp/open", "tcp", map[string]any{tcnpVarCtTimeoutClosing: uint32(0)}, leaveOpen, true},
		// Fresh closed flows hold their ports for the closing timeouts;
		// an hour here, so a slow run cannot see them expire (with the
		// 1 s default for reset flows, a run over 1 s did).
		{"tcp/closing-fresh", "tcp", map[string]any{tcnpVarCtTimeoutClosed: uint32(3600), tcnpVarCtTimeoutClosing: uint32(3600)}, closeEach, true},
		// Closed (FIN both ways, or reset) flows' ports come back after
		// ct_timeout_closed (0 here), while half-closed ones keep
		// ct_timeout_closing (10 s, the default here).
		{"tcp/closed-both", "tcp", map[string]any{tcnpVarCtTimeoutClosed: uint32(0)}, func(i int) flowEnd {
			return []flowEnd{endBothFIN, endBackendRST}[i%2]
		}, false},
		{"tcp/half-closed", "tcp", map[string]any{tcnpVarCtTimeoutClosed: uint32(0), tcnpVarCtTimeoutClosing: uint32(3600)}, func(int) flowEnd { return endClientFIN }, true},
		{"udp/idle", "udp", map[string]any{tcnpVarCtTimeoutUdp: uint32(0)}, leaveOpen, false},
		{"udp/fresh", "udp", map[string]any{tcnpVarCtTimeoutUdp: uint32(3600)}, leaveOpen, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Room for every flow's two entries: LRU eviction must not
			// be what frees the ports.
			f := newNPFixtureWith(t, 4*n, tc.vars)
			f.apply(npState(nil, npBackend(npRemote, "node2")))
			ports, dropped := f.snatFlows(t, tc.proto, n, tc.end)
			natPorts := f.reason(socklbWeirReasonWEIR_REASON_NAT_PORTS)
			t.Logf("%d flows: %d dropped, nat_ports %d", n, dropped, natPorts)
			if uint64(dropped) != natPorts {
				t.Fatalf("%d flows dropped, nat_ports counted %d: want every drop counted", dropped, natPorts)
			}
			if !tc.exhausts {
				if dropped != 0 {
					t.Fatalf("%d of %d flows found no SNAT port, want none: dead flows' ports are reused", dropped, n)
				}
				if fwd := checkSNATConsistent(t, f); fwd > natPortRange {
					t.Fatalf("%d forward SNAT entries for %d ports: reused ports left their old flow's entries", fwd, natPortRange)
				}
				return
			}
			open := distinctPorts(t, ports)
			if dropped == 0 || open > natPortRange {
				t.Fatalf("%d flows dropped, %d open: want the %d ports exhausted by fresh flows", dropped, open, natPortRange)
			}
			checkSNATConsistent(t, f)
		})
	}
}

// TestTCConntrackClosing: a FIN or RST in either direction marks both
// entries closing; a closing flow keeps translating while the closing
// timeout runs, and after it a new SYN on the tuple is a new flow.
func TestTCConntrackClosing(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  flowEnd
	}{{"client-fin", endClientFIN}, {"backend-fin", endBackendFIN}, {"backend-rst", endBackendRST}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newNPFixture(t) // closing timeout 10 s
			f.apply(npState(nil, npBackend(npRemote, "node2")))
			ports, _ := f.snatFlows(t, "tcp", 1, func(int) flowEnd { return tc.end })
			entries := readCT(t, f)
			if len(entries) != 2 {
				t.Fatalf("conntrack holds %v, want the flow's two entries", entries)
			}
			for _, e := range entries {
				if !e.Closing || !strings.Contains(e.String(), " closing") {
					t.Fatalf("entry %v not closing after %s", e, tc.name)
				}
			}
			// Within the closing timeout the flow still translates.
			ack := fromClient("tcp", npNode, 10000, npNodePrt)
			ack.syn = false
			if ret, s := f.ingress(t, ack); ret != tcRedirect || s.sport != ports[0] {
				t.Fatalf("packet after close: verdict %d port %d, want the flow's port %d", ret, s.sport, ports[0])
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		f := newNPFixtureWith(t, 4096, map[string]any{tcnpVarCtTimeoutClosing: uint32(0)})
		f.apply(npState(nil, npBackend(npRemote, "node2")))
		f.snatFlows(t, "tcp", 1, func(int) flowEnd { return endBackendRST })
		flows := f.svcFlows(t)
		if ret, _ := f.ingress(t, fromClient("tcp", npNode, 10000, npNodePrt)); ret != tcRedirect {
			t.Fatalf("SYN on a closed tuple: verdict %d, want a redirect", ret)
		}
		if got := f.svcFlows(t); got != flows+1 {
			t.Fatalf("flows counted %d after a SYN on a closed tuple, want %d: a new flow", got, flows+1)
		}
		for _, e := range readCT(t, f) {
			if !e.Reply && e.Closing {
				t.Fatalf("forward entry %v still closing: the SYN should have replaced it", e)
			}
		}
		checkSNATConsistent(t, f)
	})
}

// svcFlows sums the flows counter of every service port.
func (f *npFixture) svcFlows(t *testing.T) uint64 {
	t.Helper()
	var n uint64
	var per []tcnpNpSvcCounters
	for id := uint32(0); id < 1024; id++ {
		if err := f.tc.NpSvcStats.Lookup(id, &per); err != nil {
			t.Fatal(fmt.Errorf("read np_svc_stats %d: %w", id, err))
		}
		for _, c := range per {
			n += c.Flows
		}
	}
	return n
}

// TestUplinkVerifierCost guards the SNAT port probes' shape: as a loop
// the verifier walks, 32 probes cost it 296k instructions for TC ingress
// and 413k for XDP (of its 1M limit, growing with the square of the
// tries); under bpf_loop about 4k and 7k.
func TestUplinkVerifierCost(t *testing.T) {
	f := newNPFixture(t)
	for name, p := range map[string]*ebpf.Program{"tc ingress": f.tc.WeirTcIngress, "tc egress": f.tc.WeirTcEgress, "xdp": f.xdp.WeirXdp} {
		info, err := p.Info()
		if err != nil {
			t.Fatalf("info of %s: %v", name, err)
		}
		n, ok := info.VerifiedInstructions()
		if !ok {
			t.Fatalf("the kernel reports no verified instruction count for %s", name)
		}
		t.Logf("%s: %d instructions verified", name, n)
		if n > 100_000 {
			t.Errorf("%s: the verifier walked %d instructions, want under 100k (a tenth of its limit)", name, n)
		}
	}
}

// TestTCSNATDefaultPorts: with the ports left by Linux's default
// ephemeral range (32768-60999), 20,000 open flows to one remote backend
// (over four times the old 61000-65535 range) all get distinct ports,
// from both segments and never from the ephemeral range, where the
// node's own connections to the backend would collide with them.
func TestTCSNATDefaultPorts(t *testing.T) {
	const n = 20000
	def, err := snatPortsOutside(32768, 60999)
	if err != nil {
		t.Fatal(err)
	}
	f := newNPFixtureWith(t, 4*n, map[string]any{
		tcnpVarSnatLowFirst: def.LowFirst, tcnpVarSnatLowCount: def.LowCount,
		tcnpVarSnatHighFirst: def.HighFirst, tcnpVarSnatHighCount: def.HighCount,
	})
	f.apply(npState(nil, npBackend(npRemote, "node2")))
	ports := make([]uint16, 0, n)
	var low, high int
	for i := range n {
		ret, s := f.ingress(t, fromClient("tcp", npNode, uint16(2000+i), npNodePrt))
		if ret != tcRedirect || s.src != npNode || s.dst != npRemote {
			t.Fatalf("flow %d: verdict %d, %s:%d -> %s:%d, want a redirect from %s to %s", i, ret, s.src, s.sport, s.dst, s.dport, npNode, npRemote)
		}
		switch {
		case s.sport >= 1024 && s.sport <= 32767:
			low++
		case s.sport >= 61000:
			high++
		default:
			t.Fatalf("flow %d got SNAT port %d: below 1024 or in the ephemeral range 32768-60999", i, s.sport)
		}
		ports = append(ports, s.sport)
	}
	if got := distinctPorts(t, ports); got != n {
		t.Fatalf("%d distinct ports for %d open flows", got, n)
	}
	if dropped := f.reason(socklbWeirReasonWEIR_REASON_NAT_PORTS); dropped != 0 {
		t.Fatalf("nat_ports counted %d drops, want none", dropped)
	}
	// A uniform pick puts ~87% in the low segment (31,744 of 36,280).
	if low < n/2 || high < n/20 {
		t.Fatalf("ports from 1024-32767: %d, from 61000-65535: %d, of %d: want both segments used in proportion", low, high, n)
	}
	checkSNATConsistent(t, f)
}
