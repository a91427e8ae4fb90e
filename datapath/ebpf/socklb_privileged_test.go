package ebpf

// Integration tests of the socket LB on this kernel: real programs
// attached to a fresh cgroup v2 directory, and a fresh network namespace
// (loopback only, the "node") holding echo servers on 127.0.0.x as
// backends and a client process that lives in the cgroup. Nothing leaves
// the namespace: a destination left untranslated fails with ENETUNREACH.
// They are the unit tests of sock_lb.c too: BPF_PROG_TEST_RUN does not
// run cgroup sock_addr programs (6.18 answers "not supported"; see
// TestProgTestRunUnsupported).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"weir.dev/weir/datapath"
	"weir.dev/weir/test/echo"
	"weir.dev/weir/test/topology"
)

const cgroupRoot = "/sys/fs/cgroup/unified"

// fixture is one node's socket LB with its cgroup, network namespace,
// backends and client.
type fixture struct {
	t   *testing.T
	cfg Config
	ns  string // named network namespace, under /run/netns
	dp  *Dataplane
	cl  *client
	be  map[string]*echo.Server // by hostname
}

func newFixture(t *testing.T, sizes MapSizes, backends ...string) *fixture {
	t.Helper()
	name := topology.UniqueName(t, "slb")
	cg := filepath.Join(cgroupRoot, "weir-test-"+name)
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Fatalf("make cgroup: %v", err)
	}
	t.Cleanup(func() { removeCgroup(t, cg) })

	f := &fixture{t: t, be: map[string]*echo.Server{}, ns: "weir-test-" + name}
	f.makeNetns()
	f.cfg = Config{Node: "test-" + name, CgroupPath: cg, Sizes: sizes, LoopbackNodePorts: true}
	t.Cleanup(func() {
		if err := Remove(f.cfg); err != nil {
			t.Errorf("remove pins: %v", err)
		}
		if _, err := os.Stat(f.cfg.PinDir()); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("pin dir %s left behind: %v", f.cfg.PinDir(), err)
		}
	})
	f.open()
	for i, h := range backends {
		f.backend(h, fmt.Sprintf("127.0.0.%d", i+2))
	}
	f.cl = startClient(t, cg, filepath.Join("/run/netns", f.ns))
	return f
}

// makeNetns creates the node's network namespace with loopback up.
func (f *fixture) makeNetns() {
	f.t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		f.t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.NewNamed(f.ns) // and moves this thread into it
	if err != nil {
		runtime.UnlockOSThread()
		f.t.Fatalf("make netns: %v", err)
	}
	defer ns.Close()
	if err := netns.Set(orig); err != nil {
		// This thread is stuck in the test namespace: let it die with
		// the goroutine rather than serve others.
		f.t.Fatalf("leave netns: %v", err)
	}
	runtime.UnlockOSThread()
	f.t.Cleanup(func() {
		if err := netns.DeleteNamed(f.ns); err != nil {
			f.t.Errorf("delete netns: %v", err)
		}
	})
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		f.t.Fatal(err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		f.t.Fatalf("loopback up: %v", err)
	}
}

// inNetns runs fn on a thread inside the node's network namespace, as
// the agent does (setns on a locked thread).
func (f *fixture) inNetns(fn func()) {
	f.t.Helper()
	done := make(chan struct{})
	var setErr error
	go func() {
		defer close(done)
		runtime.LockOSThread()
		ns, err := netns.GetFromName(f.ns)
		if err != nil {
			setErr = err
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			setErr = err
			return
		}
		// The thread is not unlocked: it exits with the goroutine
		// instead of going back to the pool inside the namespace.
		fn()
	}()
	<-done
	if setErr != nil {
		f.t.Fatalf("enter netns %s: %v", f.ns, setErr)
	}
}

func (f *fixture) open() {
	f.t.Helper()
	var dp *Dataplane
	var err error
	f.inNetns(func() { dp, err = Open(f.t.Context(), f.cfg) })
	if err != nil {
		f.t.Fatalf("open: %v", err)
	}
	f.dp = dp
	f.t.Cleanup(func() { dp.Close() })
}

