package ebpf

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	corev1 "k8s.io/api/core/v1"

	"weir.dev/weir/datapath"
	"weir.dev/weir/test/netns"
)

// The prog-test-run fixture: a namespace whose routes the programs' FIB
// lookups use, with the uplink up0 (node 10.88.0.1, the client
// 10.88.0.2 and another node 10.88.0.3 as static neighbours), local pods
// on 10.244.1.0/24 behind pod0, and the other node's pods on
// 10.244.2.0/24 via 10.88.0.3.
const (
	npNode    = "10.88.0.1"
	npClient  = "10.88.0.2"
	npNode2   = "10.88.0.3"
	npLB      = "192.0.2.10" // a load-balancer IP
	npVIP     = "10.96.0.10"
	npLocal1  = "10.244.1.11"
	npLocal2  = "10.244.1.12"
	npLocal3  = "10.244.1.13"
	npRemote  = "10.244.2.11"
	npNodePrt = 30080
)

var (
	upMAC     = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	clientMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
	node2MAC  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x03}
)

// Verdicts as the programs return them.
const (
	tcxNext    = 0xffffffff // TC_ACT_UNSPEC: not ours, on to the next program
	tcOK       = 0
	tcShot     = 2
	tcRedirect = 7
	xdpDrop    = 1
	xdpPass    = 2
	xdpTX      = 3
	// The fixture's SNAT ports: one segment, small enough for tests to
	// exhaust (TestTCSNATDefaultPorts covers the default two).
	natPortLow  = 61000
	natPortHigh = 65535
)

type npFixture struct {
	t   testing.TB
	ns  string
	tc  *tcnpObjects
	xdp *xdpnpObjects
	lb  *lbSync
	np  *nodePort
}

func newNPFixture(t testing.TB) *npFixture {
	t.Helper()
	return newNPFixtureWith(t, 4096, nil)
}

// newNPFixtureWith sizes conntrack to ctSize and sets the programs'
// variables in vars (by name) before loading.
func newNPFixtureWith(t testing.TB, ctSize int, vars map[string]any) *npFixture {
	t.Helper()
	ns := netns.New(t, "np")
	ex := func(args ...string) { netns.Exec(t, ns, args...) }
	ex("sysctl", "-qw", "net.ipv4.ip_forward=1")
	ex("ip", "link", "add", "up0", "address", upMAC.String(), "type", "veth", "peer", "name", "up1")
	ex("ip", "addr", "add", npNode+"/24", "dev", "up0")
	ex("ip", "link", "add", "pod0", "type", "veth", "peer", "name", "pod1")
	ex("ip", "addr", "add", "10.244.1.1/24", "dev", "pod0")
	for _, l := range []string{"up0", "up1", "pod0", "pod1"} {
		ex("ip", "link", "set", l, "up")
	}
	ex("ip", "route", "add", "10.244.2.0/24", "via", npNode2)
	ex("ip", "neigh", "replace", npNode2, "lladdr", node2MAC.String(), "dev", "up0", "nud", "permanent")
	ex("ip", "neigh", "replace", npClient, "lladdr", clientMAC.String(), "dev", "up0", "nud", "permanent")
	var ifindex int
	netns.Do(t, ns, func() {
		if ifc, err := net.InterfaceByName("up0"); err == nil {
			ifindex = ifc.Index
		}
	})
	if ifindex == 0 {
		t.Fatal("no up0 in the fixture namespace")
	}
	cfg := Config{MaglevSize: DefaultMaglevSize, Sizes: MapSizes{Frontends: 1024, Services: 1024, Slots: 4096, RevNAT: 1024, Affinity: 1024, Conntrack: ctSize}}
	up := uplink{Name: "up0", Index: ifindex, Addr: netip.MustParseAddr(npNode),
		SNATPorts: snatPorts{HighFirst: natPortLow, HighCount: natPortHigh - natPortLow + 1}}
	tcSpec, xdpSpec, err := nodePortSpecs(cfg, up)
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range []*ebpf.CollectionSpec{tcSpec, xdpSpec} {
		for _, m := range spec.Maps {
			m.Pinning = ebpf.PinNone
		}
		for name, v := range vars {
			if err := spec.Variables[name].Set(v); err != nil {
				t.Fatalf("set %s: %v", name, err)
			}
		}
	}
	f := &npFixture{t: t, ns: ns, tc: &tcnpObjects{}, xdp: &xdpnpObjects{}}
	if err := tcSpec.LoadAndAssign(f.tc, nil); err != nil {
		t.Fatalf("load TC programs: %v", err)
	}
	t.Cleanup(func() { f.tc.Close() })
	repl := map[string]*ebpf.Map{}
	for name := range xdpSpec.Maps {
		if m := f.tcMap(name); m != nil {
			repl[name] = m
		}
	}
	if err := xdpSpec.LoadAndAssign(f.xdp, &ebpf.CollectionOptions{MapReplacements: repl}); err != nil {
		t.Fatalf("load XDP program: %v", err)
	}
	t.Cleanup(func() { f.xdp.Close() })
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	caps := mapCaps{Frontends: 1024, Services: 1024, Slots: 4096}
	f.lb = newLBSync(&lbMaps{frontends: f.tc.Lb4Frontends, services: f.tc.Lb4Services, slots: f.tc.Lb4Slots,
		svcStats: f.tc.Lb4SvcStats, reasons: f.tc.Lb4Reasons, caps: caps, ncpu: ncpu, uplinkStats: f.tc.NpSvcStats}, caps)
	f.np = &nodePort{up: up, tc: f.tc, m: cfg.MaglevSize, tables: map[uint32][]backend{}}
	return f
}

func (f *npFixture) tcMap(name string) *ebpf.Map {
	return map[string]*ebpf.Map{
		tcnpMapCt4Flows: f.tc.Ct4Flows, tcnpMapLb4Affinity: f.tc.Lb4Affinity, tcnpMapLb4Frontends: f.tc.Lb4Frontends,
		tcnpMapLb4Maglev: f.tc.Lb4Maglev, tcnpMapLb4Reasons: f.tc.Lb4Reasons, tcnpMapLb4Revnat: f.tc.Lb4Revnat,
		tcnpMapLb4Services: f.tc.Lb4Services, tcnpMapLb4Slots: f.tc.Lb4Slots, tcnpMapLb4SvcStats: f.tc.Lb4SvcStats,
		tcnpMapNpAffinity: f.tc.NpAffinity, tcnpMapNpBackendStats: f.tc.NpBackendStats, tcnpMapNpSvcStats: f.tc.NpSvcStats,
	}[name]
}

