package proxy

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"weir.dev/weir/datapath"
)

// caches fills informer-shaped caches with n services × 3 endpoints.
func caches(tb testing.TB, n int) *source {
	tb.Helper()
	svcs := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	slices := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{indexByService: func(obj any) ([]string, error) {
		if k, ok := sliceService(obj); ok {
			return []string{k.String()}, nil
		}
		return nil, nil
	}})
	port, proto, ready := int32(8080), corev1.ProtocolTCP, true
	name := "http"
	for i := range n {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: fmt.Sprintf("s%05d", i)},
			Spec: corev1.ServiceSpec{ClusterIP: fmt.Sprintf("10.100.%d.%d", i>>8, i&255), Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: proto}}}}
		sl := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: svc.Name + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: svc.Name}},
			AddressType: discoveryv1.AddressTypeIPv4, Ports: []discoveryv1.EndpointPort{{Name: &name, Protocol: &proto, Port: &port}}}
		for e := range 3 {
			sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.245.%d.%d", i&255, e+1)},
				Conditions: discoveryv1.EndpointConditions{Ready: &ready}})
		}
		if err := svcs.Add(svc); err != nil {
			tb.Fatal(err)
		}
		if err := slices.Add(sl); err != nil {
			tb.Fatal(err)
		}
	}
	return &source{node: "n1", svcs: corelisters.NewServiceLister(svcs), slices: slices}
}

// source.service converts one service from the caches, whatever their size.
func TestSourceService(t *testing.T) {
	src := caches(t, 100)
	s, err := src.service(datapath.ServiceKey{Namespace: "bench", Name: "s00042"})
	if err != nil {
		t.Fatal(err)
	}
	if s == nil || s.Name != "s00042" || len(s.Ports) != 1 || len(s.Ports[0].Backends) != 3 {
		t.Fatalf("service = %+v; want s00042 with one port of 3 backends", s)
	}
	if s, err := src.service(datapath.ServiceKey{Namespace: "bench", Name: "gone"}); s != nil || err != nil {
		t.Fatalf("missing service = %+v, %v; want nil, nil (a deletion)", s, err)
	}
	st, err := src.all()
	if err != nil || len(st.Services) != 100 {
		t.Fatalf("all = %d services, %v", len(st.Services), err)
	}
}

// The proxy's share of a one-endpoint change at 10,000 services: one
// service converted (incremental) against the whole state rebuilt.
func BenchmarkSourceService10k(b *testing.B) {
	src := caches(b, 10000)
	k := datapath.ServiceKey{Namespace: "bench", Name: "s05000"}
	for b.Loop() {
		if _, err := src.service(k); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSourceAll10k(b *testing.B) {
	src := caches(b, 10000)
	for b.Loop() {
		if _, err := src.all(); err != nil {
			b.Fatal(err)
		}
	}
}