func (f *fixture) backend(host, ip string) {
	f.t.Helper()
	var s *echo.Server
	var err error
	f.inNetns(func() {
		s, err = echo.Listen(echo.Config{Hostname: host, HTTPAddr: ip + ":0", TCPAddr: "-", UDPAddr: ip + ":0"})
	})
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	f.t.Cleanup(func() { cancel(); <-done })
	f.be[host] = s
}

// tcp and udp are a backend's endpoints as the data plane sees them.
func (f *fixture) tcp(host string, ready bool) datapath.Backend {
	return endpoint(f.be[host].HTTPAddr(), ready)
}

func (f *fixture) udp(host string, ready bool) datapath.Backend {
	return endpoint(f.be[host].UDPAddr(), ready)
}

func endpoint(a net.Addr, ready bool) datapath.Backend {
	ap := netip.MustParseAddrPort(a.String())
	return datapath.Backend{Addr: ap.Addr(), Port: ap.Port(), Ready: ready, Serving: true, Terminating: !ready}
}

func (f *fixture) apply(svcs ...datapath.Service) {
	f.t.Helper()
	st := &datapath.State{NodeName: "n1", NodeIPs: []netip.Addr{netip.MustParseAddr("10.123.0.1")}, Services: svcs}
	if err := f.dp.Apply(f.t.Context(), st); err != nil {
		f.t.Fatalf("apply: %v", err)
	}
}

func service(name, vip string, ports ...datapath.Port) datapath.Service {
	return datapath.Service{Namespace: "t", Name: name, Type: corev1.ServiceTypeClusterIP, ClusterIP: netip.MustParseAddr(vip), Ports: ports}
}

func tcpPort(port uint16, bs ...datapath.Backend) datapath.Port {
	return datapath.Port{Name: "http", Protocol: corev1.ProtocolTCP, Port: port, Backends: bs}
}

func udpPort(port uint16, bs ...datapath.Backend) datapath.Port {
	return datapath.Port{Name: "dns", Protocol: corev1.ProtocolUDP, Port: port, Backends: bs}
}

