package dpbench

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cebpf "github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	corev1 "k8s.io/api/core/v1"

	"weir.dev/weir/datapath"
)

// The NodePort topology: an external client on an underlay bridge
// reaches the node's uplink; one backend pod sits on the node's bridge,
// another on a second node on the same underlay (only the first node
// runs the data plane under test):
//
//	ext (10.88.0.2, bridge ul0) -+- n1|up0 [node 10.88.0.1 | br0 10.244.1.1] --- pod 10.244.1.11
//	                             +- n2|up0 [node2 10.88.0.3 | br0 10.244.2.1] --- pod 10.244.2.11
//
// The client is in no cgroup of the node, so no socket hook sees its
// connections: every packet takes the node's per-packet path (XDP, TC or
// netfilter), which is what NodePort from outside costs.
const (
	// Uplink is the node's interface to the underlay, where the data
	// plane under test attaches its NodePort programs.
	Uplink  = "up0"
	NodeIP  = "10.88.0.1"
	extIP   = "10.88.0.2"
	podAddr = "10.244.1.11:8080" // the service's backend
	// directAddr is the same server on another port for the direct
	// baseline, so that the two paths never share a four-tuple at the
	// pod (the client's TCP timestamps differ per destination address,
	// and a SYN with older timestamps than a socket's on the same tuple
	// is dropped).
	directAddr = "10.244.1.11:8081"
	nodePort   = 30080
	// The remote backend, behind nodePort+1.
	node2IP          = "10.88.0.3"
	remoteAddr       = "10.244.2.11:8080"
	remoteDirectAddr = "10.244.2.11:8081"
)

// NodePortFigure is one data plane's NodePort figures at one service
// count, each beside the same client going straight to the pod (routed
// through the node, no service).
type NodePortFigure struct {
	Services int `json:"services"`
	// Backend is "local" (a pod on the node) or "remote" (a pod on
	// another node: the node translates the client's address too).
	Backend string `json:"backend"`
	// BrNetfilter is net.bridge.bridge-nf-call-iptables read inside the
	// node's namespace.
	BrNetfilter string `json:"br_netfilter_call_iptables"`
	// Latency is connect+request+close through nodeIP:nodePort, with the
	// direct-to-pod baseline in its Direct fields.
	Latency LatencyFigure `json:"latency"`
	// Conns and Reqs are time-bounded rates: new connections (each one
	// request) per second, and requests per second on kept connections,
	// from RateWorkers concurrent clients for RateTime.
	Conns       RateFigure `json:"new_connections"`
	DirectConns RateFigure `json:"direct_new_connections"`
	Reqs        RateFigure `json:"kept_connection_requests"`
	DirectReqs  RateFigure `json:"direct_kept_connection_requests"`
	// UDP is 64-byte frames (18-byte UDP payloads) sent for RateTime by
	// RateWorkers senders, one flow each: PerSecond and Done count what
	// the backend received, Errors what was sent and not received.
	UDP       RateFigure `json:"udp_64b_packets"`
	DirectUDP RateFigure `json:"direct_udp_64b_packets"`
	// Reasons are the data plane's own counts of refused, dropped or
	// degraded translations by reason over the run (both paths), from a
	// data plane that keeps them (ebpf).
	Reasons map[string]uint64 `json:"reasons,omitempty"`
	// Conntrack are the node's netfilter conntrack statistics over the
	// run (both paths) that show lost packets: insert_failed (a NAT or
	// insert race lost: the packet is dropped), clashres (one resolved),
	// drop, invalid.
	Conntrack map[string]uint64 `json:"node_conntrack,omitempty"`
}

// ReasonCounter is a data plane that counts what it refused or dropped,
// by reason.
type ReasonCounter interface {
	Reasons() (map[string]uint64, error)
}

// RateFigure is what a time-bounded run achieved.
type RateFigure struct {
	PerSecond float64       `json:"per_second"`
	Done      int           `json:"done"`
	Errors    int           `json:"errors"`
	Took      time.Duration `json:"took_ns"`
}

