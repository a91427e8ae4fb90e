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
	flag.Parse()
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
	if *only != "" {
		var keep []dpbench.Dataplane
		for _, p := range planes {
			for _, name := range strings.Split(*only, ",") {
				if strings.HasPrefix(p.Name, strings.TrimSpace(name)) {
					keep = append(keep, p)
					break
				}
			}
		}
		if len(keep) == 0 {
			fmt.Fprintf(os.Stderr, "dpbench: -dataplanes %q matches none\n", *only)
			os.Exit(2)
		}
		planes = keep
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