// spread makes n new connections (op http) or unconnected UDP exchanges
// (op udp) to addr and checks each reached one of want and showed addr
// as its peer.
func (f *fixture) spread(op, addr string, n int, want ...string) map[string]int {
	f.t.Helper()
	var rs []clientResult
	for range n {
		r := f.cl.must(clientCmd{Op: op, Addr: addr})
		if r.Remote != addr {
			f.t.Fatalf("%s %s: peer %s, want the service address", op, addr, r.Remote)
		}
		rs = append(rs, r)
	}
	got := hostnames(rs)
	for h := range got {
		if !contains(want, h) {
			f.t.Fatalf("%s %s reached %s; want only %v (all: %s)", op, addr, h, want, joinKeys(got))
		}
	}
	return got
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func (f *fixture) counters(frontend string) ServiceCounters {
	f.t.Helper()
	c, err := f.dp.Counters()
	if err != nil {
		f.t.Fatal(err)
	}
	for _, s := range c.Services {
		if s.Frontend == frontend {
			return s
		}
	}
	f.t.Fatalf("no counters for %s in %+v", frontend, c.Services)
	return ServiceCounters{}
}

func removeCgroup(t *testing.T, cg string) {
	// The client has been waited for; the kernel may still be tearing it
	// down for a moment.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := os.Remove(cg)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("remove cgroup %s: %v", cg, err)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSockLBTCPClusterIP(t *testing.T) {
	f := newFixture(t, MapSizes{}, "be1", "be2", "be3")
	f.apply(service("web", "10.96.0.10", tcpPort(80, f.tcp("be1", true), f.tcp("be2", true), f.tcp("be3", true))))

	got := f.spread("http", "10.96.0.10:80", 60, "be1", "be2", "be3")
	if len(got) != 3 {
		t.Errorf("60 connections reached %s; want all three backends", joinKeys(got))
	}
	if c := f.counters("10.96.0.10:80/tcp"); c.Connects != 60 || c.Refused != 0 || c.Name != "t/web:http" {
		t.Errorf("counters = %+v, want 60 connects under t/web:http", c)
	}

	// Destinations that are no frontend pass untouched: the backend
	// itself, and the VIP on another port or protocol (unrouted in the
	// namespace).
	direct := f.be["be2"].HTTPAddr().String()
	if r := f.cl.must(clientCmd{Op: "http", Addr: direct}); r.Hostname != "be2" || r.Remote != direct {
		t.Errorf("direct connection = %+v, want be2 at %s", r, direct)
	}
	for _, tc := range []clientCmd{{Op: "dial", Addr: "10.96.0.10:81"}, {Op: "udp", Addr: "10.96.0.10:80"}} {
		if r := f.cl.do(tc); r.Errno != int(syscall.ENETUNREACH) {
			t.Errorf("%+v = %+v; want it untouched (ENETUNREACH)", tc, r)
		}
	}
	if c := f.counters("10.96.0.10:80/tcp"); c.Connects != 60 || c.Datagrams != 0 {
		t.Errorf("a non-service destination was counted: %+v", c)
	}

	// A process in a cgroup below the node's (a container) is balanced too.
	pod := filepath.Join(f.cfg.CgroupPath, "pod1")
	if err := os.Mkdir(pod, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeCgroup(t, pod) })
	podClient := startClient(t, pod, filepath.Join("/run/netns", f.ns))
	if r := podClient.must(clientCmd{Op: "http", Addr: "10.96.0.10:80"}); r.Remote != "10.96.0.10:80" || r.Hostname == "" {
		t.Errorf("from a nested cgroup: %+v", r)
	}
	// A process outside the cgroup (this one, in the node's namespace
	// where the VIP is unrouted) is not balanced.
	var err error
	f.inNetns(func() {
		var c net.Conn
		if c, err = net.DialTimeout("tcp4", "10.96.0.10:80", 2*time.Second); err == nil {
			c.Close()
		}
	})
	if !errors.Is(err, syscall.ENETUNREACH) {
		t.Errorf("dial from outside the cgroup = %v; want it untouched (ENETUNREACH)", err)
	}
}

func TestSockLBUDP(t *testing.T) {
	f := newFixture(t, MapSizes{}, "be1", "be2")
	f.apply(service("dns", "10.96.0.53", udpPort(53, f.udp("be1", true), f.udp("be2", true))))

	// Unconnected: sendmsg picks a backend per socket, recvmsg shows the VIP.
	got := f.spread("udp", "10.96.0.53:53", 40, "be1", "be2")
	if len(got) != 2 {
		t.Errorf("40 sockets reached %s; want both backends", joinKeys(got))
	}
	// Connected: connect picks, getpeername shows the VIP.
	for range 10 {
		r := f.cl.must(clientCmd{Op: "udpconn", Addr: "10.96.0.53:53"})
		if r.Remote != "10.96.0.53:53" || (r.Hostname != "be1" && r.Hostname != "be2") {
			t.Fatalf("connected UDP = %+v", r)
		}
	}
	if c := f.counters("10.96.0.53:53/udp"); c.Datagrams != 40 || c.Connects != 10 {
		t.Errorf("counters = %+v, want 40 datagrams and 10 connects", c)
	}
	// A TCP connect to the UDP frontend is no service.
	if r := f.cl.do(clientCmd{Op: "dial", Addr: f.be["be1"].UDPAddr().String()}); r.Errno != int(syscall.ECONNREFUSED) {
		t.Errorf("TCP to a UDP-only port = %+v, want ECONNREFUSED from the kernel", r)
	}
}