type npTopo struct{ node, pod, ext, node2, pod2 string }

// newNPTopo builds the NodePort topology; native readies it for native
// XDP on the uplink (MACHINE.md): an XDP_PASS program on the uplink's
// peer, so that XDP_TX frames are delivered, and tx checksum offload off
// on the client's side, since XDP cannot tell a partial checksum.
func newNPTopo(native bool) (*npTopo, func(), error) {
	seq++
	sfx := fmt.Sprintf("%d%d", time.Now().UnixNano()%100000, seq)
	t := &npTopo{node: "dpnn" + sfx, pod: "dpnp" + sfx, ext: "dpnx" + sfx, node2: "dpnm" + sfx, pod2: "dpnr" + sfx}
	var closers []func()
	cleanup := func() {
		for _, c := range closers {
			c()
		}
		for _, n := range []string{t.node, t.pod, t.ext, t.node2, t.pod2} {
			_ = exec.Command("ip", "netns", "del", n).Run()
		}
	}
	for _, n := range []string{t.node, t.pod, t.ext, t.node2, t.pod2} {
		if out, err := exec.Command("ip", "netns", "add", n).CombinedOutput(); err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("netns add: %v %s", err, out)
		}
	}
	steps := [][]string{
		{t.ext, "ip", "link", "set", "lo", "up"},
		{t.ext, "sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"},
		{t.ext, "ip", "link", "add", "ul0", "type", "bridge"},
		{t.ext, "ip", "addr", "add", extIP + "/24", "dev", "ul0"},
		{t.ext, "ip", "link", "set", "ul0", "up"},
		{t.node, "ip", "link", "set", "lo", "up"},
		{t.node, "ip", "link", "add", "br0", "type", "bridge"},
		{t.node, "ip", "addr", "add", "10.244.1.1/24", "dev", "br0"},
		{t.node, "ip", "link", "set", "br0", "up"},
		{t.node, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
		{t.node, "ip", "link", "add", Uplink, "type", "veth", "peer", "name", "n1", "netns", t.ext},
		{t.node, "ip", "addr", "add", NodeIP + "/24", "dev", Uplink},
		{t.node, "ip", "link", "set", Uplink, "up"},
		{t.ext, "ip", "link", "set", "n1", "master", "ul0"},
		{t.ext, "ip", "link", "set", "n1", "up"},
		{t.node, "ip", "route", "add", "default", "via", extIP},
		{t.node2, "ip", "link", "set", "lo", "up"},
		{t.node2, "ip", "link", "add", "br0", "type", "bridge"},
		{t.node2, "ip", "addr", "add", "10.244.2.1/24", "dev", "br0"},
		{t.node2, "ip", "link", "set", "br0", "up"},
		{t.node2, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
		{t.node2, "ip", "link", "add", Uplink, "type", "veth", "peer", "name", "n2", "netns", t.ext},
		{t.node2, "ip", "addr", "add", node2IP + "/24", "dev", Uplink},
		{t.node2, "ip", "link", "set", Uplink, "up"},
		{t.ext, "ip", "link", "set", "n2", "master", "ul0"},
		{t.ext, "ip", "link", "set", "n2", "up"},
		{t.node2, "ip", "route", "add", "default", "via", extIP},
		{t.node, "ip", "route", "add", "10.244.2.0/24", "via", node2IP},
		{t.node2, "ip", "route", "add", "10.244.1.0/24", "via", NodeIP},
		// The direct baseline: the outside routes pod addresses via the
		// node, which forwards the second node's out the way they came
		// in; no redirect may teach the outside a shorter way.
		{t.ext, "ip", "route", "add", "10.244.0.0/16", "via", NodeIP},
		{t.ext, "sysctl", "-qw", "net.ipv4.conf.all.accept_redirects=0"},
		// The way back goes through the node too: kube-proxy's rules drop
		// forwarded packets of a flow whose other half the node never saw.
		{t.node2, "ip", "route", "add", extIP + "/32", "via", NodeIP},
		{t.node, "sysctl", "-qw", "net.ipv4.conf.all.send_redirects=0"},
		{t.node, "sysctl", "-qw", "net.ipv4.conf." + Uplink + ".send_redirects=0"},
	}
	for _, p := range []struct{ node, pod, ip, gw string }{{t.node, t.pod, "10.244.1.11", "10.244.1.1"}, {t.node2, t.pod2, "10.244.2.11", "10.244.2.1"}} {
		steps = append(steps,
			[]string{p.node, "ip", "link", "add", "vbp", "type", "veth", "peer", "name", "eth0", "netns", p.pod},
			[]string{p.node, "ip", "link", "set", "vbp", "master", "br0"},
			[]string{p.node, "ip", "link", "set", "vbp", "up"},
			[]string{p.pod, "ip", "link", "set", "lo", "up"},
			[]string{p.pod, "ip", "addr", "add", p.ip + "/24", "dev", "eth0"},
			[]string{p.pod, "ip", "link", "set", "eth0", "up"},
			[]string{p.pod, "ip", "route", "add", "default", "via", p.gw})
	}
	if native {
		// What the node receives from outside: the client's bridge and
		// the second node's uplink send complete checksums.
		steps = append(steps, []string{t.ext, "ethtool", "-K", "ul0", "tx", "off"},
			[]string{t.node2, "ethtool", "-K", Uplink, "tx", "off"})
	}
	for _, s := range steps {
		if err := ip(s[0], s[1:]...); err != nil {
			cleanup()
			return nil, nil, err
		}
	}
	if native {
		closeXDP, err := xdpPass(t.ext, "n1")
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		closers = append(closers, closeXDP)
	}
	return t, cleanup, nil
}

// xdpPass attaches an XDP program that passes every frame to ifname in
// ns, in driver mode.
func xdpPass(ns, ifname string) (func(), error) {
	prog, err := cebpf.NewProgram(&cebpf.ProgramSpec{
		Type:    cebpf.XDP,
		License: "GPL",
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, 2), // XDP_PASS
			asm.Return(),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("load XDP_PASS: %w", err)
	}
	var l link.Link
	err = inNetns(ns, func() error {
		ifc, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifc.Index, Flags: link.XDPDriverMode})
		return err
	})
	if err != nil {
		prog.Close()
		return nil, fmt.Errorf("attach XDP_PASS to %s in %s: %w", ifname, ns, err)
	}
	return func() { l.Close(); prog.Close() }, nil
}

