// Package dpbench measures the service data planes side by side on one
// topology of network namespaces: programming time (full, and one endpoint
// changed) at 1,000 and 10,000 services × 3 endpoints, and
// connect+request latency through a ClusterIP with few and many services
// beside a direct-to-pod baseline, and NodePort from an external client
// (latency and time-bounded rates, per XDP mode and iptables backend)
// beside the same client going straight to the pod. Every run is capped in time and reports
// "> cap" when it does not finish. It touches only namespaces it creates.
package dpbench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"weir.dev/weir/datapath"
)

// Dataplane is one implementation under test, built for a node namespace.
type Dataplane struct {
	Name string
	// Conditions name what the figures depend on (backend, XDP mode,
	// partial sync, br_netfilter).
	Conditions string
	New        func(nodeNetns string) (datapath.Dataplane, error)
	// Cgroup, if set, returns the cgroup a client must join (socket LB).
	Cgroup func(nodeNetns string) string
	// NativeXDP readies the NodePort topology for native XDP on the
	// uplink (an XDP_PASS program on its peer, tx checksum offload off
	// on the client's side).
	NativeXDP bool
}

// Options size a run.
type Options struct {
	Services []int // e.g. 1000, 10000
	Latency  []int // service counts for the latency runs, e.g. 10, 10000
	Requests int   // connects per latency run
	Cap      time.Duration
	// NodePort are the service counts for the NodePort runs; RateWorkers
	// concurrent clients run each rate measurement for RateTime.
	NodePort    []int
	RateWorkers int
	RateTime    time.Duration
}

// Result holds one data plane's figures; durations are zero when capped.
type Result struct {
	Dataplane  string                 `json:"dataplane"`
	Conditions string                 `json:"conditions"`
	Program    []ProgramFigure        `json:"program"`
	Latency    []LatencyFigure        `json:"latency"`
	NodePort   []NodePortFigure       `json:"nodeport,omitempty"`
	Notes      []string               `json:"notes,omitempty"`
	Extra      map[string]interface{} `json:"extra,omitempty"`
}

// ProgramFigure is the time to program S services.
type ProgramFigure struct {
	Services   int           `json:"services"`
	Full       time.Duration `json:"full_ns"`
	FullCapped bool          `json:"full_capped"`
	// OneChange is the median of OneChangeRuns changes of one endpoint
	// handed over through ApplyServices (the proxy's path), OneChangeMax
	// the slowest.
	OneChange     time.Duration `json:"one_endpoint_change_ns"`
	OneChangeMax  time.Duration `json:"one_endpoint_change_max_ns"`
	OneChangeRuns int           `json:"one_endpoint_change_runs"`
	OneCapped     bool          `json:"one_capped"`
	// OneChangeWhole is one endpoint changed through a whole Apply (the
	// path a proxy that rebuilds its state on every event takes).
	OneChangeWhole       time.Duration `json:"one_endpoint_change_whole_apply_ns"`
	OneChangeWholeCapped bool          `json:"one_whole_capped"`
}

// oneChangeRuns is how many single-endpoint changes are timed.
const oneChangeRuns = 21

// LatencyFigure is connect+request+close latency through a VIP.
type LatencyFigure struct {
	Services int           `json:"services"`
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	Errors   int           `json:"errors"`
	// Direct is the same exchange straight to the pod on the same node
	// state: what the data plane costs connections that are not to services.
	DirectP50 time.Duration `json:"direct_p50_ns"`
	DirectP99 time.Duration `json:"direct_p99_ns"`
}

type topo struct{ node, pod, client string }

func ip(ns string, args ...string) error {
	argv := append([]string{"netns", "exec", ns}, args...)
	if out, err := exec.Command("ip", argv...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(argv, " "), err, out)
	}
	return nil
}

var seq int

