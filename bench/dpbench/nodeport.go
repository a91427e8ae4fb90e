package dpbench

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"

	cebpf "github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	corev1 "k8s.io/api/core/v1"

	"weir.dev/weir/datapath"
)

// The NodePort topology: an external client on an underlay bridge
// reaches the node's uplink; the backend pod sits on the node's bridge.
//
//	ext (10.88.0.2, bridge ul0) --- n1|up0 [node 10.88.0.1 | br0 10.244.1.1] --- pod 10.244.1.11
//
// The client is in no cgroup of the node, so no socket hook sees its
// connections: every packet takes the node's per-packet path (XDP, TC or
// netfilter), which is what NodePort from outside costs.
const (
	// Uplink is the node's interface to the underlay, where the data
	// plane under test attaches its NodePort programs.
	Uplink   = "up0"
	NodeIP   = "10.88.0.1"
	extIP    = "10.88.0.2"
	podAddr  = "10.244.1.11:8080" // the service's backend
	// directAddr is the same server on another port for the direct
	// baseline. The server closes first, so its TIME_WAIT sockets hold
	// the client's recent ports; the client's TCP timestamps differ per
	// destination address, so a direct SYN meeting the TIME_WAIT of a
	// NodePort connection on the same four-tuple fails the PAWS check and
	// waits for a retransmit. Separate ports keep the two paths apart.
	directAddr = "10.244.1.11:8081"
	nodePort = 30080
)

// NodePortFigure is one data plane's NodePort figures at one service
// count, each beside the same client going straight to the pod (routed
// through the node, no service).
type NodePortFigure struct {
	Services int `json:"services"`
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
}

// RateFigure is what a time-bounded run achieved.
type RateFigure struct {
	PerSecond float64       `json:"per_second"`
	Done      int           `json:"done"`
	Errors    int           `json:"errors"`
	Took      time.Duration `json:"took_ns"`
}

type npTopo struct{ node, pod, ext string }

// newNPTopo builds the NodePort topology; native readies it for native
// XDP on the uplink (MACHINE.md): an XDP_PASS program on the uplink's
// peer, so that XDP_TX frames are delivered, and tx checksum offload off
// on the client's side, since XDP cannot tell a partial checksum.
func newNPTopo(native bool) (*npTopo, func(), error) {
	seq++
	sfx := fmt.Sprintf("%d%d", time.Now().UnixNano()%100000, seq)
	t := &npTopo{node: "dpnn" + sfx, pod: "dpnp" + sfx, ext: "dpnx" + sfx}
	var closers []func()
	cleanup := func() {
		for _, c := range closers {
			c()
		}
		for _, n := range []string{t.node, t.pod, t.ext} {
			_ = exec.Command("ip", "netns", "del", n).Run()
		}
	}
	for _, n := range []string{t.node, t.pod, t.ext} {
		if out, err := exec.Command("ip", "netns", "add", n).CombinedOutput(); err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("netns add: %v %s", err, out)
		}
	}
	steps := [][]string{
		{t.ext, "ip", "link", "set", "lo", "up"},
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
		// The direct baseline: the outside routes pod addresses via the node.
		{t.ext, "ip", "route", "add", "10.244.0.0/16", "via", NodeIP},
		{t.node, "ip", "link", "add", "vbp", "type", "veth", "peer", "name", "eth0", "netns", t.pod},
		{t.node, "ip", "link", "set", "vbp", "master", "br0"},
		{t.node, "ip", "link", "set", "vbp", "up"},
		{t.pod, "ip", "link", "set", "lo", "up"},
		{t.pod, "ip", "addr", "add", "10.244.1.11/24", "dev", "eth0"},
		{t.pod, "ip", "link", "set", "eth0", "up"},
		{t.pod, "ip", "route", "add", "default", "via", "10.244.1.1"},
	}
	if native {
		steps = append(steps, []string{t.ext, "ethtool", "-K", "ul0", "tx", "off"})
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
// closes, so that a one-request connection is closed by the server and
// its TIME_WAIT stays there, not on the client's ephemeral ports.
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
					if _, err := c.Write([]byte("ok\n")); err != nil || line != "k\n" {
						return
					}
				}
			}()
		}
	}()
	return func() { ln.Close() }, nil
}