func TestSockLBNoEndpointsRefuses(t *testing.T) {
	f := newFixture(t, MapSizes{}, "be1", "be2")
	f.apply(
		service("empty", "10.96.0.20", tcpPort(80), udpPort(53)),
		// Not ready and not serving: no usable backend either.
		service("unready", "10.96.0.21", tcpPort(80, datapath.Backend{Addr: netip.MustParseAddr("127.0.0.2"), Port: 1})),
	)
	for _, tc := range []struct{ op, addr string }{
		{"dial", "10.96.0.20:80"},
		{"dial", "10.96.0.21:80"},
		{"udp", "10.96.0.20:53"},
		{"udpconn", "10.96.0.20:53"},
	} {
		r := f.cl.do(clientCmd{Op: tc.op, Addr: tc.addr})
		if r.Errno != int(syscall.ECONNREFUSED) || r.Elapsed > 2000 {
			t.Errorf("%s %s = %+v; want ECONNREFUSED at once", tc.op, tc.addr, r)
		}
	}
	c, err := f.dp.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c.Reasons["no_backend"] != 4 {
		t.Errorf("no_backend = %d, want 4 (%v)", c.Reasons["no_backend"], c.Reasons)
	}
	if s := f.counters("10.96.0.20:80/tcp"); s.Refused != 1 {
		t.Errorf("counters = %+v, want 1 refused", s)
	}

	// Endpoints arrive: the same frontend answers.
	f.apply(service("empty", "10.96.0.20", tcpPort(80, f.tcp("be1", true)), udpPort(53)))
	f.spread("http", "10.96.0.20:80", 3, "be1")

	// Only a terminating-but-serving endpoint left: it takes connections;
	// next to a ready one it takes none.
	f.apply(service("empty", "10.96.0.20", tcpPort(80, f.tcp("be1", false))))
	f.spread("http", "10.96.0.20:80", 3, "be1")
	f.apply(service("empty", "10.96.0.20", tcpPort(80, f.tcp("be1", false), f.tcp("be2", true))))
	f.spread("http", "10.96.0.20:80", 20, "be2")

	// Service deleted: the address is no service any more and nothing
	// rewrites it (10.96.0.20 is unrouted in the namespace).
	f.apply()
	r := f.cl.do(clientCmd{Op: "dial", Addr: "10.96.0.20:80"})
	after, _ := f.dp.Counters()
	if r.Errno != int(syscall.ENETUNREACH) || after.Reasons["no_backend"] != 4 || len(after.Services) != 0 {
		t.Errorf("dial to a deleted service = %+v, counters %+v; want it untouched", r, after)
	}
	for _, m := range after.Maps {
		if m.Entries != 0 {
			t.Errorf("after deleting every service %s holds %d entries", m.Map, m.Entries)
		}
	}
}

func TestSockLBEndpointRemoved(t *testing.T) {
	f := newFixture(t, MapSizes{}, "be1", "be2", "be3")
	all := service("web", "10.96.0.30", tcpPort(80, f.tcp("be1", true), f.tcp("be2", true), f.tcp("be3", true)))
	f.apply(all)

	// Keep a connection that landed on be2.
	var kept bool
	for i := range 100 {
		r := f.cl.must(clientCmd{Op: "open", Addr: "10.96.0.30:80", ID: "c"})
		if r.Hostname == "be2" {
			kept = true
			break
		}
		f.cl.must(clientCmd{Op: "close", ID: "c"})
		if i == 99 {
			t.Fatal("no connection reached be2 in 100 tries")
		}
	}
	if !kept {
		t.Fatal("unreachable")
	}

	for _, tc := range []struct {
		name string
		set  []string
	}{
		{"middle removed", []string{"be1", "be3"}},
		{"back", []string{"be1", "be2", "be3"}},
		{"tail removed", []string{"be1", "be2"}},
		{"replaced", []string{"be3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var bs []datapath.Backend
			for _, h := range tc.set {
				bs = append(bs, f.tcp(h, true))
			}
			f.apply(service("web", "10.96.0.30", tcpPort(80, bs...)))
			got := f.spread("http", "10.96.0.30:80", 30, tc.set...)
			if len(got) != len(tc.set) {
				t.Errorf("30 connections reached %s; want all of %v", joinKeys(got), tc.set)
			}
			// The established connection keeps its backend.
			if r := f.cl.must(clientCmd{Op: "req", ID: "c"}); r.Hostname != "be2" || r.Remote != "10.96.0.30:80" {
				t.Errorf("kept connection = %+v, want be2 behind the VIP", r)
			}
		})
	}
}

