package datapath

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func ptr[T any](v T) *T { return &v }

func TestFromAPI(t *testing.T) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.0.10",
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			SessionAffinity:       corev1.ServiceAffinityClientIP,
			Ports: []corev1.ServicePort{
				{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromString("http"), NodePort: 30080},
				{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, TargetPort: intstr.FromInt32(5353)},
			},
		},
	}
	headless := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "hl"}, Spec: corev1.ServiceSpec{ClusterIP: "None"}}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "web-abc", Labels: map[string]string{ServiceNameLabel: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr("http"), Protocol: ptr(corev1.ProtocolTCP), Port: ptr(int32(8080))},
			{Name: ptr("dns"), Protocol: ptr(corev1.ProtocolUDP), Port: ptr(int32(5353))},
		},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.244.1.5"}, NodeName: ptr("n2"), Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}},
			{Addresses: []string{"10.244.0.7"}, NodeName: ptr("n1"), Conditions: discoveryv1.EndpointConditions{Ready: ptr(false), Serving: ptr(true), Terminating: ptr(true)}},
		},
	}
	other := slice.DeepCopy()
	other.Labels[ServiceNameLabel] = "unrelated"
	got := FromAPI("n1", nil, []*corev1.Service{svc, headless}, []*discoveryv1.EndpointSlice{slice, other})
	ready := Backend{Addr: netip.MustParseAddr("10.244.1.5"), NodeName: "n2", Ready: true, Serving: true}
	term := Backend{Addr: netip.MustParseAddr("10.244.0.7"), NodeName: "n1", Serving: true, Terminating: true}
	http := []Backend{term, ready}
	http[0].Port, http[1].Port = 8080, 8080
	dns := []Backend{term, ready}
	dns[0].Port, dns[1].Port = 5353, 5353
	want := &State{NodeName: "n1", Services: []Service{{
		Namespace: "default", Name: "web", Type: corev1.ServiceTypeNodePort, ClusterIP: netip.MustParseAddr("10.96.0.10"),
		AffinityTimeout: 10800 * time.Second, ExternalTrafficLocal: true,
		Ports: []Port{
			{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, NodePort: 30080, Backends: http},
			{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, Backends: dns},
		},
	}}}
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Fatalf("FromAPI (-want +got):\n%s", d)
	}
	// Ready wins over terminating; locally only the terminating one is there.
	p := got.Services[0].Ports[0]
	if u := p.Usable("n1", false); len(u) != 1 || u[0].Addr != ready.Addr {
		t.Errorf("usable cluster-wide: %v, want the ready one", u)
	}
	if u := p.Usable("n1", true); len(u) != 1 || u[0].Addr != term.Addr {
		t.Errorf("usable on n1: %v, want the terminating-but-serving fallback", u)
	}
}