// serveNP answers every line with "ok"; after a line other than "k" it
// waits for the client to close first, as an HTTP client does, so that
// TIME_WAIT stays with the client (which reuses it, tcp_tw_reuse=1), not
// with the server: a server's TIME_WAIT meets SYNs of new flows on the
// same four-tuple (client ports wrap at these rates, NAT picks random
// ports) and drops some of them (PAWS), which costs a 1 s SYN retransmit
// and is no figure of the data plane.
func serveNP(ns, addr string) (func(), error) {
	var ln net.Listener
	if err := inNetns(ns, func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte("ok\n")); err != nil {
						return
					}
					if line != "k\n" {
						_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
						_, _ = r.ReadString('\n')
						return
					}
				}
			}()
		}
	}()
	return func() { ln.Close() }, nil
}

// nodePortState is synthetic(n) with its last service, the one backed by
// the pod, made a NodePort service, and one more NodePort service
// (nodePort+1) backed by the pod on the second node. The others stay
// ClusterIP (the nodePort range holds fewer than 10,000 ports), so a
// linear chain still walks every one of them before KUBE-NODEPORTS.
func nodePortState(n int) *datapath.State {
	st := synthetic(n)
	st.NodeIPs = []netip.Addr{netip.MustParseAddr(NodeIP)}
	last := &st.Services[len(st.Services)-1]
	last.Type = corev1.ServiceTypeNodePort
	last.Ports[0].NodePort = nodePort
	last.Ports = append(last.Ports, datapath.Port{Name: "udp", Protocol: corev1.ProtocolUDP, Port: 80, NodePort: nodePort, Backends: last.Ports[0].Backends})
	ap := netip.MustParseAddrPort(remoteAddr)
	bes := []datapath.Backend{{Addr: ap.Addr(), Port: ap.Port(), NodeName: "node2", Ready: true, Serving: true}}
	st.Services = append(st.Services, datapath.Service{Namespace: "bench", Name: "zzz-target-remote", Type: corev1.ServiceTypeNodePort,
		ClusterIP: netip.MustParseAddr("10.96.200.2"), Ports: []datapath.Port{
			{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, NodePort: nodePort + 1, Backends: bes},
			{Name: "udp", Protocol: corev1.ProtocolUDP, Port: 80, NodePort: nodePort + 1, Backends: bes}}})
	return st
}