func TestSockLBSessionAffinity(t *testing.T) {
	f := newFixture(t, MapSizes{}, "be1", "be2", "be3")
	svc := service("sticky", "10.96.0.40", tcpPort(80, f.tcp("be1", true), f.tcp("be2", true), f.tcp("be3", true)))
	svc.AffinityTimeout = time.Minute
	f.apply(svc)
	got := f.spread("http", "10.96.0.40:80", 20, "be1", "be2", "be3")
	if len(got) != 1 {
		t.Fatalf("with ClientIP affinity 20 connections reached %s; want one backend", joinKeys(got))
	}
	var first string
	for h := range got {
		first = h
	}

	// The chosen backend leaves: the client moves, and sticks again.
	var rest []datapath.Backend
	var restNames []string
	for _, h := range []string{"be1", "be2", "be3"} {
		if h != first {
			rest = append(rest, f.tcp(h, true))
			restNames = append(restNames, h)
		}
	}
	svc.Ports = []datapath.Port{tcpPort(80, rest...)}
	f.apply(svc)
	if got := f.spread("http", "10.96.0.40:80", 20, restNames...); len(got) != 1 {
		t.Errorf("after %s left, 20 connections reached %s; want one backend", first, joinKeys(got))
	}

	// The timeout: an entry as old as the timeout is not honoured. Plant
	// one for a backend before every connect and count how often that
	// backend is chosen: always while fresh, about half the time once
	// stale.
	svc.AffinityTimeout = 5 * time.Second
	f.apply(svc)
	var cookie uint64
	var err error
	f.inNetns(func() { cookie, err = hostNetnsCookie() })
	if err != nil {
		t.Fatal(err)
	}
	p := f.dp.lb.ports[frontend{netip.MustParseAddr("10.96.0.40"), 80, 6}]
	target := restNames[0]
	tb := f.tcp(target, true)
	slot := slices.Index(p.Layout, backend{tb.Addr, tb.Port})
	if slot < 0 {
		t.Fatalf("%s not in layout %v", target, p.Layout)
	}
	for _, tc := range []struct {
		name string
		age  time.Duration
		all  bool
	}{
		{"fresh entry honoured", time.Second, true},
		{"expired entry ignored", 6 * time.Second, false},
	} {
		hits := 0
		for range 30 {
			var ts unix.Timespec
			unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) // bpf_ktime_get_ns
			key := socklbLb4AffinityKey{Client: cookie, SvcId: p.ID}
			val := socklbLb4AffinityEntry{
				LastUsed: uint64(ts.Nano() - tc.age.Nanoseconds()),
				Addr:     addrBits(p.Layout[slot].Addr), Port: htons(p.Layout[slot].Port), Slot: uint16(slot),
			}
			if err := f.dp.objs.Lb4Affinity.Put(&key, &val); err != nil {
				t.Fatal(err)
			}
			if r := f.cl.must(clientCmd{Op: "http", Addr: "10.96.0.40:80"}); r.Hostname == target {
				hits++
			}
		}
		if (hits == 30) != tc.all {
			t.Errorf("%s: %s chosen %d times of 30", tc.name, target, hits)
		}
	}

	// Without affinity the same client spreads again.
	svc.AffinityTimeout = 0
	f.apply(svc)
	if got := f.spread("http", "10.96.0.40:80", 40, restNames...); len(got) != 2 {
		t.Errorf("without affinity 40 connections reached %s; want both", joinKeys(got))
	}
}