// newTopo: node netns with br0 10.244.1.1/24, a backend pod .11 serving a
// line echo on 8080, a client pod .13.
func newTopo() (*topo, func(), error) {
	seq++
	sfx := fmt.Sprintf("%d%d", time.Now().UnixNano()%100000, seq)
	t := &topo{node: "dpbn" + sfx, pod: "dpbp" + sfx, client: "dpbc" + sfx}
	cleanup := func() {
		for _, n := range []string{t.node, t.pod, t.client} {
			_ = exec.Command("ip", "netns", "del", n).Run()
		}
	}
	for _, n := range []string{t.node, t.pod, t.client} {
		if out, err := exec.Command("ip", "netns", "add", n).CombinedOutput(); err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("netns add: %v %s", err, out)
		}
	}
	steps := [][]string{
		{t.node, "ip", "link", "set", "lo", "up"},
		{t.node, "ip", "link", "add", "br0", "type", "bridge"},
		{t.node, "ip", "addr", "add", "10.244.1.1/24", "dev", "br0"},
		{t.node, "ip", "link", "set", "br0", "up"},
		{t.node, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
	}
	for i, p := range []struct{ ns, addr string }{{t.pod, "10.244.1.11"}, {t.client, "10.244.1.13"}} {
		host := []string{"vbp", "vbc"}[i]
		steps = append(steps,
			[]string{t.node, "ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", p.ns},
			[]string{t.node, "ip", "link", "set", host, "master", "br0"},
			[]string{t.node, "ip", "link", "set", host, "up"},
			[]string{p.ns, "ip", "link", "set", "lo", "up"},
			[]string{p.ns, "ip", "addr", "add", p.addr + "/24", "dev", "eth0"},
			[]string{p.ns, "ip", "link", "set", "eth0", "up"},
			[]string{p.ns, "ip", "route", "add", "default", "via", "10.244.1.1"},
		)
	}
	for _, s := range steps {
		if err := ip(s[0], s[1:]...); err != nil {
			cleanup()
			return nil, nil, err
		}
	}
	return t, cleanup, nil
}

func serve(ns, addr string) (func(), error) {
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
				if _, err := r.ReadString('\n'); err == nil {
					_, _ = c.Write([]byte("ok\n"))
				}
			}()
		}
	}()
	return func() { ln.Close() }, nil
}

// synthetic builds n ClusterIP services × 3 endpoints; the last (by name)
// is the real one, backed by the pod, so it sits last in any linear chain.
func synthetic(n int) *datapath.State {
	st := &datapath.State{NodeName: "node"}
	for i := range n - 1 {
		a := netip.AddrFrom4([4]byte{10, 100 + byte(i>>16), byte(i >> 8), byte(i)})
		var bes []datapath.Backend
		for e := range 3 {
			bes = append(bes, datapath.Backend{Addr: netip.AddrFrom4([4]byte{10, 245, byte(i >> 8), byte(i)}), Port: uint16(8000 + e), NodeName: "node", Ready: true, Serving: true})
		}
		st.Services = append(st.Services, datapath.Service{Namespace: "bench", Name: fmt.Sprintf("s%05d", i), Type: corev1.ServiceTypeClusterIP,
			ClusterIP: a, Ports: []datapath.Port{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, Backends: bes}}})
	}
	st.Services = append(st.Services, datapath.Service{Namespace: "bench", Name: "zzz-target", Type: corev1.ServiceTypeClusterIP,
		ClusterIP: netip.MustParseAddr("10.96.200.1"), Ports: []datapath.Port{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80,
			Backends: []datapath.Backend{{Addr: netip.MustParseAddr("10.244.1.11"), Port: 8080, NodeName: "node", Ready: true, Serving: true}}}}})
	return st
}

// applyCapped runs Apply with a deadline; capped reports it ran out.
func applyCapped(dp datapath.Dataplane, st *datapath.State, limit time.Duration) (time.Duration, bool, error) {
	return capped(limit, func(ctx context.Context) error { return dp.Apply(ctx, st) })
}

