package proxy_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"weir.dev/weir/datapath/ebpf"
	"weir.dev/weir/datapath/iptables"
	"weir.dev/weir/nodeagent/agent"
	"weir.dev/weir/nodeagent/proxy"
	"weir.dev/weir/nodeagent/simnode"
	"weir.dev/weir/test/cluster"
	"weir.dev/weir/test/netns"
	"weir.dev/weir/test/topology"
)

func ptr[T any](v T) *T { return &v }

// node makes a namespace with backend addresses on lo and a route for the
// service range, and serves "addr" on each backend.
func node(t *testing.T) string {
	ns := netns.New(t, "prx")
	for _, c := range [][]string{
		{"ip", "addr", "add", "10.180.0.1/32", "dev", "lo"},
		{"ip", "addr", "add", "10.180.0.2/32", "dev", "lo"},
		{"ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"},
		{"ip", "link", "set", "v0", "up"},
		{"ip", "link", "set", "v1", "up"},
		{"ip", "addr", "add", "10.99.0.1/24", "dev", "v0"},
		{"ip", "route", "add", "10.96.0.0/12", "dev", "v0"},
	} {
		netns.Exec(t, ns, c...)
	}
	for _, addr := range []string{"10.180.0.1:8080", "10.180.0.2:8080"} {
		netns.Do(t, ns, func() {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				t.Fatalf("listen: %v", err)
			}
			t.Cleanup(func() { ln.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					fmt.Fprintln(c, addr)
					c.Close()
				}
			}()
		})
	}
	return ns
}

func dial(t *testing.T, ns, addr string) (string, error) {
	var got string
	var derr error
	netns.Do(t, ns, func() {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			derr = err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		got, derr = bufio.NewReader(c).ReadString('\n')
		got = strings.TrimSpace(got)
	})
	return got, derr
}

func endpoint(ip string, ready bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: []string{ip}, NodeName: ptr("n1"),
		Conditions: discoveryv1.EndpointConditions{Ready: ptr(ready), Serving: ptr(ready), Terminating: ptr(false)}}
}

// The proxy turns a selector-less Service and a hand-written EndpointSlice
// into working iptables rules, follows endpoint readiness, and removes the
// service when it is deleted.
func TestProxyDrivesIPTables(t *testing.T) {
	s := cluster.Start(t)
	c := s.Client(t)
	ns := node(t)
	dp, err := iptables.New(iptables.Config{Backend: iptables.BackendNFT, Exec: []string{"ip", "netns", "exec", ns}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := proxy.New(c, dp, proxy.Config{NodeName: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	svc, err := c.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstrFrom(8080)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vip := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-manual", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Protocol: ptr(corev1.ProtocolTCP), Port: ptr(int32(8080))}},
		Endpoints:   []discoveryv1.Endpoint{endpoint("10.180.0.1", true), endpoint("10.180.0.2", true)},
	}
	slice, err = c.DiscoveryV1().EndpointSlices("default").Create(ctx, slice, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	cluster.Eventually(t, 30*time.Second, "both endpoints answer through the ClusterIP", func() (bool, error) {
		got, err := dial(t, ns, vip)
		if err == nil {
			seen[got] = true
		}
		return len(seen) == 2, err
	})

	slice.Endpoints[1] = endpoint("10.180.0.2", false)
	if _, err := c.DiscoveryV1().EndpointSlices("default").Update(ctx, slice, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 30*time.Second, "the unready endpoint gets no new connections", func() (bool, error) {
		for range 10 {
			if got, err := dial(t, ns, vip); err != nil || got != "10.180.0.1:8080" {
				return false, err
			}
		}
		return true, nil
	})

	if err := c.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 30*time.Second, "a deleted service no longer answers", func() (bool, error) {
		_, err := dial(t, ns, vip)
		// With its rules gone the VIP is an unrouted address on the veth:
		// the connect times out or fails; either way nothing answers.
		return err != nil && !errors.Is(err, syscall.EINTR), nil
	})
}

func intstrFrom(i int) intstr.IntOrString { return intstr.FromInt32(int32(i)) }

// The agent's metrics handler serves the proxy's programming-latency
// histogram and the eBPF data plane's counters: a proxy sync adds latency
// samples and moves the map occupancy the collector reads at scrape time.
func TestProxyMetricsWithEBPF(t *testing.T) {
	s := cluster.Start(t, cluster.WithLoops(nil))
	c := s.Client(t)
	name := topology.UniqueName(t, "prxm")
	cg := filepath.Join(simnode.CgroupRoot, "weir-test-"+name)
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(cg) })
	cfg := ebpf.Config{Node: "test-" + name, CgroupPath: cg}
	dp, err := ebpf.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dp.Close()
		if err := ebpf.Remove(cfg); err != nil {
			t.Errorf("remove pins: %v", err)
		}
	})
	reg := prometheus.NewRegistry()
	reg.MustRegister(ebpf.NewCollector(dp))
	p, err := proxy.New(c, dp, proxy.Config{NodeName: "n1", Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	h := agent.MetricsHandler(reg)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	scrape := func() string {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		return rec.Body.String()
	}
	value := func(text, series string) float64 {
		for _, line := range strings.Split(text, "\n") {
			if v, ok := strings.CutPrefix(line, series+" "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				return f
			}
		}
		return -1
	}
	const count = "weir_network_programming_duration_seconds_count"
	const slots = `weir_dataplane_map_entries{map="lb4_slots"}`
	svc, err := c.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstrFrom(8080)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sl := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Protocol: ptr(corev1.ProtocolTCP), Port: ptr(int32(8080))}},
		Endpoints:   []discoveryv1.Endpoint{endpoint("10.180.0.1", true)},
	}
	if sl, err = c.DiscoveryV1().EndpointSlices("default").Create(ctx, sl, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	series := fmt.Sprintf(`weir_dataplane_service_connects_total{frontend="%s:80/tcp",name="web",namespace="default",port="http"}`, svc.Spec.ClusterIP)
	var samples float64
	cluster.Eventually(t, 30*time.Second, "the service and its endpoint are programmed and measured", func() (bool, error) {
		text := scrape()
		samples = value(text, count)
		return value(text, series) == 0 && value(text, slots) == 1 && samples >= 1, nil
	})
	sl.Endpoints = append(sl.Endpoints, endpoint("10.180.0.2", true))
	if _, err := c.DiscoveryV1().EndpointSlices("default").Update(ctx, sl, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 30*time.Second, "the endpoint change is programmed and measured", func() (bool, error) {
		text := scrape()
		return value(text, slots) == 2 && value(text, count) > samples, nil
	})
	if text := scrape(); !strings.Contains(text, `weir_proxy_syncs_total{mode="incremental",result="ok"}`) {
		t.Fatalf("no incremental sync counted:\n%s", text)
	}
}