// apply programs st as the Dataplane does: socket-LB maps, then tables.
func (f *npFixture) apply(st *datapath.State) {
	f.t.Helper()
	desired, _ := desiredPorts(st)
	if err := f.lb.apply(f.t.Context(), desired); err != nil {
		f.t.Fatalf("apply lb: %v", err)
	}
	if err := f.np.apply(f.t.Context(), st, f.lb); err != nil {
		f.t.Fatalf("apply tables: %v", err)
	}
}

// run runs prog on pkt inside the fixture's namespace.
func (f *npFixture) run(t *testing.T, prog *ebpf.Program, pkt []byte) (uint32, []byte) {
	t.Helper()
	var ret uint32
	var out []byte
	var err error
	netns.Do(t, f.ns, func() {
		opts := &ebpf.RunOptions{Data: pkt, DataOut: make([]byte, len(pkt)+256)}
		ret, err = prog.Run(opts)
		out = opts.DataOut
	})
	if err != nil {
		t.Fatalf("run %s: %v", prog, err)
	}
	return ret, out
}

func (f *npFixture) flushCT() {
	f.t.Helper()
	var k tcnpCt4Key
	var keys []tcnpCt4Key
	var v tcnpCt4Entry
	it := f.tc.Ct4Flows.Iterate()
	for it.Next(&k, &v) {
		keys = append(keys, k)
	}
	for _, k := range keys {
		if err := f.tc.Ct4Flows.Delete(&k); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f *npFixture) reason(r socklbWeirReason) uint64 {
	f.t.Helper()
	var per []uint64
	if err := f.tc.Lb4Reasons.Lookup(uint32(r), &per); err != nil {
		f.t.Fatal(err)
	}
	var n uint64
	for _, v := range per {
		n += v
	}
	return n
}

// npBackend is a backend on this node ("node") or another ("node2").
func npBackend(ip, node string) datapath.Backend {
	return datapath.Backend{Addr: netip.MustParseAddr(ip), Port: 8080, NodeName: node, Ready: true, Serving: true}
}

func npState(mod func(*datapath.Service), backends ...datapath.Backend) *datapath.State {
	s := datapath.Service{
		Namespace: "default", Name: "web", Type: corev1.ServiceTypeLoadBalancer,
		ClusterIP:       netip.MustParseAddr(npVIP),
		LoadBalancerIPs: []netip.Addr{netip.MustParseAddr(npLB)},
		Ports: []datapath.Port{
			{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80, NodePort: npNodePrt, Backends: backends},
			{Name: "udp", Protocol: corev1.ProtocolUDP, Port: 80, NodePort: npNodePrt, Backends: backends},
		},
	}
	if mod != nil {
		mod(&s)
	}
	return &datapath.State{NodeName: "node", NodeIPs: []netip.Addr{netip.MustParseAddr(npNode)}, Services: []datapath.Service{s}}
}

// flow is a packet's addressing; packets are built with gopacket.
type flow struct {
	proto          string // "tcp" or "udp"
	src, dst       string
	sport, dport   uint16
	srcMAC, dstMAC net.HardwareAddr
	syn            bool
	fin, rst       bool
	payload        string
	ttl            uint8 // 64 when 0
}

func fromClient(proto, dst string, sport, dport uint16) flow {
	return flow{proto: proto, src: npClient, dst: dst, sport: sport, dport: dport, srcMAC: clientMAC, dstMAC: upMAC, syn: true, payload: "hello"}
}

func (fl flow) bytes(t testing.TB) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: fl.srcMAC, DstMAC: fl.dstMAC, EthernetType: layers.EthernetTypeIPv4}
	ttl := fl.ttl
	if ttl == 0 {
		ttl = 64
	}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: ttl, Id: 7, Flags: layers.IPv4DontFragment,
		SrcIP: net.ParseIP(fl.src).To4(), DstIP: net.ParseIP(fl.dst).To4()}
	var l4 gopacket.SerializableLayer
	switch fl.proto {
	case "tcp":
		ip.Protocol = layers.IPProtocolTCP
		tcp := &layers.TCP{SrcPort: layers.TCPPort(fl.sport), DstPort: layers.TCPPort(fl.dport), Seq: 1000, SYN: fl.syn, ACK: !fl.syn && !fl.rst, FIN: fl.fin, RST: fl.rst, Window: 64240}
		tcp.SetNetworkLayerForChecksum(ip)
		l4 = tcp
	case "udp":
		ip.Protocol = layers.IPProtocolUDP
		udp := &layers.UDP{SrcPort: layers.UDPPort(fl.sport), DstPort: layers.UDPPort(fl.dport)}
		udp.SetNetworkLayerForChecksum(ip)
		l4 = udp
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true},
		eth, ip, l4, gopacket.Payload(fl.payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// seen is what a packet that left a program says.
type seen struct {
	srcMAC, dstMAC   net.HardwareAddr
	src, dst         string
	sport, dport     uint16
	icmpType, icmpCd uint8
	quoted           []byte // an ICMP error's quoted datagram
	ttl              uint8
}

// decode parses out and checks every checksum in it.
func decode(t *testing.T, out []byte) seen {
	t.Helper()
	p := gopacket.NewPacket(out, layers.LayerTypeEthernet, gopacket.Default)
	eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if eth == nil || ip == nil {
		dumpPcap(t, out)
		t.Fatalf("output is not Ethernet/IPv4:\n%s", hex.Dump(out))
	}
	s := seen{srcMAC: eth.SrcMAC, dstMAC: eth.DstMAC, src: ip.SrcIP.String(), dst: ip.DstIP.String(), ttl: ip.TTL}
	hdr := out[14 : 14+int(ip.IHL)*4]
	if onesSum(hdr) != 0xffff {
		dumpPcap(t, out)
		t.Fatalf("bad IPv4 header checksum %#04x:\n%s", ip.Checksum, hex.Dump(out))
	}
	seg := out[14+int(ip.IHL)*4 : 14+int(ip.Length)]
	switch ip.Protocol {
	case layers.IPProtocolTCP, layers.IPProtocolUDP:
		ph := make([]byte, 0, 12+len(seg))
		ph = append(ph, ip.SrcIP.To4()...)
		ph = append(ph, ip.DstIP.To4()...)
		ph = append(ph, 0, byte(ip.Protocol))
		ph = binary.BigEndian.AppendUint16(ph, uint16(len(seg)))
		ph = append(ph, seg...)
		if onesSum(ph) != 0xffff {
			dumpPcap(t, out)
			t.Fatalf("bad %s checksum:\n%s", ip.Protocol, hex.Dump(out))
		}
		s.sport, s.dport = binary.BigEndian.Uint16(seg[0:2]), binary.BigEndian.Uint16(seg[2:4])
	case layers.IPProtocolICMPv4:
		if onesSum(seg) != 0xffff {
			dumpPcap(t, out)
			t.Fatalf("bad ICMP checksum:\n%s", hex.Dump(out))
		}
		s.icmpType, s.icmpCd, s.quoted = seg[0], seg[1], seg[8:]
	}
	return s
}

func onesSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// dumpPcap writes a failing packet where a test's artefacts go.
func dumpPcap(t *testing.T, pkt []byte) {
	path := filepath.Join(t.TempDir(), "packet.pcap")
	fh, err := os.Create(path)
	if err != nil {
		return
	}
	defer fh.Close()
	w := pcapgo.NewWriter(fh)
	if w.WriteFileHeader(65535, layers.LinkTypeEthernet) == nil &&
		w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Now(), CaptureLength: len(pkt), Length: len(pkt)}, pkt) == nil {
		t.Logf("packet written to %s", path)
	}
}

