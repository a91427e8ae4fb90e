package ebpf

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"weir.dev/weir/datapath"
	"weir.dev/weir/test/topology"
)

// openBare opens a socket LB on a fresh cgroup that holds no process: its
// maps are real, nothing is balanced through it.
func openBare(t *testing.T, prefix string) *Dataplane {
	t.Helper()
	name := topology.UniqueName(t, prefix)
	cg := filepath.Join(cgroupRoot, "weir-test-"+name)
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Fatalf("make cgroup: %v", err)
	}
	t.Cleanup(func() { removeCgroup(t, cg) })
	cfg := Config{Node: "test-" + name, CgroupPath: cg}
	d, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		d.Close()
		if err := Remove(cfg); err != nil {
			t.Errorf("remove pins: %v", err)
		}
	})
	return d
}

func readMaps(t *testing.T, d *Dataplane) map[string]string {
	t.Helper()
	v, err := d.maps.read()
	if err != nil {
		t.Fatal(err)
	}
	return normalize(v)
}

// On the kernel's maps, a sequence of ApplyServices leaves the same
// state as a full Apply of the resulting State on a second data plane.
func TestApplyServicesEqualsApplyOnMaps(t *testing.T) {
	inc, full := openBare(t, "inc"), openBare(t, "full")
	r := rand.New(rand.NewPCG(3, 4))
	const n = 30
	ctx := context.Background()
	st := &datapath.State{NodeName: "n1", NodeIPs: []netip.Addr{netip.MustParseAddr("10.123.0.1")}}
	for i := range n {
		if r.IntN(3) != 0 {
			st.Services = append(st.Services, randomService(r, i))
		}
	}
	if err := inc.Apply(ctx, st); err != nil {
		t.Fatal(err)
	}
	want := datapath.NewServiceState(st)
	for round := range 60 {
		node, changed, deleted := randomChange(r, want, n)
		want.Update(node, changed, deleted)
		if err := inc.ApplyServices(ctx, node, changed, deleted); err != nil {
			t.Fatalf("round %d: apply services: %v", round, err)
		}
		if err := full.Apply(ctx, want.State()); err != nil {
			t.Fatalf("round %d: apply: %v", round, err)
		}
		got, exp := readMaps(t, inc), readMaps(t, full)
		if len(exp) == 0 {
			t.Fatalf("round %d: the full apply programmed nothing", round)
		}
		if diff := cmp.Diff(exp, got); diff != "" {
			t.Fatalf("round %d: maps after ApplyServices differ from a full Apply (-full +incremental):\n%s", round, diff)
		}
	}
	if inc.idx.wholes == 60 {
		t.Fatal("every change fell back to a whole apply")
	}
}

// Connections follow a change made through ApplyServices: a backend added
// takes connections, a service deleted stops answering and one added
// starts.
func TestSockLBApplyServices(t *testing.T) {
	f := newFixture(t, MapSizes{}, "be1", "be2")
	web := service("web", "10.96.0.10", tcpPort(80, f.tcp("be1", true)))
	f.apply(web)
	f.spread("http", "10.96.0.10:80", 10, "be1")

	node := datapath.NodeInfo{Name: "n1", IPs: []netip.Addr{netip.MustParseAddr("10.123.0.1")}}
	web = service("web", "10.96.0.10", tcpPort(80, f.tcp("be1", true), f.tcp("be2", true)))
	api := service("api", "10.96.0.11", tcpPort(80, f.tcp("be2", true)))
	if err := f.dp.ApplyServices(t.Context(), node, []datapath.Service{web, api}, nil); err != nil {
		t.Fatal(err)
	}
	if got := f.spread("http", "10.96.0.10:80", 60, "be1", "be2"); len(got) != 2 {
		t.Fatalf("web reached %v; want both backends", got)
	}
	f.spread("http", "10.96.0.11:80", 5, "be2")

	if err := f.dp.ApplyServices(t.Context(), node, nil, []datapath.ServiceKey{web.ServiceKey()}); err != nil {
		t.Fatal(err)
	}
	if r := f.cl.do(clientCmd{Op: "http", Addr: "10.96.0.10:80"}); r.Err == "" {
		t.Fatalf("deleted service answered: %+v", r)
	}
	f.spread("http", "10.96.0.11:80", 5, "be2")
}
