package iptables

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"weir.dev/weir/datapath"
)

var update = flag.Bool("update", false, "rewrite golden files")

func be(addr string, port uint16, node string) datapath.Backend {
	return datapath.Backend{Addr: netip.MustParseAddr(addr), Port: port, NodeName: node, Ready: true, Serving: true}
}

func svc(ns, name, vip string, ports ...datapath.Port) datapath.Service {
	return datapath.Service{Namespace: ns, Name: name, Type: corev1.ServiceTypeClusterIP, ClusterIP: netip.MustParseAddr(vip), Ports: ports}
}

// kube-proxy's own test fixtures name these chains; matching them shows the
// hashing is the same.
func TestChainNamesMatchKubeProxy(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{serviceChain("ns1/svc1:p80", corev1.ProtocolTCP), "KUBE-SVC-XPGD46QRK7WJZT7O"},
		{endpointChain("ns1/svc1:p80", corev1.ProtocolTCP, "10.180.0.1:80"), "KUBE-SEP-SXIVWICOYRO3J4NJ"},
		{endpointChain("ns1/svc1:p80", corev1.ProtocolTCP, "10.180.0.2:80"), "KUBE-SEP-LXVODXWDISEETFEF"},
		{endpointChain("ns1/svc1:p80", corev1.ProtocolTCP, "10.180.0.3:80"), "KUBE-SEP-ICDUIKC33SFI6ZPR"},
		{externalChain("ns3/svc3:p80", corev1.ProtocolTCP), "KUBE-EXT-X27LE4BHSL4DOUIK"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %s, want %s", tc.got, tc.want)
		}
	}
}

func goldenCases() []struct {
	name string
	st   *datapath.State
} {
	three := datapath.Port{Name: "p80", Protocol: corev1.ProtocolTCP, Port: 80,
		Backends: []datapath.Backend{be("10.180.0.1", 80, "n1"), be("10.180.0.2", 80, "n2"), be("10.180.0.3", 80, "n1")}}
	nodePort := svc("ns3", "svc3", "172.30.0.43", datapath.Port{Name: "p80", Protocol: corev1.ProtocolTCP, Port: 80, NodePort: 3003,
		Backends: []datapath.Backend{be("10.180.0.3", 80, "n1")}})
	nodePort.Type = corev1.ServiceTypeNodePort
	local := svc("ns4", "svc4", "172.30.0.44", datapath.Port{Name: "p80", Protocol: corev1.ProtocolTCP, Port: 80, NodePort: 3004,
		Backends: []datapath.Backend{be("10.180.0.4", 80, "n1"), be("10.180.0.5", 80, "n2")}})
	local.Type, local.ExternalTrafficLocal = corev1.ServiceTypeNodePort, true
	local.ExternalIPs = []netip.Addr{netip.MustParseAddr("192.168.99.44")}
	affinity := svc("ns5", "svc5", "172.30.0.45", datapath.Port{Name: "p80", Protocol: corev1.ProtocolTCP, Port: 80,
		Backends: []datapath.Backend{be("10.180.0.3", 80, "n1"), be("10.180.0.6", 80, "n2")}})
	affinity.AffinityTimeout = 10800 * time.Second
	terminating := be("10.180.0.9", 8080, "n1")
	terminating.Ready, terminating.Terminating = false, true
	notReady := be("10.180.0.8", 8080, "n1")
	notReady.Ready, notReady.Serving = false, false
	return []struct {
		name string
		st   *datapath.State
	}{
		{"clusterip-three-endpoints", &datapath.State{NodeName: "n1", Services: []datapath.Service{svc("ns1", "svc1", "172.30.0.41", three)}}},
		{"no-endpoints-rejects", &datapath.State{NodeName: "n1", Services: []datapath.Service{svc("ns2", "svc2", "172.30.0.42",
			datapath.Port{Name: "p80", Protocol: corev1.ProtocolTCP, Port: 80})}}},
		{"nodeport-cluster", &datapath.State{NodeName: "n1", Services: []datapath.Service{nodePort}}},
		{"nodeport-local-externalip", &datapath.State{NodeName: "n1", Services: []datapath.Service{local}}},
		{"session-affinity", &datapath.State{NodeName: "n1", Services: []datapath.Service{affinity}}},
		{"udp-and-terminating-fallback", &datapath.State{NodeName: "n1", Services: []datapath.Service{svc("ns6", "dns", "172.30.0.10",
			datapath.Port{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, Backends: []datapath.Backend{terminating, notReady}})}}},
	}
}

func TestRenderGolden(t *testing.T) {
	cases := goldenCases()
	if len(cases) == 0 {
		t.Fatal("empty table")
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Render(tc.st, DefaultOptions()).Restore(nil, nil)
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden (run with -update to create): %v", err)
			}
			if d := cmp.Diff(string(want), string(got)); d != "" {
				t.Errorf("rules differ from %s (-want +got):\n%s", path, d)
			}
		})
	}
}

// Statistic-mode probabilities are 1/(n-i): each endpoint equally likely.
func TestProbabilities(t *testing.T) {
	st := goldenCases()[0].st
	rules := Render(st, DefaultOptions()).Chains[serviceChain("ns1/svc1:p80", corev1.ProtocolTCP)]
	var probs []string
	for _, r := range rules {
		if i := strings.Index(r, "--probability "); i >= 0 {
			probs = append(probs, strings.Fields(r[i:])[1])
		}
	}
	if d := cmp.Diff([]string{"0.3333333333", "0.5000000000"}, probs); d != "" {
		t.Fatalf("probabilities (-want +got):\n%s", d)
	}
}

// A partial sync after one endpoint changes rewrites that service's chains
// only, and deletes the chain of the endpoint that left.
func TestPartialRestoreTouchesOnlyWhatChanged(t *testing.T) {
	st := &datapath.State{NodeName: "n1"}
	for i := range 50 {
		ip := netip.AddrFrom4([4]byte{172, 30, 1, byte(i)})
		st.Services = append(st.Services, svc("ns", "s"+string(rune('a'+i%26))+string(rune('a'+i/26)), ip.String(),
			datapath.Port{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80,
				Backends: []datapath.Backend{be("10.244.1."+strconv.Itoa(i), 8080, "n1"), be("10.244.2."+strconv.Itoa(i), 8080, "n2")}}))
	}
	o := DefaultOptions()
	prev := Render(st, o)
	st.Services[7].Ports[0].Backends = st.Services[7].Ports[0].Backends[:1]
	next := Render(st, o)
	input := string(next.Restore(prev, nil))
	spn := portName(&st.Services[7], &st.Services[7].Ports[0])
	svcCh := serviceChain(spn, corev1.ProtocolTCP)
	goneSep := endpointChain(spn, corev1.ProtocolTCP, "10.244.2.7:8080")
	var declared []string
	for _, line := range strings.Split(input, "\n") {
		if strings.HasPrefix(line, ":KUBE-SVC-") || strings.HasPrefix(line, ":KUBE-SEP-") {
			declared = append(declared, strings.Fields(line)[0][1:])
		}
	}
	if d := cmp.Diff([]string{svcCh, goneSep}, declared); d != "" {
		t.Errorf("per-service chains in the partial restore (-want +got):\n%s", d)
	}
	if !strings.Contains(input, "-X "+goneSep+"\n") {
		t.Errorf("the departed endpoint's chain is not deleted")
	}
	full := string(next.Restore(nil, nil))
	if len(input)*5 > len(full) {
		t.Errorf("partial restore is %d bytes, full %d: not much smaller", len(input), len(full))
	}
}