func (f *npFixture) ingress(t *testing.T, fl flow) (uint32, seen) {
	t.Helper()
	ret, out := f.run(t, f.tc.WeirTcIngress, fl.bytes(t))
	if ret == tcxNext || ret == tcShot {
		return ret, seen{}
	}
	return ret, decode(t, out)
}

func TestTCNodePortLocalBackend(t *testing.T) {
	f := newNPFixture(t)
	f.apply(npState(nil, npBackend(npLocal1, "node")))
	cport := uint16(40000)
	for _, proto := range []string{"tcp", "udp"} {
		for _, dst := range []string{npNode, npLB} {
			// A client port per flow: two flows from one client port to
			// one backend would be one flow to the backend.
			cport++
			t.Run(proto+"/"+dst, func(t *testing.T) {
				port := uint16(npNodePrt)
				if dst == npLB {
					port = 80
				}
				fl := fromClient(proto, dst, cport, port)
				ret, s := f.ingress(t, fl)
				if ret != tcOK {
					t.Fatalf("verdict %d, want TC_ACT_OK (to the stack)", ret)
				}
				// DNAT only: the backend sees the client.
				if s.src != npClient || s.sport != cport || s.dst != npLocal1 || s.dport != 8080 {
					t.Fatalf("forward packet %s:%d -> %s:%d, want %s:%d -> %s:8080", s.src, s.sport, s.dst, s.dport, npClient, cport, npLocal1)
				}
				// The reply leaves through the uplink's egress and gets
				// the frontend back as its source.
				reply := flow{proto: proto, src: npLocal1, dst: npClient, sport: 8080, dport: cport, srcMAC: upMAC, dstMAC: clientMAC, payload: "world"}
				ret, out := f.run(t, f.tc.WeirTcEgress, reply.bytes(t))
				if ret != tcOK {
					t.Fatalf("reply verdict %d, want TC_ACT_OK", ret)
				}
				r := decode(t, out)
				if r.src != dst || r.sport != port || r.dst != npClient || r.dport != cport {
					t.Fatalf("reply %s:%d -> %s:%d, want %s:%d -> %s:%d", r.src, r.sport, r.dst, r.dport, dst, port, npClient, cport)
				}
			})
		}
	}
	entries := readCT(t, f)
	if len(entries) != 8 { // 2 protocols × 2 frontends × 2 directions
		t.Fatalf("conntrack holds %d entries, want 8:\n%v", len(entries), entries)
	}
}

