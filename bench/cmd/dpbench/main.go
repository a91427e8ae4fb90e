// Command dpbench runs the data-plane benchmark for every data plane in
// one run and writes bench/results/dataplane.{json,md}.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"weir.dev/weir/bench/dpbench"
	"weir.dev/weir/datapath"
	"weir.dev/weir/datapath/ebpf"
	"weir.dev/weir/datapath/iptables"
)

// removing closes an eBPF data plane and removes its pins and cgroup, so
// each benchmark topology starts clean.
type removing struct {
	*ebpf.Dataplane
	cfg    ebpf.Config
	cgroup string
}

func (r *removing) Close() error {
	err := r.Dataplane.Close()
	_ = ebpf.Remove(r.cfg)
	_ = os.Remove(r.cgroup)
	return err
}

// Reasons reports the eBPF data plane's nonzero counts by reason.
func (r *removing) Reasons() (map[string]uint64, error) {
	c, err := r.Counters()
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for k, v := range c.Reasons {
		if v > 0 {
			out[k] = v
		}
	}
	return out, nil
}

func main() {
	var (
		out      string
		quick    bool
		services string
		o        dpbench.Options
	)
	flag.StringVar(&out, "out", "bench/results", "output directory")
	flag.BoolVar(&quick, "quick", false, "small sizes")
	flag.StringVar(&services, "services", "1000,10000", "service counts for programming time")
	flag.IntVar(&o.Requests, "requests", 2000, "connects per latency run")
	flag.DurationVar(&o.Cap, "cap", 60*time.Second, "time cap per programming run")
	only := flag.String("dataplanes", "", "comma-separated names to run, matched by prefix: ebpf, iptables (nft backend), iptables (legacy); empty runs all")
	latency := flag.String("latency", "10,10000", "service counts for the latency runs")
	nodePorts := flag.String("nodeport", "10,10000", "service counts for the NodePort runs (\"\" skips them)")
	flag.IntVar(&o.RateWorkers, "rate-clients", 4, "concurrent clients in a NodePort rate run")
	flag.DurationVar(&o.RateTime, "rate-time", 3*time.Second, "length of a NodePort rate run")
	flag.Parse()
	for _, s := range strings.Split(*nodePorts, ",") {
		var n int
		if s == "" {
			continue
		}
		if _, err := fmt.Sscan(s, &n); err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "dpbench: -nodeport %q: want positive counts\n", *nodePorts)
			os.Exit(2)
		}
		o.NodePort = append(o.NodePort, n)
	}
	if o.RateWorkers < 1 || o.RateTime <= 0 {
		fmt.Fprintf(os.Stderr, "dpbench: -rate-clients %d, -rate-time %s: want both positive\n", o.RateWorkers, o.RateTime)
		os.Exit(2)
	}
	o.Latency = nil
	for _, s := range strings.Split(*latency, ",") {
		var n int
		if _, err := fmt.Sscan(s, &n); err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "dpbench: -latency %q: want positive counts\n", *latency)
			os.Exit(2)
		}
		o.Latency = append(o.Latency, n)
	}
	for _, s := range strings.Split(services, ",") {
		var n int
		fmt.Sscan(s, &n)
		o.Services = append(o.Services, n)
	}
	if quick {
		o.Services, o.Latency, o.Requests = []int{100, 1000}, []int{10, 1000}, 300
		if *nodePorts != "" {
			o.NodePort = []int{10, 1000}
		}
		o.RateTime = 500 * time.Millisecond
	}
	brnf, _ := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables")
	cond := "br_netfilter call-iptables=" + strings.TrimSpace(string(brnf))
	planes := []dpbench.Dataplane{
		{Name: "ebpf (socket LB)", Conditions: "connect-time translation, no per-packet work; " + cond, New: func(ns string) (datapath.Dataplane, error) {
			cg := filepath.Join("/sys/fs/cgroup/unified", ns)
			if err := os.MkdirAll(cg, 0o755); err != nil {
				return nil, err
			}
			d, err := ebpf.Open(context.Background(), ebpf.Config{Node: ns, CgroupPath: cg})
			if err != nil {
				return nil, err
			}
			return &removing{Dataplane: d, cfg: ebpf.Config{Node: ns}, cgroup: cg}, nil
		}, Cgroup: func(ns string) string { return filepath.Join("/sys/fs/cgroup/unified", ns) }},
		{Name: "iptables (nft backend)", Conditions: "partial sync on, " + cond, New: func(ns string) (datapath.Dataplane, error) {
			return iptables.New(iptables.Config{Backend: iptables.BackendNFT, Exec: []string{"ip", "netns", "exec", ns}})
		}},
		{Name: "iptables (legacy)", Conditions: "partial sync on, " + cond, New: func(ns string) (datapath.Dataplane, error) {
			return iptables.New(iptables.Config{Backend: iptables.BackendLegacy, Exec: []string{"ip", "netns", "exec", ns}})
		}},
	}
	// NodePort from an external client: the eBPF data plane with the
	// uplink's programs in each XDP mode, and iptables on both backends.
	npPlanes := []dpbench.Dataplane{
		{Name: "ebpf NodePort, XDP off", Conditions: "TC (tcx) on the uplink, no XDP", New: nodePortEBPF(ebpf.XDPOff)},
		{Name: "ebpf NodePort, XDP generic", Conditions: "XDP generic on the uplink, TC for replies", New: nodePortEBPF(ebpf.XDPGeneric)},
		{Name: "ebpf NodePort, XDP native", Conditions: "XDP native on the veth uplink (XDP_PASS on its peer, client tx checksum offload off), TC for replies",
			New: nodePortEBPF(ebpf.XDPNative), NativeXDP: true},
		{Name: "iptables NodePort (nft backend)", Conditions: "partial sync on", New: func(ns string) (datapath.Dataplane, error) {
			return iptables.New(iptables.Config{Backend: iptables.BackendNFT, Exec: []string{"ip", "netns", "exec", ns}})
		}},
		{Name: "iptables NodePort (legacy)", Conditions: "partial sync on", New: func(ns string) (datapath.Dataplane, error) {
			return iptables.New(iptables.Config{Backend: iptables.BackendLegacy, Exec: []string{"ip", "netns", "exec", ns}})
		}},
	}
	if len(o.NodePort) == 0 {
		npPlanes = nil
	}
	if *only != "" {
		planes, npPlanes = filter(planes, *only), filter(npPlanes, *only)
		if len(planes)+len(npPlanes) == 0 {
			fmt.Fprintf(os.Stderr, "dpbench: -dataplanes %q matches none\n", *only)
			os.Exit(2)
		}
	}
	// The machine may be shared: the load average at the start is part
	// of the conditions.
	load, _ := os.ReadFile("/proc/loadavg")
	var results []*dpbench.Result
	for _, p := range planes {
		fmt.Fprintf(os.Stderr, "dpbench: %s\n", p.Name)
		r, err := dpbench.Run(p, o)
		if err != nil {
			fmt.Fprintln(os.Stderr, "dpbench:", err)
			os.Exit(1)
		}
		results = append(results, r)
	}
	for _, p := range npPlanes {
		fmt.Fprintf(os.Stderr, "dpbench: %s\n", p.Name)
		r, err := dpbench.RunNodePort(p, o)
		if err != nil {
			fmt.Fprintln(os.Stderr, "dpbench:", err)
			os.Exit(1)
		}
		results = append(results, r)
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	loadFields := strings.Fields(string(load))
	if len(loadFields) > 3 {
		loadFields = loadFields[:3]
	}
	md := dpbench.Markdown(results, o, "Kernel "+strings.TrimSpace(string(kernel))+", 2 cores, load average at start "+strings.Join(loadFields, " "))
	_ = os.MkdirAll(out, 0o755)
	js, _ := json.MarshalIndent(results, "", "  ")
	_ = os.WriteFile(filepath.Join(out, "dataplane.json"), append(js, '\n'), 0o644)
	_ = os.WriteFile(filepath.Join(out, "dataplane.md"), []byte(md), 0o644)
	fmt.Print(md)
}