func TestSockLBNodePortAndExternalIP(t *testing.T) {
	f := newFixture(t, MapSizes{}, "be1", "be2")
	svc := service("np", "10.96.0.50", tcpPort(80, f.tcp("be1", true), f.tcp("be2", true)))
	svc.Type = corev1.ServiceTypeNodePort
	svc.Ports[0].NodePort = 30080
	svc.ExternalIPs = []netip.Addr{netip.MustParseAddr("198.51.100.50")}
	f.apply(svc)
	for _, addr := range []string{"10.96.0.50:80", "10.123.0.1:30080", "127.0.0.1:30080", "127.0.0.9:30080", "198.51.100.50:80"} {
		f.spread("http", addr, 6, "be1", "be2")
	}
	if c := f.counters("10.96.0.50:80/tcp"); c.Connects != 30 {
		t.Errorf("counters = %+v, want 30 connects over every frontend", c)
	}

	// Dropping the externalIP and the nodePort removes those frontends.
	svc.ExternalIPs = nil
	svc.Ports[0].NodePort = 0
	f.apply(svc)
	c, _ := f.dp.Counters()
	if c.Maps[0].Entries != 1 {
		t.Errorf("frontends = %+v, want only the ClusterIP left", c.Maps)
	}
	if r := f.cl.do(clientCmd{Op: "dial", Addr: "127.0.0.1:30080"}); r.Errno != int(syscall.ECONNREFUSED) || r.Remote != "" {
		t.Errorf("old nodePort on loopback = %+v; want the kernel's own refusal (nothing listens)", r)
	}
}

// TestSockLBRestart closes the dataplane (the agent exits), checks that
// pinned links keep services working without it, opens it again from the
// pins and checks that the established connection and the services
// survive, and that the recovered state diffs correctly.
func TestSockLBRestart(t *testing.T) {
	f := newFixture(t, MapSizes{}, "be1", "be2")
	web := service("web", "10.96.0.60", tcpPort(80, f.tcp("be1", true), f.tcp("be2", true)), udpPort(53, f.udp("be1", true)))
	f.apply(web)
	open := f.cl.must(clientCmd{Op: "open", Addr: "10.96.0.60:80", ID: "c"})
	links := pinnedLinkIDs(t, f.cfg)

	if err := f.dp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.dp.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	f.spread("http", "10.96.0.60:80", 6, "be1", "be2")

	f.open()
	// The same links, their programs swapped: never detached.
	if got := pinnedLinkIDs(t, f.cfg); !slices.Equal(got, links) {
		t.Errorf("links after restart %v, before %v: re-attached instead of reused", got, links)
	}
	c, err := f.dp.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Services) != 2 || c.Services[0].Name != "" || c.Maps[2].Entries != 3 {
		t.Errorf("recovered counters = %+v, want two unnamed ports and 3 slots", c)
	}
	f.apply(web)
	if r := f.cl.must(clientCmd{Op: "req", ID: "c"}); r.Hostname != open.Hostname || r.Remote != "10.96.0.60:80" {
		t.Errorf("kept connection after restart = %+v, want %s behind the VIP", r, open.Hostname)
	}
	f.spread("http", "10.96.0.60:80", 10, "be1", "be2")
	f.spread("udp", "10.96.0.60:53", 4, "be1")
	if s := f.counters("10.96.0.60:80/tcp"); s.Name != "t/web:http" || s.Connects < 16 {
		t.Errorf("counters after restart = %+v: want the name back and the count kept", s)
	}

	// A change after the restart diffs against the recovered state.
	other := "be1"
	if open.Hostname == "be1" {
		other = "be2"
	}
	web.Ports[0] = tcpPort(80, f.tcp(other, true))
	f.apply(web)
	f.spread("http", "10.96.0.60:80", 10, other)
	if r := f.cl.must(clientCmd{Op: "req", ID: "c"}); r.Hostname != open.Hostname {
		t.Errorf("kept connection = %+v", r)
	}
	if c, _ := f.dp.Counters(); c.Maps[2].Entries != 2 {
		t.Errorf("slots = %+v, want 2 after the trim", c.Maps)
	}
}