func readCT(t *testing.T, f *npFixture) []CTEntry {
	t.Helper()
	var out []CTEntry
	var k tcnpCt4Key
	var v tcnpCt4Entry
	it := f.tc.Ct4Flows.Iterate()
	for it.Next(&k, &v) {
		out = append(out, ctEntry(k, v, monotonicNow()))
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTCNodePortRemoteBackendSNAT(t *testing.T) {
	f := newNPFixture(t)
	f.apply(npState(nil, npBackend(npRemote, "node2")))
	for _, proto := range []string{"tcp", "udp"} {
		t.Run(proto, func(t *testing.T) {
			ret, s := f.ingress(t, fromClient(proto, npNode, 41000, npNodePrt))
			if ret != tcRedirect {
				t.Fatalf("verdict %d, want TC_ACT_REDIRECT (out the uplink)", ret)
			}
			if s.src != npNode || s.sport < natPortLow || s.dst != npRemote || s.dport != 8080 {
				t.Fatalf("forward packet %s:%d -> %s:%d, want %s:[%d-%d] -> %s:8080", s.src, s.sport, s.dst, s.dport, npNode, natPortLow, natPortHigh, npRemote)
			}
			if !bytes.Equal(s.dstMAC, node2MAC) || !bytes.Equal(s.srcMAC, upMAC) {
				t.Fatalf("forward packet MACs %s -> %s, want %s -> %s (the next hop)", s.srcMAC, s.dstMAC, upMAC, node2MAC)
			}
			if s.ttl != 63 {
				t.Fatalf("forward packet TTL %d, want 63: BPF forwards it, so BPF decrements", s.ttl)
			}
			// The backend's reply comes back in through the uplink.
			reply := flow{proto: proto, src: npRemote, dst: npNode, sport: 8080, dport: s.sport, srcMAC: node2MAC, dstMAC: upMAC, payload: "world"}
			ret, r := f.ingress(t, reply)
			if ret != tcRedirect {
				t.Fatalf("reply verdict %d, want TC_ACT_REDIRECT (back to the client)", ret)
			}
			if r.src != npNode || r.sport != npNodePrt || r.dst != npClient || r.dport != 41000 {
				t.Fatalf("reply %s:%d -> %s:%d, want %s:%d -> %s:41000", r.src, r.sport, r.dst, r.dport, npNode, npNodePrt, npClient)
			}
			if !bytes.Equal(r.dstMAC, clientMAC) || r.ttl != 63 {
				t.Fatalf("reply to MAC %s TTL %d, want the client's %s, 63", r.dstMAC, r.ttl, clientMAC)
			}
			// A packet whose TTL would expire is not forwarded.
			dying := fromClient(proto, npNode, 41000, npNodePrt)
			dying.ttl = 1
			before := f.reason(socklbWeirReasonWEIR_REASON_TTL)
			if ret, _ := f.ingress(t, dying); ret != tcShot || f.reason(socklbWeirReasonWEIR_REASON_TTL) != before+1 {
				t.Fatalf("TTL 1: verdict %d, want TC_ACT_SHOT counted as ttl_expired", ret)
			}
			// A second packet of the flow takes the same source port.
			ret, again := f.ingress(t, fromClient(proto, npNode, 41000, npNodePrt))
			if ret != tcRedirect || again.sport != s.sport || again.dst != npRemote {
				t.Fatalf("second packet: verdict %d, %s:%d -> %s, want the same translation", ret, again.src, again.sport, again.dst)
			}
		})
	}
}

func TestTCConntrackHitKeepsBackend(t *testing.T) {
	f := newNPFixture(t)
	f.apply(npState(nil, npBackend(npLocal1, "node")))
	if _, s := f.ingress(t, fromClient("tcp", npNode, 42000, npNodePrt)); s.dst != npLocal1 {
		t.Fatalf("first packet to %s", s.dst)
	}
	// local1 leaves, local2 arrives: the established flow stays (conntrack
	// hit), a new one goes to local2 (miss).
	f.apply(npState(nil, npBackend(npLocal2, "node")))
	est := fromClient("tcp", npNode, 42000, npNodePrt)
	est.syn = false
	if ret, s := f.ingress(t, est); ret != tcOK || s.dst != npLocal1 {
		t.Fatalf("established flow: verdict %d to %s, want %s (conntrack hit)", ret, s.dst, npLocal1)
	}
	if ret, s := f.ingress(t, fromClient("tcp", npNode, 42001, npNodePrt)); ret != tcOK || s.dst != npLocal2 {
		t.Fatalf("new flow: verdict %d to %s, want %s (conntrack miss)", ret, s.dst, npLocal2)
	}
}

func TestTCNoBackendRejects(t *testing.T) {
	f := newNPFixture(t)
	f.apply(npState(nil)) // no endpoints at all
	for _, proto := range []string{"tcp", "udp"} {
		t.Run(proto, func(t *testing.T) {
			in := fromClient(proto, npNode, 43000, npNodePrt)
			pkt := in.bytes(t)
			ret, s := f.ingress(t, in)
			if ret != tcRedirect {
				t.Fatalf("verdict %d, want TC_ACT_REDIRECT (an ICMP error back out)", ret)
			}
			if s.icmpType != 3 || s.icmpCd != 3 || s.src != npNode || s.dst != npClient {
				t.Fatalf("got ICMP %d/%d %s -> %s, want port unreachable (3/3) %s -> %s", s.icmpType, s.icmpCd, s.src, s.dst, npNode, npClient)
			}
			if !bytes.Equal(s.dstMAC, clientMAC) || !bytes.Equal(s.srcMAC, upMAC) {
				t.Fatalf("MACs %s -> %s, want %s -> %s", s.srcMAC, s.dstMAC, upMAC, clientMAC)
			}
			if want := pkt[14 : 14+28]; !bytes.Equal(s.quoted, want) {
				t.Fatalf("quoted datagram\n%s\nwant\n%s", hex.Dump(s.quoted), hex.Dump(want))
			}
		})
	}
	if n := f.reason(socklbWeirReasonWEIR_REASON_NO_BACKEND); n != 2 {
		t.Fatalf("no_backend counted %d, want 2", n)
	}
	c, err := f.np.counters(f.lb)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Services) != 2 || c.Services[0].Refused != 1 || c.Services[1].Refused != 1 || c.Services[0].Flows != 0 {
		t.Fatalf("service counters %+v, want one refusal each for tcp and udp", c.Services)
	}
}

func TestTCExternalPolicyLocal(t *testing.T) {
	f := newNPFixture(t)
	local := func(s *datapath.Service) { s.ExternalTrafficLocal = true }
	// Backends only on another node: dropped, as kube-proxy does.
	f.apply(npState(local, npBackend(npRemote, "node2")))
	if ret, _ := f.ingress(t, fromClient("tcp", npNode, 44000, npNodePrt)); ret != tcShot {
		t.Fatalf("verdict %d, want TC_ACT_SHOT: no local backend", ret)
	}
	if n := f.reason(socklbWeirReasonWEIR_REASON_NO_LOCAL_BACKEND); n != 1 {
		t.Fatalf("no_local_backend counted %d, want 1", n)
	}
	// With a local one too, only it is used and the client is kept.
	f.apply(npState(local, npBackend(npRemote, "node2"), npBackend(npLocal1, "node")))
	for port := uint16(44001); port < 44041; port++ {
		ret, s := f.ingress(t, fromClient("tcp", npNode, port, npNodePrt))
		if ret != tcOK || s.dst != npLocal1 || s.src != npClient {
			t.Fatalf("flow from port %d: verdict %d, %s -> %s, want %s -> %s", port, ret, s.src, s.dst, npClient, npLocal1)
		}
	}
}

func TestTCSessionAffinity(t *testing.T) {
	f := newNPFixture(t)
	backends := []datapath.Backend{npBackend(npLocal1, "node"), npBackend(npLocal2, "node"), npBackend(npLocal3, "node")}
	spread := func() map[string]int {
		got := map[string]int{}
		for port := uint16(45000); port < 45060; port++ {
			ret, s := f.ingress(t, fromClient("tcp", npNode, port, npNodePrt))
			if ret != tcOK {
				t.Fatalf("verdict %d", ret)
			}
			got[s.dst]++
		}
		return got
	}
	f.apply(npState(nil, backends...))
	if got := spread(); len(got) != 3 {
		t.Fatalf("without affinity one client's flows went to %v, want all three backends", got)
	}
	f.flushCT()
	f.apply(npState(func(s *datapath.Service) { s.AffinityTimeout = time.Hour }, backends...))
	if got := spread(); len(got) != 1 {
		t.Fatalf("with ClientIP affinity one client's flows went to %v, want one backend", got)
	}
}

func TestTCMaglevSpreadAndStability(t *testing.T) {
	f := newNPFixture(t)
	backends := []datapath.Backend{npBackend(npLocal1, "node"), npBackend(npLocal2, "node"), npBackend(npLocal3, "node")}
	const flows = 600
	pick := func() map[uint16]string {
		got := map[uint16]string{}
		for i := range flows {
			port := uint16(20000 + i)
			ret, s := f.ingress(t, fromClient("udp", npNode, port, npNodePrt))
			if ret != tcOK {
				t.Fatalf("verdict %d", ret)
			}
			got[port] = s.dst
		}
		return got
	}
	f.apply(npState(nil, backends...))
	before := pick()
	count := map[string]int{}
	for _, b := range before {
		count[b]++
	}
	for _, b := range []string{npLocal1, npLocal2, npLocal3} {
		if count[b] < flows/3/2 || count[b] > flows/3*2 {
			t.Fatalf("spread %v: each of 3 backends should get about %d flows", count, flows/3)
		}
	}
	// local2 leaves. With conntrack flushed every flow is hashed again:
	// only local2's flows may move, plus Maglev's small disruption.
	f.apply(npState(nil, backends[0], backends[2]))
	f.flushCT()
	after := pick()
	moved := 0
	for port, b := range before {
		switch {
		case after[port] == npLocal2:
			t.Fatalf("flow %d still sent to the removed backend", port)
		case b != npLocal2 && after[port] != b:
			moved++
		}
	}
	if frac := float64(moved) / flows; frac > maglevDisruptionBound {
		t.Fatalf("%d of %d flows on staying backends moved (%.1f%%), bound %.0f%%", moved, flows, 100*frac, 100*maglevDisruptionBound)
	}
	t.Logf("flows per backend %v; after one left, %d flows of staying backends moved", count, moved)
}

func TestTCMalformedAndForeignTraffic(t *testing.T) {
	f := newNPFixture(t)
	f.apply(npState(nil, npBackend(npLocal1, "node")))
	good := fromClient("tcp", npNode, 46000, npNodePrt).bytes(t)
	mut := func(m func([]byte) []byte) []byte { return m(bytes.Clone(good)) }
	for _, tc := range []struct {
		name   string
		pkt    []byte
		reason socklbWeirReason
	}{
		{"not a service port", fromClient("tcp", npNode, 46000, 22).bytes(t), 0},
		{"another host", fromClient("tcp", "10.88.0.77", 46000, npNodePrt).bytes(t), 0},
		{"ICMP echo to the node", mut(func(b []byte) []byte { b[23] = 1; return b }), 0},
		{"ARP", mut(func(b []byte) []byte { b[12], b[13] = 0x08, 0x06; return b[:42] }), 0},
		{"an Ethernet header and two bytes", good[:16], socklbWeirReasonWEIR_REASON_MALFORMED},
		{"IPv4 header cut short", good[:14+12], socklbWeirReasonWEIR_REASON_MALFORMED},
		{"TCP header cut short", good[:14+20+10], socklbWeirReasonWEIR_REASON_MALFORMED},
		{"IHL below 5", mut(func(b []byte) []byte { b[14] = 0x44; return b }), socklbWeirReasonWEIR_REASON_MALFORMED},
		{"IPv6 version in an IPv4 frame", mut(func(b []byte) []byte { b[14] = 0x65; return b }), socklbWeirReasonWEIR_REASON_MALFORMED},
		{"TCP data offset below 5", mut(func(b []byte) []byte { b[14+20+12] = 0x40; return b }), socklbWeirReasonWEIR_REASON_MALFORMED},
		{"total length shorter than the headers", mut(func(b []byte) []byte { b[16], b[17] = 0, 30; return b }), socklbWeirReasonWEIR_REASON_MALFORMED},
		{"a later fragment", mut(func(b []byte) []byte { b[20], b[21] = 0x00, 0x10; return b }), socklbWeirReasonWEIR_REASON_FRAGMENT},
		{"a first fragment", mut(func(b []byte) []byte { b[20], b[21] = 0x20, 0x00; return b }), socklbWeirReasonWEIR_REASON_FRAGMENT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := uint64(0)
			if tc.reason != 0 {
				before = f.reason(tc.reason)
			}
			// The kernel runs SchedCLS tests only on frames that hold an
			// IPv4 header's worth of bytes; shorter ones go to XDP only.
			tcRuns := uint64(0)
			if len(tc.pkt) >= 14+20 {
				for _, prog := range []*ebpf.Program{f.tc.WeirTcIngress, f.tc.WeirTcEgress} {
					ret, out := f.run(t, prog, tc.pkt)
					if ret != tcxNext {
						t.Fatalf("%s: verdict %#x, want TCX_NEXT (untouched)", prog, ret)
					}
					if !bytes.Equal(out, tc.pkt) {
						t.Fatalf("%s: packet changed:\n%s\nwant\n%s", prog, hex.Dump(out), hex.Dump(tc.pkt))
					}
					tcRuns++
				}
			}
			if tc.reason != 0 {
				if n := f.reason(tc.reason) - before; n != tcRuns {
					t.Fatalf("reason %d counted %d times in %d TC runs, want once a run", tc.reason, n, tcRuns)
				}
			}
			ret, out := f.run(t, f.xdp.WeirXdp, tc.pkt)
			if ret != xdpPass || !bytes.Equal(out, tc.pkt) {
				t.Fatalf("xdp: verdict %d, packet changed %v; want XDP_PASS untouched", ret, !bytes.Equal(out, tc.pkt))
			}
		})
	}
	if n := len(readCT(t, f)); n != 0 {
		t.Fatalf("%d conntrack entries after foreign traffic, want 0", n)
	}
}