// filter keeps the data planes whose names start with one of the
// comma-separated prefixes in only.
func filter(planes []dpbench.Dataplane, only string) []dpbench.Dataplane {
	var keep []dpbench.Dataplane
	for _, p := range planes {
		for _, name := range strings.Split(only, ",") {
			if strings.HasPrefix(p.Name, strings.TrimSpace(name)) {
				keep = append(keep, p)
				break
			}
		}
	}
	return keep
}

// nodePortEBPF opens the eBPF data plane inside the node's namespace
// with its NodePort programs on the uplink in XDP mode xdp. Its socket LB
// sits on a cgroup of its own that the external client is not in.
func nodePortEBPF(xdp ebpf.XDPMode) func(ns string) (datapath.Dataplane, error) {
	return func(ns string) (datapath.Dataplane, error) {
		cg := filepath.Join("/sys/fs/cgroup/unified", ns)
		if err := os.MkdirAll(cg, 0o755); err != nil {
			return nil, err
		}
		cfg := ebpf.Config{Node: ns, CgroupPath: cg, Uplink: dpbench.Uplink, XDP: xdp}
		var d *ebpf.Dataplane
		err := dpbench.InNetns(ns, func() (err error) {
			d, err = ebpf.Open(context.Background(), cfg)
			return err
		})
		if err != nil {
			_ = ebpf.Remove(cfg)
			_ = os.Remove(cg)
			return nil, fmt.Errorf("open ebpf (XDP %s) on %s: %w", xdp, dpbench.Uplink, err)
		}
		return &removing{Dataplane: d, cfg: cfg, cgroup: cg}, nil
	}
}