func capped(limit time.Duration, f func(ctx context.Context) error) (time.Duration, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	start := time.Now()
	err := f(ctx)
	d := time.Since(start)
	if err != nil && (errors.Is(ctx.Err(), context.DeadlineExceeded) || d >= limit) {
		return d, true, nil
	}
	return d, false, err
}

// withBackend returns a copy of s whose first port's backend b has
// readiness ready; s is left alone (the data plane may keep it).
func withBackend(s datapath.Service, b int, ready bool) datapath.Service {
	s.Ports = slices.Clone(s.Ports)
	s.Ports[0].Backends = slices.Clone(s.Ports[0].Backends)
	s.Ports[0].Backends[b].Ready = ready
	return s
}

// oneChange times single-endpoint changes of service i of st: runs
// through ApplyServices (one endpoint leaving and coming back in turn),
// then one through a whole Apply.
func oneChange(dp datapath.Dataplane, st *datapath.State, i int, limit time.Duration, fig *ProgramFigure) error {
	var times []time.Duration
	for r := range oneChangeRuns {
		s := withBackend(st.Services[i], 1, r%2 == 1)
		d, c, err := capped(limit, func(ctx context.Context) error {
			return dp.ApplyServices(ctx, st.Node(), []datapath.Service{s}, nil)
		})
		if err != nil {
			return fmt.Errorf("one endpoint change: %w", err)
		}
		if c {
			fig.OneCapped = true
			return nil
		}
		st.Services[i] = s
		times = append(times, d)
	}
	slices.Sort(times)
	fig.OneChange, fig.OneChangeMax, fig.OneChangeRuns = times[len(times)/2], times[len(times)-1], len(times)
	whole := *st
	whole.Services = slices.Clone(st.Services)
	whole.Services[i] = withBackend(st.Services[i], 2, false)
	var err error
	fig.OneChangeWhole, fig.OneChangeWholeCapped, err = applyCapped(dp, &whole, limit)
	return err
}

// latency measures n sequential connect+request+close exchanges from the
// client pod (and its cgroup) to addr.
func latency(client, cgroup, addr string, n int) (LatencyFigure, error) {
	var samples []time.Duration
	errs := 0
	run := func() error {
		for range n {
			start := time.Now()
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				errs++
				continue
			}
			_ = c.SetDeadline(time.Now().Add(time.Second))
			_, err = c.Write([]byte("x\n"))
			if err == nil {
				_, err = bufio.NewReader(c).ReadString('\n')
			}
			c.Close()
			if err != nil {
				errs++
				continue
			}
			samples = append(samples, time.Since(start))
		}
		return nil
	}
	if err := clientRun(client, cgroup, run); err != nil {
		return LatencyFigure{}, err
	}
	if len(samples) == 0 {
		return LatencyFigure{Errors: errs}, errors.New("no successful exchange")
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	return LatencyFigure{P50: samples[len(samples)/2], P99: samples[len(samples)*99/100], Errors: errs}, nil
}