func TestTCCounters(t *testing.T) {
	f := newNPFixture(t)
	f.apply(npState(nil, npBackend(npLocal1, "node")))
	for i := range 3 {
		if ret, _ := f.ingress(t, fromClient("tcp", npNode, uint16(47000+i), npNodePrt)); ret != tcOK {
			t.Fatalf("verdict %d", ret)
		}
	}
	est := fromClient("tcp", npNode, 47000, npNodePrt)
	est.syn = false
	f.ingress(t, est)
	c, err := f.np.counters(f.lb)
	if err != nil {
		t.Fatal(err)
	}
	var tcp *UplinkServiceCounters
	for i := range c.Services {
		if c.Services[i].Name == "default/web:tcp" {
			tcp = &c.Services[i]
		}
	}
	if tcp == nil || tcp.Flows != 3 || tcp.Packets != 4 || tcp.Bytes == 0 {
		t.Fatalf("service counters %+v, want 3 flows, 4 packets", c.Services)
	}
	if len(c.Backends) != 1 || c.Backends[0].Backend != npLocal1+":8080" || c.Backends[0].Flows != 3 || c.Backends[0].Packets != 4 {
		t.Fatalf("backend counters %+v, want %s:8080 with 3 flows, 4 packets", c.Backends, npLocal1)
	}
}