// nodePortState is synthetic(n) with its last service, the one backed by
// the pod, made a NodePort service: the other n-1 stay ClusterIP (the
// nodePort range holds fewer than 10,000 ports), so a linear chain still
// walks every one of them before KUBE-NODEPORTS.
func nodePortState(n int) *datapath.State {
	st := synthetic(n)
	st.NodeIPs = []netip.Addr{netip.MustParseAddr(NodeIP)}
	last := &st.Services[len(st.Services)-1]
	last.Type = corev1.ServiceTypeNodePort
	last.Ports[0].NodePort = nodePort
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
		fig, err := nodePortRun(d, o, n)
		if errors.Is(err, errSkip) {
			res.Notes = append(res.Notes, fmt.Sprintf("NodePort at %d services: programming > cap (%s), skipped", n, o.Cap))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: NodePort at %d services: %w", d.Name, n, err)
		}
		res.NodePort = append(res.NodePort, fig)
	}
	return res, nil
}

func nodePortRun(d Dataplane, o Options, n int) (NodePortFigure, error) {
	fig := NodePortFigure{Services: n}
	t, cleanup, err := newNPTopo(d.NativeXDP)
	if err != nil {
		return fig, err
	}
	defer cleanup()
	for _, a := range []string{podAddr, directAddr} {
		stop, err := serveNP(t.pod, a)
		if err != nil {
			return fig, err
		}
		defer stop()
	}
	fig.BrNetfilter = brNetfilter(t.node)
	dp, err := d.New(t.node)
	if err != nil {
		return fig, fmt.Errorf("open: %w", err)
	}
	defer dp.Close()
	_, c, err := applyCapped(dp, nodePortState(n), o.Cap)
	if err != nil {
		return fig, fmt.Errorf("program: %w", err)
	}
	if c {
		return fig, errSkip
	}
	np := fmt.Sprintf("%s:%d", NodeIP, nodePort)
	for _, a := range []string{directAddr, np} {
		if err := warm(t.ext, a); err != nil {
			return fig, err
		}
	}
	direct, err := latency(t.ext, "", directAddr, o.Requests)
	if err != nil {
		return fig, fmt.Errorf("direct latency: %w", err)
	}
	if fig.Latency, err = latency(t.ext, "", np, o.Requests); err != nil {
		return fig, fmt.Errorf("NodePort latency: %w", err)
	}
	fig.Latency.Services, fig.Latency.DirectP50, fig.Latency.DirectP99 = n, direct.P50, direct.P99
	for _, r := range []struct {
		fig  *RateFigure
		addr string
		kept bool
	}{{&fig.DirectConns, directAddr, false}, {&fig.Conns, np, false}, {&fig.DirectReqs, directAddr, true}, {&fig.Reqs, np, true}} {
		if *r.fig, err = rate(t.ext, r.addr, o.RateWorkers, o.RateTime, r.kept); err != nil {
			return fig, fmt.Errorf("rate to %s: %w", r.addr, err)
		}
	}
	return fig, nil
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
	fmt.Fprintf(b, "\n## NodePort from an external client to a backend on the node\n\n"+
		"The client is in a namespace on the node's underlay, in no cgroup of the node (no socket hook sees it): nodeIP:nodePort is translated per packet on the node's uplink. "+
		"The service is the last of the node's services (the others ClusterIP). Latency: %d sequential connect+request+close. "+
		"Rates: %d concurrent clients for %s, new connections (one request each) and requests on kept connections. "+
		"\"direct\" is the same client to the pod's address, routed through the node, on the same node state. "+
		"br_netfilter is bridge-nf-call-iptables inside the node's namespace.\n\n"+
		"| data plane | conditions | services | br_netfilter | via nodePort p50 / p99 | direct p50 / p99 | ratio p50 | new conns/s via nodePort / direct | kept-conn requests/s via nodePort / direct |\n|---|---|---|---|---|---|---|---|---|\n",
		o.Requests, o.RateWorkers, o.RateTime)
	for _, r := range rs {
		for _, f := range r.NodePort {
			l := f.Latency
			fmt.Fprintf(b, "| %s | %s | %d | %s | %s / %s | %s / %s | %.2f | %s / %s | %s / %s |\n", r.Dataplane, r.Conditions, f.Services, f.BrNetfilter,
				l.P50.Round(time.Microsecond), l.P99.Round(time.Microsecond), l.DirectP50.Round(time.Microsecond), l.DirectP99.Round(time.Microsecond),
				float64(l.P50)/float64(l.DirectP50), rateStr(f.Conns), rateStr(f.DirectConns), rateStr(f.Reqs), rateStr(f.DirectReqs))
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
			if len(errs) > 0 {
				sort.Strings(errs)
				fmt.Fprintf(b, "\nNote (%s, %d services): failed exchanges: %s\n", r.Dataplane, f.Services, strings.Join(errs, ", "))
			}
		}
	}
}

func rateStr(r RateFigure) string { return fmt.Sprintf("%.0f", r.PerSecond) }