// warm makes one exchange to addr from ns, retrying for a while: the
// first answer from outside to a pod in a fresh topology can be lost
// (the client sees it only after its SYN retransmit, with no data plane
// at all), which is no figure of the data plane.
func warm(ns, addr string) error {
	return inNetns(ns, func() error {
		var err error
		for range 10 {
			var c net.Conn
			if c, err = net.DialTimeout("tcp", addr, 3*time.Second); err != nil {
				continue
			}
			_ = c.SetDeadline(time.Now().Add(3 * time.Second))
			if _, err = c.Write([]byte("x\n")); err == nil {
				_, err = bufio.NewReader(c).ReadString('\n')
			}
			c.Close()
			if err == nil {
				return nil
			}
		}
		return fmt.Errorf("warm-up exchange with %s: %w", addr, err)
	})
}

// rate runs workers clients in ns against addr for d: each makes new
// one-request connections, or (kept) requests on one connection of its
// own. Every exchange has a deadline of its own, so the run ends by d
// plus at most that deadline.
func rate(ns, addr string, workers int, d time.Duration, kept bool) (RateFigure, error) {
	var (
		mu   sync.Mutex
		fig  RateFigure
		wg   sync.WaitGroup
		errc = make(chan error, workers)
	)
	start := time.Now()
	end := start.Add(d)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- inNetns(ns, func() error {
				done, errs := 0, 0
				var c net.Conn
				var rd *bufio.Reader
				for time.Now().Before(end) {
					if c == nil {
						var err error
						if c, err = net.DialTimeout("tcp", addr, time.Second); err != nil {
							errs++
							c = nil
							continue
						}
						rd = bufio.NewReader(c)
					}
					_ = c.SetDeadline(time.Now().Add(time.Second))
					msg := "x\n"
					if kept {
						msg = "k\n"
					}
					_, err := c.Write([]byte(msg))
					if err == nil {
						_, err = rd.ReadString('\n')
					}
					if err != nil || !kept {
						c.Close()
						c = nil
					}
					if err != nil {
						errs++
						continue
					}
					done++
				}
				if c != nil {
					c.Close()
				}
				mu.Lock()
				fig.Done += done
				fig.Errors += errs
				mu.Unlock()
				return nil
			})
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			return fig, err
		}
	}
	fig.Took = time.Since(start)
	fig.PerSecond = float64(fig.Done) / fig.Took.Seconds()
	if fig.Done == 0 {
		return fig, errors.New("no successful exchange")
	}
	return fig, nil
}