func TestXDPNodePort(t *testing.T) {
	f := newNPFixture(t)
	f.apply(npState(nil, npBackend(npLocal1, "node")))
	// Local backend: DNAT, then the stack.
	ret, out := f.run(t, f.xdp.WeirXdp, fromClient("tcp", npNode, 48000, npNodePrt).bytes(t))
	if s := decode(t, out); ret != xdpPass || s.dst != npLocal1 || s.dport != 8080 || s.src != npClient {
		t.Fatalf("local: verdict %d, %s:%d -> %s:%d, want XDP_PASS %s -> %s:8080", ret, s.src, s.sport, s.dst, s.dport, npClient, npLocal1)
	}
	// Remote backend: NAT both ways and straight back out.
	f.apply(npState(nil, npBackend(npRemote, "node2")))
	for _, proto := range []string{"tcp", "udp"} {
		ret, out = f.run(t, f.xdp.WeirXdp, fromClient(proto, npNode, 48001, npNodePrt).bytes(t))
		s := decode(t, out)
		if ret != xdpTX || s.src != npNode || s.sport < natPortLow || s.dst != npRemote || !bytes.Equal(s.dstMAC, node2MAC) || s.ttl != 63 {
			t.Fatalf("%s remote: verdict %d, %s:%d -> %s (mac %s), want XDP_TX %s:[nat] -> %s via %s", proto, ret, s.src, s.sport, s.dst, s.dstMAC, npNode, npRemote, node2MAC)
		}
		reply := flow{proto: proto, src: npRemote, dst: npNode, sport: 8080, dport: s.sport, srcMAC: node2MAC, dstMAC: upMAC, payload: "world"}
		ret, out = f.run(t, f.xdp.WeirXdp, reply.bytes(t))
		r := decode(t, out)
		if ret != xdpTX || r.src != npNode || r.sport != npNodePrt || r.dst != npClient || r.dport != 48001 {
			t.Fatalf("%s reply: verdict %d, %s:%d -> %s:%d, want XDP_TX %s:%d -> %s:48001", proto, ret, r.src, r.sport, r.dst, r.dport, npNode, npNodePrt, npClient)
		}
	}
	// No backend: left to TC, which answers with an ICMP error.
	f.apply(npState(nil))
	pkt := fromClient("udp", npNode, 48002, npNodePrt).bytes(t)
	if ret, out := f.run(t, f.xdp.WeirXdp, pkt); ret != xdpPass || !bytes.Equal(out, pkt) {
		t.Fatalf("no backend: verdict %d, want XDP_PASS untouched", ret)
	}
}

// BenchmarkUplinkPassThrough reports what the uplink programs cost a
// packet that is not for a service (a conntrack miss and a frontend miss:
// the tax on all other traffic of the node), as the kernel's test runner
// measures it. A translated packet cannot be measured this way: the
// runner repeats on the rewritten buffer, which no longer matches.
func BenchmarkUplinkPassThrough(b *testing.B) {
	f := newNPFixture(b)
	f.apply(npState(nil, npBackend(npLocal1, "node")))
	for _, bc := range []struct {
		name string
		prog *ebpf.Program
		want uint32
	}{{"tc", f.tc.WeirTcIngress, tcxNext}, {"xdp", f.xdp.WeirXdp, xdpPass}} {
		b.Run(bc.name, func(b *testing.B) {
			pkt := fromClient("tcp", npNode, 50000, 22).bytes(b)
			var err error
			var ret uint32
			var d time.Duration
			netns.Do(b, f.ns, func() { ret, d, err = bc.prog.Benchmark(pkt, max(b.N, 1), b.ResetTimer) })
			if err != nil {
				b.Fatal(err)
			}
			if ret != bc.want {
				b.Fatalf("verdict %#x, want %#x", ret, bc.want)
			}
			b.ReportMetric(float64(d.Nanoseconds()), "ns/packet")
		})
	}
}

// clusterIPState is a ClusterIP-only service (TCP and UDP port 80, no
// nodePort, no external IP) with backends.
func clusterIPState(mod func(*datapath.Service), backends ...datapath.Backend) *datapath.State {
	return npState(func(s *datapath.Service) {
		s.Type = corev1.ServiceTypeClusterIP
		s.LoadBalancerIPs = nil
		for i := range s.Ports {
			s.Ports[i].NodePort = 0
		}
		if mod != nil {
			mod(s)
		}
	}, backends...)
}

