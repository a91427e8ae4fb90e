package proxy_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"weir.dev/weir/datapath"
	"weir.dev/weir/nodeagent/proxy"
	"weir.dev/weir/test/cluster"
)

// recorder is a Dataplane that records what the proxy hands it. The
// kernel side of the same flow is TestProxyDrivesIPTables and the
// ebpf tests of ApplyServices.
type recorder struct {
	mu    sync.Mutex
	calls []call
}

type call struct {
	full    []string // service keys of a whole Apply
	changed []string // of an ApplyServices
	deleted []string
}

func (r *recorder) Apply(ctx context.Context, st *datapath.State) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := call{full: []string{}}
	for _, s := range st.Services {
		c.full = append(c.full, s.Key())
	}
	r.calls = append(r.calls, c)
	return nil
}

func (r *recorder) ApplyServices(ctx context.Context, node datapath.NodeInfo, changed []datapath.Service, deleted []datapath.ServiceKey) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var c call
	for _, s := range changed {
		c.changed = append(c.changed, fmt.Sprintf("%s %d backends", s.Key(), len(s.Ports[0].Backends)))
	}
	for _, k := range deleted {
		c.deleted = append(c.deleted, k.String())
	}
	slices.Sort(c.changed)
	slices.Sort(c.deleted)
	r.calls = append(r.calls, c)
	return nil
}

func (r *recorder) AttachPod(context.Context, datapath.Pod) error { return nil }
func (r *recorder) DetachPod(context.Context, datapath.Pod) error { return nil }
func (r *recorder) Close() error                                  { return nil }

// next waits for the next call after the n seen so far.
func (r *recorder) next(t *testing.T, n *int) call {
	t.Helper()
	var c call
	cluster.Eventually(t, 30*time.Second, fmt.Sprintf("data-plane call %d", *n+1), func() (bool, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.calls) > *n {
			c = r.calls[*n]
			return true, nil
		}
		return false, nil
	})
	*n++
	return c
}

func slice(name, svc string, ips ...string) *discoveryv1.EndpointSlice {
	sl := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Protocol: ptr(corev1.ProtocolTCP), Port: ptr(int32(8080))}},
	}
	for _, ip := range ips {
		sl.Endpoints = append(sl.Endpoints, endpoint(ip, true))
	}
	return sl
}

func histogramCount(t *testing.T, g prometheus.Gatherer, name string) uint64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var n uint64
			for _, m := range mf.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
			return n
		}
	}
	return 0
}

// The proxy reconciles with one whole Apply, then hands the data plane
// only the services an event touched: an EndpointSlice change is its
// service alone, a Service deleted is a deletion, a slice relabelled to
// another service changes both. Each handed-over change is one
// programming-latency sample.
func TestProxyHandsOverOnlyChangedServices(t *testing.T) {
	s := cluster.Start(t, cluster.WithLoops(nil))
	c := s.Client(t)
	ctx, cancel := context.WithCancel(t.Context())
	for _, name := range []string{"a", "b", "c"} {
		if _, err := c.CoreV1().Services("default").Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstrFrom(8080)}}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.DiscoveryV1().EndpointSlices("default").Create(ctx, slice(name+"-1", name, "10.180.0.1"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	dp := &recorder{}
	reg := prometheus.NewRegistry()
	p, err := proxy.New(c, dp, proxy.Config{NodeName: "n1", Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	n := 0
	first := dp.next(t, &n)
	for _, k := range []string{"default/a", "default/b", "default/c"} {
		if !slices.Contains(first.full, k) {
			t.Fatalf("first call %+v: want a whole Apply holding %s", first, k)
		}
	}
	samples := histogramCount(t, reg, "weir_network_programming_duration_seconds")

	steps := []struct {
		name string
		do   func() error
		want call
	}{
		{"an endpoint slice changes", func() error {
			_, err := c.DiscoveryV1().EndpointSlices("default").Update(ctx, slice("a-1", "a", "10.180.0.1", "10.180.0.2"), metav1.UpdateOptions{})
			return err
		}, call{changed: []string{"default/a 2 backends"}}},
		{"a second slice for a service", func() error {
			_, err := c.DiscoveryV1().EndpointSlices("default").Create(ctx, slice("b-2", "b", "10.180.0.3"), metav1.CreateOptions{})
			return err
		}, call{changed: []string{"default/b 2 backends"}}},
		{"a slice moves to another service", func() error {
			_, err := c.DiscoveryV1().EndpointSlices("default").Update(ctx, slice("b-2", "c", "10.180.0.3"), metav1.UpdateOptions{})
			return err
		}, call{changed: []string{"default/b 1 backends", "default/c 2 backends"}}},
		{"a service is deleted", func() error {
			return c.CoreV1().Services("default").Delete(ctx, "a", metav1.DeleteOptions{})
		}, call{deleted: []string{"default/a"}}},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got := dp.next(t, &n)
		// One event may reach the proxy before the other of a pair:
		// gather calls until the expected keys have all come.
		for len(got.changed)+len(got.deleted) < len(st.want.changed)+len(st.want.deleted) && got.full == nil {
			more := dp.next(t, &n)
			got.changed = append(got.changed, more.changed...)
			got.deleted = append(got.deleted, more.deleted...)
			slices.Sort(got.changed)
		}
		if got.full != nil || !slices.Equal(got.changed, st.want.changed) || !slices.Equal(got.deleted, st.want.deleted) {
			t.Fatalf("%s: data plane got %+v; want only %+v", st.name, got, st.want)
		}
	}
	if got := histogramCount(t, reg, "weir_network_programming_duration_seconds"); got < samples+5 {
		t.Fatalf("programming latency samples %d after 5 service changes, %d before", got, samples)
	}
}