// conntrackStats sums the per-CPU netfilter conntrack statistics of ns
// that show lost packets or races.
func conntrackStats(ns string) map[string]uint64 {
	out := map[string]uint64{}
	_ = inNetns(ns, func() error {
		b, err := os.ReadFile("/proc/net/stat/nf_conntrack")
		if err != nil {
			return nil
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		head := strings.Fields(lines[0])
		for _, l := range lines[1:] {
			for i, f := range strings.Fields(l) {
				var v uint64
				if i < len(head) && slices.Contains([]string{"insert_failed", "clashres", "drop", "invalid"}, head[i]) {
					if _, err := fmt.Sscanf(f, "%x", &v); err == nil {
						out[head[i]] += v
					}
				}
			}
		}
		return nil
	})
	return out
}

// countUDP counts the datagrams that reach addr in ns.
func countUDP(ns, addr string) (*atomic.Uint64, func(), error) {
	var pc net.PacketConn
	if err := inNetns(ns, func() (err error) { pc, err = net.ListenPacket("udp", addr); return err }); err != nil {
		return nil, nil, err
	}
	if uc, ok := pc.(*net.UDPConn); ok {
		_ = uc.SetReadBuffer(4 << 20)
	}
	n := new(atomic.Uint64)
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			n.Add(1)
		}
	}()
	return n, func() { pc.Close() }, nil
}

// udpPayload makes 64-byte Ethernet frames (14 + 20 + 8 + 18, and 4
// bytes of FCS on a wire).
var udpPayload = make([]byte, 18)

// udpRate sends 64-byte frames to addr from workers senders in ns for
// d, one flow each, and reports what count, the receiver's counter,
// saw arrive.
func udpRate(ns, addr string, count *atomic.Uint64, workers int, d time.Duration) (RateFigure, error) {
	var (
		sent atomic.Uint64
		wg   sync.WaitGroup
		errc = make(chan error, workers)
	)
	before := count.Load()
	start := time.Now()
	end := start.Add(d)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- inNetns(ns, func() error {
				c, err := net.Dial("udp", addr)
				if err != nil {
					return err
				}
				defer c.Close()
				var n uint64
				for i := 0; ; i++ {
					// The clock only every 64 sends: it costs more than a send.
					if i%64 == 0 && !time.Now().Before(end) {
						break
					}
					if _, err := c.Write(udpPayload); err == nil {
						n++
					}
				}
				sent.Add(n)
				return nil
			})
		}()
	}
	wg.Wait()
	took := time.Since(start)
	close(errc)
	for err := range errc {
		if err != nil {
			return RateFigure{}, err
		}
	}
	// What is still in flight arrives within moments.
	time.Sleep(200 * time.Millisecond)
	got := count.Load() - before
	fig := RateFigure{Done: int(got), Took: took, PerSecond: float64(got) / took.Seconds()}
	if s := sent.Load(); s > got {
		fig.Errors = int(s - got)
	}
	return fig, nil
}

// brNetfilter reads bridge-nf-call-iptables inside ns.
func brNetfilter(ns string) string {
	v := "absent"
	_ = inNetns(ns, func() error {
		b, err := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables")
		if err == nil {
			v = strings.TrimSpace(string(b))
		}
		return nil
	})
	return v
}

// RunNodePort measures one data plane's NodePort path from an external
// client at each of o.NodePort service counts. d.New is called with the
// node's namespace, where it must attach to Uplink.
func RunNodePort(d Dataplane, o Options) (*Result, error) {
	res := &Result{Dataplane: d.Name, Conditions: d.Conditions}
	for _, n := range o.NodePort {
		figs, err := nodePortRun(d, o, n)
		if errors.Is(err, errSkip) {
			res.Notes = append(res.Notes, fmt.Sprintf("NodePort at %d services: programming > cap (%s), skipped", n, o.Cap))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: NodePort at %d services: %w", d.Name, n, err)
		}
		res.NodePort = append(res.NodePort, figs...)
	}
	return res, nil
}