// TestTCClusterIPFromOutside: a packet routed to a ClusterIP via the node
// (a router with a route to the service CIDR) is translated like a
// NodePort one: DNAT to a local backend, which sees the client, DNAT and
// SNAT to a remote one, the replies translated back; no backend is
// refused with an ICMP error from the ClusterIP. The port has no Maglev
// table.
func TestTCClusterIPFromOutside(t *testing.T) {
	f := newNPFixture(t)
	f.apply(clusterIPState(nil, npBackend(npLocal1, "node")))
	if len(f.np.tables) != 0 {
		t.Fatalf("Maglev tables %v for a ClusterIP-only service, want none", f.np.tables)
	}
	for i, proto := range []string{"tcp", "udp"} {
		cport := uint16(51000 + i)
		ret, s := f.ingress(t, fromClient(proto, npVIP, cport, 80))
		if ret != tcOK || s.src != npClient || s.sport != cport || s.dst != npLocal1 || s.dport != 8080 {
			t.Fatalf("%s local: verdict %d, %s:%d -> %s:%d, want TC_ACT_OK %s:%d -> %s:8080", proto, ret, s.src, s.sport, s.dst, s.dport, npClient, cport, npLocal1)
		}
		reply := flow{proto: proto, src: npLocal1, dst: npClient, sport: 8080, dport: cport, srcMAC: upMAC, dstMAC: clientMAC, payload: "world"}
		ret, out := f.run(t, f.tc.WeirTcEgress, reply.bytes(t))
		if r := decode(t, out); ret != tcOK || r.src != npVIP || r.sport != 80 || r.dst != npClient || r.dport != cport {
			t.Fatalf("%s local reply: verdict %d, %s:%d -> %s:%d, want %s:80 -> %s:%d", proto, ret, r.src, r.sport, r.dst, r.dport, npVIP, npClient, cport)
		}
	}

	f.apply(clusterIPState(nil, npBackend(npRemote, "node2")))
	for i, proto := range []string{"tcp", "udp"} {
		cport := uint16(51100 + i)
		ret, s := f.ingress(t, fromClient(proto, npVIP, cport, 80))
		if ret != tcRedirect || s.src != npNode || s.sport < natPortLow || s.dst != npRemote || s.dport != 8080 || !bytes.Equal(s.dstMAC, node2MAC) || s.ttl != 63 {
			t.Fatalf("%s remote: verdict %d, %s:%d -> %s:%d (mac %s, ttl %d), want TC_ACT_REDIRECT %s:[nat] -> %s:8080 via %s, ttl 63",
				proto, ret, s.src, s.sport, s.dst, s.dport, s.dstMAC, s.ttl, npNode, npRemote, node2MAC)
		}
		reply := flow{proto: proto, src: npRemote, dst: npNode, sport: 8080, dport: s.sport, srcMAC: node2MAC, dstMAC: upMAC, payload: "world"}
		ret, r := f.ingress(t, reply)
		if ret != tcRedirect || r.src != npVIP || r.sport != 80 || r.dst != npClient || r.dport != cport || !bytes.Equal(r.dstMAC, clientMAC) {
			t.Fatalf("%s remote reply: verdict %d, %s:%d -> %s:%d, want TC_ACT_REDIRECT %s:80 -> %s:%d", proto, ret, r.src, r.sport, r.dst, r.dport, npVIP, npClient, cport)
		}
	}

	f.apply(clusterIPState(nil))
	before := f.reason(socklbWeirReasonWEIR_REASON_NO_BACKEND)
	for i, proto := range []string{"tcp", "udp"} {
		in := fromClient(proto, npVIP, uint16(51200+i), 80)
		pkt := in.bytes(t)
		ret, s := f.ingress(t, in)
		if ret != tcRedirect || s.icmpType != 3 || s.icmpCd != 3 || s.src != npVIP || s.dst != npClient || !bytes.Equal(s.quoted, pkt[14:14+28]) {
			t.Fatalf("%s no backend: verdict %d, ICMP %d/%d %s -> %s, want port unreachable %s -> %s quoting the packet", proto, ret, s.icmpType, s.icmpCd, s.src, s.dst, npVIP, npClient)
		}
	}
	if n := f.reason(socklbWeirReasonWEIR_REASON_NO_BACKEND) - before; n != 2 {
		t.Fatalf("no_backend counted %d, want 2", n)
	}
	// The counters show the ClusterIP-only ports once the uplink saw them.
	c, err := f.np.counters(f.lb)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Services) != 2 || c.Services[0].Frontend != npVIP+":80/tcp" || c.Services[0].Flows != 2 || c.Services[0].Refused != 1 {
		t.Fatalf("service counters %+v, want tcp and udp rows with 2 flows and 1 refusal each", c.Services)
	}
	// Another port of the node untouched: not a frontend.
	if ret, _ := f.ingress(t, fromClient("tcp", npVIP, 51300, 81)); ret != tcxNext {
		t.Fatalf("ClusterIP, port without a service: verdict %#x, want TCX_NEXT", ret)
	}
}