// Run measures one data plane.
func Run(d Dataplane, o Options) (*Result, error) {
	res := &Result{Dataplane: d.Name, Conditions: d.Conditions}
	for _, n := range o.Services {
		t, cleanup, err := newTopo()
		if err != nil {
			return nil, err
		}
		dp, err := d.New(t.node)
		if err != nil {
			cleanup()
			return nil, err
		}
		st := synthetic(n)
		fig := ProgramFigure{Services: n}
		fig.Full, fig.FullCapped, err = applyCapped(dp, st, o.Cap)
		if err == nil && !fig.FullCapped {
			// One endpoint of one service changes.
			err = oneChange(dp, st, n/2, o.Cap, &fig)
		}
		dp.Close()
		cleanup()
		if err != nil {
			return nil, fmt.Errorf("%s: program %d services: %w", d.Name, n, err)
		}
		res.Program = append(res.Program, fig)
	}
	for _, n := range o.Latency {
		t, cleanup, err := newTopo()
		if err != nil {
			return nil, err
		}
		stop, err := serve(t.pod, "10.244.1.11:8080")
		if err != nil {
			cleanup()
			return nil, err
		}
		dp, err := d.New(t.node)
		if err == nil {
			var capped bool
			_, capped, err = applyCapped(dp, synthetic(n), o.Cap)
			if capped {
				res.Notes = append(res.Notes, fmt.Sprintf("latency at %d services: programming > cap (%s), skipped", n, o.Cap))
				err = errSkip
			}
		}
		cg := ""
		if d.Cgroup != nil {
			cg = d.Cgroup(t.node)
		}
		if err == nil {
			var fig, direct LatencyFigure
			if direct, err = latency(t.client, cg, "10.244.1.11:8080", o.Requests); err == nil {
				fig, err = latency(t.client, cg, "10.96.200.1:80", o.Requests)
				fig.Services, fig.DirectP50, fig.DirectP99 = n, direct.P50, direct.P99
			}
			if err == nil {
				res.Latency = append(res.Latency, fig)
			}
		}
		if dp != nil {
			dp.Close()
		}
		stop()
		cleanup()
		if err != nil && !errors.Is(err, errSkip) {
			return nil, fmt.Errorf("%s: latency at %d services: %w", d.Name, n, err)
		}
	}
	return res, nil
}

var errSkip = errors.New("skipped")

// Markdown renders the results side by side.
func Markdown(rs []*Result, o Options, machine string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# weir data-plane benchmark\n\n%s. Each run capped at %s.\n\n", machine, o.Cap)
	fmt.Fprintf(&b, "## Programming time (services × 3 endpoints)\n\n"+
		"\"one endpoint changed\" is handed over as the proxy does, through ApplyServices with the one service changed: median / max of %d changes. "+
		"\"whole Apply\" is the same change through Apply of the whole state.\n\n"+
		"| data plane | conditions | services | full | one endpoint changed (median / max) | one endpoint changed, whole Apply |\n|---|---|---|---|---|---|\n", oneChangeRuns)
	for _, r := range rs {
		for _, p := range r.Program {
			one := dur(p.OneChange, p.OneCapped, o.Cap)
			if !p.OneCapped && p.OneChangeMax > 0 {
				one += " / " + dur(p.OneChangeMax, false, o.Cap)
			}
			fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s |\n", r.Dataplane, r.Conditions, p.Services, dur(p.Full, p.FullCapped, o.Cap),
				one, dur(p.OneChangeWhole, p.OneChangeWholeCapped, o.Cap))
		}
	}
	fmt.Fprintf(&b, "\n## Connect + request + close from a pod (%d sequential; through a ClusterIP whose service is last, and straight to the pod on the same node state)\n\n| data plane | services on the node | via ClusterIP p50 / p99 | direct to pod p50 / p99 | ratio p50 |\n|---|---|---|---|---|\n", o.Requests)
	for _, r := range rs {
		for _, l := range r.Latency {
			ratio := float64(l.P50) / float64(l.DirectP50)
			fmt.Fprintf(&b, "| %s | %d | %s / %s | %s / %s | %.2f |\n", r.Dataplane, l.Services, l.P50.Round(time.Microsecond), l.P99.Round(time.Microsecond),
				l.DirectP50.Round(time.Microsecond), l.DirectP99.Round(time.Microsecond), ratio)
		}
	}
	// Notes after the table: a line between rows would end it.
	for _, r := range rs {
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "\nNote (%s): %s\n", r.Dataplane, n)
		}
	}
	nodePortMarkdown(&b, rs, o)
	return b.String()
}

func dur(d time.Duration, capped bool, limit time.Duration) string {
	switch {
	case capped:
		return "> cap (" + limit.String() + ", aborted)"
	case d == 0:
		return "—"
	case d < 10*time.Millisecond:
		return d.Round(time.Microsecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}