func nodePortRun(d Dataplane, o Options, n int) ([]NodePortFigure, error) {
	t, cleanup, err := newNPTopo(d.NativeXDP)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	udpCount := map[string]*atomic.Uint64{}
	for _, srv := range []struct{ ns, addr string }{{t.pod, podAddr}, {t.pod, directAddr}, {t.pod2, remoteAddr}, {t.pod2, remoteDirectAddr}} {
		stop, err := serveNP(srv.ns, srv.addr)
		if err != nil {
			return nil, err
		}
		defer stop()
		n, stop, err := countUDP(srv.ns, srv.addr)
		if err != nil {
			return nil, err
		}
		defer stop()
		udpCount[srv.addr] = n
	}
	brnf := brNetfilter(t.node)
	ct0 := conntrackStats(t.node)
	dp, err := d.New(t.node)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	defer dp.Close()
	_, c, err := applyCapped(dp, nodePortState(n), o.Cap)
	if err != nil {
		return nil, fmt.Errorf("program: %w", err)
	}
	if c {
		return nil, errSkip
	}
	var figs []NodePortFigure
	for _, path := range []struct{ backend, np, direct string }{
		{"local", fmt.Sprintf("%s:%d", NodeIP, nodePort), directAddr},
		{"remote", fmt.Sprintf("%s:%d", NodeIP, nodePort+1), remoteDirectAddr},
	} {
		fig := NodePortFigure{Services: n, Backend: path.backend, BrNetfilter: brnf}
		if err := nodePortPath(t.ext, path.np, path.direct, o, &fig); err != nil {
			return nil, fmt.Errorf("%s backend: %w", path.backend, err)
		}
		backend := map[string]string{"local": podAddr, "remote": remoteAddr}[path.backend]
		for _, r := range []struct {
			fig       *RateFigure
			to, count string
		}{{&fig.DirectUDP, path.direct, path.direct}, {&fig.UDP, path.np, backend}} {
			if *r.fig, err = udpRate(t.ext, r.to, udpCount[r.count], o.RateWorkers, o.RateTime); err != nil {
				return nil, fmt.Errorf("%s backend: UDP to %s: %w", path.backend, r.to, err)
			}
		}
		figs = append(figs, fig)
	}
	ct1 := conntrackStats(t.node)
	ct := map[string]uint64{}
	for k, v := range ct1 {
		if v > ct0[k] {
			ct[k] = v - ct0[k]
		}
	}
	for i := range figs {
		figs[i].Conntrack = ct
	}
	if rc, ok := dp.(ReasonCounter); ok {
		reasons, err := rc.Reasons()
		if err != nil {
			return nil, fmt.Errorf("read counters: %w", err)
		}
		for i := range figs {
			figs[i].Reasons = reasons
		}
	}
	return figs, nil
}

// nodePortPath measures one NodePort path from the client in ns, and the
// direct path to the same pod beside it.
func nodePortPath(ns, np, directAddr string, o Options, fig *NodePortFigure) error {
	for _, a := range []string{directAddr, np} {
		if err := warm(ns, a); err != nil {
			return err
		}
	}
	direct, err := latency(ns, "", directAddr, o.Requests)
	if err != nil {
		return fmt.Errorf("direct latency: %w", err)
	}
	if fig.Latency, err = latency(ns, "", np, o.Requests); err != nil {
		return fmt.Errorf("NodePort latency: %w", err)
	}
	fig.Latency.Services, fig.Latency.DirectP50, fig.Latency.DirectP99 = fig.Services, direct.P50, direct.P99
	for _, r := range []struct {
		fig  *RateFigure
		addr string
		kept bool
	}{{&fig.DirectConns, directAddr, false}, {&fig.Conns, np, false}, {&fig.DirectReqs, directAddr, true}, {&fig.Reqs, np, true}} {
		if *r.fig, err = rate(ns, r.addr, o.RateWorkers, o.RateTime, r.kept); err != nil {
			return fmt.Errorf("rate to %s: %w", r.addr, err)
		}
	}
	return nil
}