// pinnedLinkIDs are the ids of the node's pinned socket-LB links.
func pinnedLinkIDs(t *testing.T, cfg Config) []link.ID {
	t.Helper()
	var ids []link.ID
	for _, sl := range sockLinks {
		l, err := link.LoadPinnedLink(filepath.Join(cfg.PinDir(), "links", sl.pin), nil)
		if err != nil {
			t.Fatalf("pinned link %s: %v", sl.pin, err)
		}
		info, err := l.Info()
		l.Close()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, info.ID)
	}
	return ids
}

func TestSockLBMapFull(t *testing.T) {
	f := newFixture(t, MapSizes{Services: 2, Slots: 3, Frontends: 8}, "be1", "be2", "be3")
	b := []datapath.Backend{f.tcp("be1", true), f.tcp("be2", true), f.tcp("be3", true)}
	st := &datapath.State{Services: []datapath.Service{
		service("a", "10.96.1.1", tcpPort(80, b[0])),
		service("b", "10.96.1.2", tcpPort(80, b[1])),
		service("c", "10.96.1.3", tcpPort(80, b[2])),
	}}
	err := f.dp.Apply(t.Context(), st)
	if !errors.Is(err, ErrMapFull) || !strings.Contains(err.Error(), "lb4_services holds at most 2 entries") {
		t.Fatalf("apply of 3 service ports into 2 = %v; want ErrMapFull naming lb4_services and 2", err)
	}
	// The two that fit work.
	st.Services = st.Services[:2]
	if err := f.dp.Apply(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	f.spread("http", "10.96.1.1:80", 2, "be1")
	// A set that does not fit next to the old one while it is replaced
	// fails and leaves the old set serving.
	st.Services[1] = service("b", "10.96.1.2", tcpPort(80, b[0], b[2]))
	err = f.dp.Apply(t.Context(), st)
	if !errors.Is(err, ErrMapFull) || !strings.Contains(err.Error(), "lb4_slots holds at most 3 entries") {
		t.Fatalf("apply = %v; want ErrMapFull naming lb4_slots and 3", err)
	}
	f.spread("http", "10.96.1.2:80", 4, "be2")
	// It fits once the other service shrinks.
	st.Services[0] = service("a", "10.96.1.1", tcpPort(80))
	if err := f.dp.Apply(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	f.spread("http", "10.96.1.2:80", 10, "be1", "be3")
}

func TestOpenRefusesCgroupRoot(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{cgroupRoot, "root of a cgroup v2 hierarchy"},
		{t.TempDir(), "not a cgroup v2 directory"},
		{"", "no cgroup path"},
	} {
		cfg := Config{Node: topology.UniqueName(t, "slb"), CgroupPath: tc.path}
		dp, err := Open(t.Context(), cfg)
		if err == nil {
			// Undo at once: attached at the root it balances every process.
			dp.Close()
			Remove(cfg)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("open at %q = %v; want an error with %q", tc.path, err, tc.want)
		}
	}
}

// TestProgTestRunUnsupported records why the socket-LB programs have no
// BPF_PROG_TEST_RUN tests: the kernel does not run cgroup sock_addr
// programs that way. If a kernel starts to, this test fails so that such
// tests get written.
func TestProgTestRunUnsupported(t *testing.T) {
	spec, err := loadSocklb()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range spec.Maps {
		m.Pinning = ebpf.PinNone
		if m.MaxEntries > 1024 && m.Type != ebpf.PerCPUArray {
			m.MaxEntries = 1024
		}
	}
	var objs socklbObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		t.Fatalf("load (the verifier must accept every program): %+v", err)
	}
	defer objs.Close()
	_, err = objs.WeirConnect4.Run(&ebpf.RunOptions{Context: make([]byte, 80)})
	if !errors.Is(err, ebpf.ErrNotSupported) {
		t.Fatalf("BPF_PROG_TEST_RUN of connect4 = %v; the kernel runs sock_addr programs now: test them that way", err)
	}
}
