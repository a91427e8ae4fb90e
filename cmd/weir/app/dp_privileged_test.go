package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"weir.dev/weir/datapath"
	"weir.dev/weir/datapath/ebpf"
	"weir.dev/weir/datapath/ebpf/inspect"
	"weir.dev/weir/nodeagent/simnode"
	"weir.dev/weir/test/topology"
)

// dp runs `weir dp args...` in-process and returns stdout and the error.
func dp(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := NewRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"dp"}, args...))
	err := root.ExecuteContext(t.Context())
	return out.String(), err
}

// The dp views read a node's real pinned maps: a socket LB opened on a
// private bpffs and a fresh cgroup, programmed, and used by this process
// for a moment (one balanced connect, one refused).
func TestDPViewsReadPinnedMaps(t *testing.T) {
	bpffs := t.TempDir()
	if out, err := dp(t, "services", "--bpffs", bpffs); !errors.Is(err, ebpf.ErrNoPins) {
		t.Fatalf("dp services with no pins = %v (%s); want ErrNoPins", err, out)
	}
	name := topology.UniqueName(t, "dp")
	cg := filepath.Join(simnode.CgroupRoot, "weir-test-"+name)
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(cg) })
	cfg := ebpf.Config{Node: "test-" + name, CgroupPath: cg, BPFFS: bpffs, Sizes: ebpf.MapSizes{Services: 100}}
	d, err := ebpf.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Close()
		if err := ebpf.Remove(cfg); err != nil {
			t.Errorf("remove pins: %v", err)
		}
		_ = unix.Unmount(bpffs, 0)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	be := netip.MustParseAddrPort(ln.Addr().String())
	st := &datapath.State{NodeName: "n1", NodeIPs: []netip.Addr{netip.MustParseAddr("10.123.0.1")}, Services: []datapath.Service{
		{Namespace: "t", Name: "web", Type: corev1.ServiceTypeNodePort, ClusterIP: netip.MustParseAddr("10.96.77.10"), AffinityTimeout: 30 * time.Second,
			Ports: []datapath.Port{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, NodePort: 30080, Backends: []datapath.Backend{
				{Addr: be.Addr(), Port: be.Port(), Ready: true, Serving: true}}}}},
		{Namespace: "t", Name: "empty", Type: corev1.ServiceTypeClusterIP, ClusterIP: netip.MustParseAddr("10.96.77.11"),
			Ports: []datapath.Port{{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53}}},
	}}
	if err := d.Apply(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	restore, err := simnode.JoinCgroup(cg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", "10.96.77.10:80", 5*time.Second)
	if err == nil {
		c.Close()
	}
	_, rerr := net.DialTimeout("udp", "10.96.77.11:53", 5*time.Second)
	restore()
	if err != nil {
		t.Fatalf("connect through the VIP: %v", err)
	}
	if !errors.Is(rerr, syscall.ECONNREFUSED) {
		t.Fatalf("connect to a service without endpoints = %v; want ECONNREFUSED", rerr)
	}

	svcs, err := dp(t, "services", "--bpffs", bpffs) // the only node: no --node needed
	if err != nil {
		t.Fatalf("dp services: %v\n%s", err, svcs)
	}
	for _, want := range [][]string{
		{"FRONTEND", "TYPE", "SERVICE", "ID", "BACKENDS", "AFFINITY"},
		{"0.0.0.0:30080/tcp", "NodePort(any)", "*", "1", "ClientIP", "30s"},
		{"10.96.77.10:80/tcp", "ClusterIP", "*", "1", "ClientIP", "30s"},
		{"10.96.77.11:53/udp", "ClusterIP", "*", "0", "None"},
		{"10.123.0.1:30080/tcp", "NodePort", "*", "1", "ClientIP", "30s"},
	} {
		if !hasRow(svcs, want) {
			t.Errorf("dp services has no row %q:\n%s", want, svcs)
		}
	}

	bes, err := dp(t, "backends", "--bpffs", bpffs, "--node", cfg.Node)
	if err != nil {
		t.Fatalf("dp backends: %v\n%s", err, bes)
	}
	for _, want := range [][]string{
		{"10.96.77.10:80/tcp", "*", "0", be.String()},
		{"10.123.0.1:30080/tcp", "*", "0", be.String()},
		{"10.96.77.11:53/udp", "*", "-", "<none:", "refused>"},
	} {
		if !hasRow(bes, want) {
			t.Errorf("dp backends has no row %q:\n%s", want, bes)
		}
	}

	js, err := dp(t, "stats", "--bpffs", bpffs, "-o", "json")
	if err != nil {
		t.Fatalf("dp stats -o json: %v\n%s", err, js)
	}
	var stats inspect.Stats
	if err := json.Unmarshal([]byte(js), &stats); err != nil {
		t.Fatalf("dp stats -o json: %v\n%s", err, js)
	}
	byFE := map[string]inspect.ServiceStats{}
	for _, s := range stats.Services {
		for _, f := range s.Frontends {
			byFE[f] = s
		}
	}
	if s := byFE["10.96.77.10:80/tcp"]; s.Connects != 1 || s.Refused != 0 {
		t.Errorf("web stats = %+v; want 1 connect", s)
	}
	if s := byFE["10.96.77.11:53/udp"]; s.Refused != 1 {
		t.Errorf("empty stats = %+v; want 1 refused", s)
	}
	if stats.Reasons["no_backend"] != 1 {
		t.Errorf("reasons = %v; want no_backend 1", stats.Reasons)
	}
	wantMaps := map[string][2]int{"lb4_frontends": {4, ebpf.DefaultMapSizes.Frontends}, "lb4_services": {2, 100}, "lb4_slots": {1, ebpf.DefaultMapSizes.Slots}}
	for _, m := range stats.Maps {
		if w, ok := wantMaps[m.Map]; !ok || m.Entries != w[0] || m.Capacity != w[1] {
			t.Errorf("map %+v; want entries and capacity %v", m, w)
		}
		delete(wantMaps, m.Map)
	}
	if len(wantMaps) > 0 {
		t.Errorf("maps missing from stats: %v", wantMaps)
	}
	table, err := dp(t, "stats", "--bpffs", bpffs)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range [][]string{{"no_backend", "1"}, {"lb4_services", "2", "100", "2.0%"}} {
		if !hasRow(table, want) {
			t.Errorf("dp stats has no row %q:\n%s", want, table)
		}
	}

	if out, err := dp(t, "services", "--bpffs", bpffs, "-o", "yaml"); err == nil || !strings.Contains(err.Error(), "--output") {
		t.Errorf("dp services -o yaml = %v (%s); want an --output error", err, out)
	}
	if out, err := dp(t, "services", "--bpffs", bpffs, "--node", "no-such-node"); !errors.Is(err, ebpf.ErrNoPins) {
		t.Errorf("dp services --node no-such-node = %v (%s); want ErrNoPins", err, out)
	}
	// This node has no uplink, so no conntrack map: a clear error, not an
	// empty table (test/e2e reads one after NodePort traffic).
	if out, err := dp(t, "conntrack", "--bpffs", bpffs); err == nil || !strings.Contains(err.Error(), "no conntrack map") {
		t.Errorf("dp conntrack without uplink programs = %v (%s); want a no-conntrack-map error", err, out)
	}
}

// hasRow reports whether a line of table has exactly the fields want
// ("*" matches any field: service ids depend on allocation order).
func hasRow(table string, want []string) bool {
	for _, line := range strings.Split(table, "\n") {
		got := strings.Fields(line)
		if len(got) != len(want) {
			continue
		}
		match := true
		for i := range want {
			if want[i] != "*" && want[i] != got[i] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}