// nodePortMarkdown renders the NodePort section.
func nodePortMarkdown(b *strings.Builder, rs []*Result, o Options) {
	var any bool
	for _, r := range rs {
		any = any || len(r.NodePort) > 0
	}
	if !any {
		return
	}
	fmt.Fprintf(b, "\n## NodePort from an external client\n\n"+
		"The client is in a namespace on the node's underlay, in no cgroup of the node (no socket hook sees it): nodeIP:nodePort is translated per packet on the node's uplink. "+
		"The service is the last of the node's services (the others ClusterIP); its backend is a pod on the node (local) or on a second node on the underlay (remote: the node translates the client's address too and sends the packets back out of the uplink). Latency: %d sequential connect+request+close. "+
		"Rates: %d concurrent clients for %s, new connections (one request each) and requests on kept connections; "+
		"UDP: as many senders, one flow each, of 64-byte frames (18-byte payloads) for as long, counted as the backend received them (\"lost\": sent and not received). "+
		"\"direct\" is the same client to the same pod's address (another port), routed through the node, on the same node state. "+
		"br_netfilter is bridge-nf-call-iptables inside the node's namespace.\n\n"+
		"| data plane | conditions | services | backend | br_netfilter | via nodePort p50 / p99 | direct p50 / p99 | ratio p50 | new conns/s via nodePort / direct | kept-conn requests/s via nodePort / direct | UDP packets/s received via nodePort / direct (lost) |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
		o.Requests, o.RateWorkers, o.RateTime)
	for _, r := range rs {
		for _, f := range r.NodePort {
			l := f.Latency
			fmt.Fprintf(b, "| %s | %s | %d | %s | %s | %s / %s | %s / %s | %.2f | %s / %s | %s / %s | %s / %s (%d / %d) |\n", r.Dataplane, r.Conditions, f.Services, f.Backend, f.BrNetfilter,
				l.P50.Round(time.Microsecond), l.P99.Round(time.Microsecond), l.DirectP50.Round(time.Microsecond), l.DirectP99.Round(time.Microsecond),
				float64(l.P50)/float64(l.DirectP50), rateStr(f.Conns), rateStr(f.DirectConns), rateStr(f.Reqs), rateStr(f.DirectReqs),
				rateStr(f.UDP), rateStr(f.DirectUDP), f.UDP.Errors, f.DirectUDP.Errors)
		}
	}
	for _, r := range rs {
		for _, f := range r.NodePort {
			var errs []string
			for _, e := range []struct {
				what string
				n    int
			}{{"latency via nodePort", f.Latency.Errors}, {"new conns via nodePort", f.Conns.Errors}, {"new conns direct", f.DirectConns.Errors},
				{"kept-conn requests via nodePort", f.Reqs.Errors}, {"kept-conn requests direct", f.DirectReqs.Errors}} {
				if e.n > 0 {
					errs = append(errs, fmt.Sprintf("%s %d", e.what, e.n))
				}
			}
			sort.Strings(errs)
			if f.Backend == "remote" && len(f.Reasons) > 0 {
				var rs []string
				for k, v := range f.Reasons {
					rs = append(rs, fmt.Sprintf("%s %d", k, v))
				}
				sort.Strings(rs)
				errs = append(errs, "(data plane's counters over both backends' runs: "+strings.Join(rs, ", ")+")")
			}
			if len(errs) > 0 && len(f.Conntrack) > 0 {
				var cs []string
				for k, v := range f.Conntrack {
					cs = append(cs, fmt.Sprintf("%s %d", k, v))
				}
				sort.Strings(cs)
				errs = append(errs, "(node's conntrack over both backends' runs: "+strings.Join(cs, ", ")+")")
			}
			if len(errs) > 0 {
				fmt.Fprintf(b, "\nNote (%s, %d services, %s backend): failed exchanges: %s\n", r.Dataplane, f.Services, f.Backend, strings.Join(errs, ", "))
			}
		}
	}
}

func rateStr(r RateFigure) string { return fmt.Sprintf("%.0f", r.PerSecond) }