// TestTCClusterIPFromOutsideChoice: flows from outside to a ClusterIP
// spread over its backends, hash to the same one again when conntrack
// lost them, keep theirs when the set changes, honour ClientIP affinity,
// and use the ClusterIP's set (internal policy) even when the port's
// NodePort is limited to local backends by externalTrafficPolicy Local.
func TestTCClusterIPFromOutsideChoice(t *testing.T) {
	f := newNPFixture(t)
	backends := []datapath.Backend{npBackend(npLocal1, "node"), npBackend(npLocal2, "node"), npBackend(npLocal3, "node")}
	pick := func(dst string, dport uint16) map[uint16]string {
		t.Helper()
		got := map[uint16]string{}
		for port := uint16(52000); port < 52060; port++ {
			ret, s := f.ingress(t, fromClient("tcp", dst, port, dport))
			if ret != tcOK && ret != tcRedirect {
				t.Fatalf("flow from %d: verdict %d", port, ret)
			}
			got[port] = s.dst
		}
		return got
	}
	count := func(m map[uint16]string) map[string]int {
		c := map[string]int{}
		for _, b := range m {
			c[b]++
		}
		return c
	}
	f.apply(clusterIPState(nil, backends...))
	first := pick(npVIP, 80)
	if c := count(first); len(c) != 3 {
		t.Fatalf("60 flows went to %v, want all three backends", c)
	}
	f.flushCT()
	for port, b := range pick(npVIP, 80) {
		if first[port] != b {
			t.Fatalf("flow %d went to %s, then to %s after conntrack was flushed, want the same backend", port, first[port], b)
		}
	}
	// local1 leaves: established flows keep their backend.
	f.apply(clusterIPState(nil, backends[1], backends[2]))
	for port, b := range first {
		est := fromClient("tcp", npVIP, port, 80)
		est.syn = false
		if ret, s := f.ingress(t, est); ret != tcOK || s.dst != b {
			t.Fatalf("established flow %d: verdict %d to %s, want %s (conntrack hit)", port, ret, s.dst, b)
		}
	}
	f.flushCT()
	if c := count(pick(npVIP, 80)); c[npLocal1] != 0 || len(c) != 2 {
		t.Fatalf("new flows after %s left went to %v", npLocal1, c)
	}

	f.flushCT()
	f.apply(clusterIPState(func(s *datapath.Service) { s.AffinityTimeout = time.Hour }, backends...))
	if c := count(pick(npVIP, 80)); len(c) != 1 {
		t.Fatalf("with ClientIP affinity one client's flows went to %v, want one backend", c)
	}

	// externalTrafficPolicy Local limits the NodePort, not the ClusterIP.
	f.flushCT()
	f.apply(npState(func(s *datapath.Service) { s.ExternalTrafficLocal = true }, npBackend(npLocal1, "node"), npBackend(npRemote, "node2")))
	if c := count(pick(npNode, npNodePrt)); len(c) != 1 || c[npLocal1] != 60 {
		t.Fatalf("NodePort with policy Local went to %v, want %s only", c, npLocal1)
	}
	if c := count(pick(npVIP, 80)); c[npLocal1] == 0 || c[npRemote] == 0 {
		t.Fatalf("ClusterIP from outside went to %v, want the local and the remote backend", c)
	}
}

// TestXDPClusterIPFromOutside: XDP shares the decision, so it finishes a
// ClusterIP flow from outside as it does a NodePort one.
func TestXDPClusterIPFromOutside(t *testing.T) {
	f := newNPFixture(t)
	f.apply(clusterIPState(nil, npBackend(npLocal1, "node")))
	ret, out := f.run(t, f.xdp.WeirXdp, fromClient("tcp", npVIP, 53000, 80).bytes(t))
	if s := decode(t, out); ret != xdpPass || s.src != npClient || s.dst != npLocal1 || s.dport != 8080 {
		t.Fatalf("local: verdict %d, %s -> %s:%d, want XDP_PASS %s -> %s:8080", ret, s.src, s.dst, s.dport, npClient, npLocal1)
	}
	f.apply(clusterIPState(nil, npBackend(npRemote, "node2")))
	ret, out = f.run(t, f.xdp.WeirXdp, fromClient("udp", npVIP, 53001, 80).bytes(t))
	s := decode(t, out)
	if ret != xdpTX || s.src != npNode || s.sport < natPortLow || s.dst != npRemote || !bytes.Equal(s.dstMAC, node2MAC) {
		t.Fatalf("remote: verdict %d, %s:%d -> %s (mac %s), want XDP_TX %s:[nat] -> %s via %s", ret, s.src, s.sport, s.dst, s.dstMAC, npNode, npRemote, node2MAC)
	}
	reply := flow{proto: "udp", src: npRemote, dst: npNode, sport: 8080, dport: s.sport, srcMAC: node2MAC, dstMAC: upMAC, payload: "world"}
	ret, out = f.run(t, f.xdp.WeirXdp, reply.bytes(t))
	if r := decode(t, out); ret != xdpTX || r.src != npVIP || r.sport != 80 || r.dst != npClient || r.dport != 53001 {
		t.Fatalf("remote reply: verdict %d, %s:%d -> %s:%d, want XDP_TX %s:80 -> %s:53001", ret, r.src, r.sport, r.dst, r.dport, npVIP, npClient)
	}
}

// TestTCMaglevTableOfAnotherPortUnused stands for a table element the
// kernel recycled while a packet still held it: a table whose header
// names another service port must not be used: the packet is dropped as
// a table miss of a port with backends is (the client retransmits), not
// sent to that port's backends.
func TestTCMaglevTableOfAnotherPortUnused(t *testing.T) {
	f := newNPFixture(t)
	f.apply(npState(nil, npBackend(npLocal1, "node")))
	p := f.lb.ports[frontend{netip.MustParseAddr(npVIP), 80, 6}]
	if p == nil {
		t.Fatal("tcp port not programmed")
	}
	val := make([]byte, maglevValueSize(f.np.m))
	if err := f.tc.Lb4Maglev.Lookup(p.ID, &val); err != nil {
		t.Fatal(err)
	}
	binary.NativeEndian.PutUint32(val, p.ID+1000)
	if err := f.tc.Lb4Maglev.Update(p.ID, val, ebpf.UpdateExist); err != nil {
		t.Fatal(err)
	}
	before := f.reason(socklbWeirReasonWEIR_REASON_NO_LOCAL_BACKEND)
	if ret, _ := f.ingress(t, fromClient("tcp", npNode, 43100, npNodePrt)); ret != tcShot {
		t.Fatalf("verdict %d, want TC_ACT_SHOT: a table written for another port is no table", ret)
	}
	if n := f.reason(socklbWeirReasonWEIR_REASON_NO_LOCAL_BACKEND); n != before+1 {
		t.Fatalf("drop counted %d times, want once", n-before)
	}
	// Written back whole for its port, the table serves again.
	if err := f.np.putTable(p.ID, []backend{{netip.MustParseAddr(npLocal1), 8080}}); err != nil {
		t.Fatal(err)
	}
	ret, s := f.ingress(t, fromClient("tcp", npNode, 43101, npNodePrt))
	if ret != tcOK || s.dst != npLocal1 {
		t.Fatalf("verdict %d to %s after the table is rewritten, want TC_ACT_OK to %s", ret, s.dst, npLocal1)
	}
}
