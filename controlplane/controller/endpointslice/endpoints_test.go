package endpointslice

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// subsetView renders a subset as "ports | ready addresses | not ready".
func subsetView(ss []corev1.EndpointSubset) []string {
	var out []string
	for _, s := range ss {
		var ports, ready, notReady []string
		for _, p := range s.Ports {
			ports = append(ports, fmt.Sprintf("%s/%s/%d", p.Name, p.Protocol, p.Port))
		}
		for _, a := range s.Addresses {
			ready = append(ready, a.TargetRef.Name+"@"+a.IP+hostname(a))
		}
		for _, a := range s.NotReadyAddresses {
			notReady = append(notReady, a.TargetRef.Name+"@"+a.IP+hostname(a))
		}
		out = append(out, strings.Join(ports, ",")+" | "+strings.Join(ready, ",")+" | "+strings.Join(notReady, ","))
	}
	return out
}

func hostname(a corev1.EndpointAddress) string {
	if a.Hostname == "" {
		return ""
	}
	return "(" + a.Hostname + ")"
}

func TestDesiredEndpoints(t *testing.T) {
	tests := []struct {
		name     string
		svc      *corev1.Service
		pods     []*corev1.Pod
		want     []string
		truncate bool
	}{
		{
			name: "ready, not ready; terminating and finished left out",
			svc:  service(),
			pods: []*corev1.Pod{
				pod(1), pod(2, notReady), pod(3, terminating), pod(4, func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
				pod(5, func(p *corev1.Pod) { p.Status.PodIP, p.Status.PodIPs = "", nil }),
				pod(6, func(p *corev1.Pod) { p.Spec.Hostname, p.Spec.Subdomain = "h6", "web" }),
			},
			want: []string{fmt.Sprintf("http/TCP/8080 | p1@%s,p6@%s(h6) | p2@%s", podIP(1), podIP(6), podIP(2))},
		},
		{
			name: "publishNotReadyAddresses: all ready, terminating kept",
			svc:  service(func(s *corev1.Service) { s.Spec.PublishNotReadyAddresses = true }),
			pods: []*corev1.Pod{pod(1), pod(2, notReady), pod(3, terminating)},
			want: []string{fmt.Sprintf("http/TCP/8080 | p1@%s,p2@%s,p3@%s | ", podIP(1), podIP(2), podIP(3))},
		},
		{
			name: "one subset per set of ports; a pod no port reaches is left out",
			svc: service(withPorts(
				corev1.ServicePort{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("web")},
				corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromString("dns")},
			)),
			pods: []*corev1.Pod{pod(1), pod(2, webPort(9090)), pod(3, webPort(9090), notReady),
				pod(4, func(p *corev1.Pod) { p.Spec.Containers[0].Ports = nil })},
			want: []string{
				fmt.Sprintf("http/TCP/8080 | p1@%s | ", podIP(1)),
				fmt.Sprintf("http/TCP/9090 | p2@%s | p3@%s", podIP(2), podIP(3)),
			},
		},
		{
			name: "headless without ports",
			svc: service(withPorts(), func(s *corev1.Service) {
				s.Spec.ClusterIP = corev1.ClusterIPNone
			}),
			pods: []*corev1.Pod{pod(1)},
			want: []string{fmt.Sprintf(" | p1@%s | ", podIP(1))},
		},
		{
			name:     "over 1,000 addresses: truncated, ready ones kept",
			svc:      service(),
			pods:     append(pods(0, 990), pods(990, 1200, notReady)...),
			truncate: true,
		},
	}
	if len(tests) == 0 {
		t.Fatal("empty table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := desiredEndpoints(tc.svc, tc.pods)
			if tc.want != nil {
				if diff := cmp.Diff(tc.want, subsetView(got.Subsets)); diff != "" {
					t.Errorf("subsets (-want +got):\n%s", diff)
				}
			}
			if over := got.Annotations[corev1.EndpointsOverCapacity] == "truncated"; over != tc.truncate {
				t.Errorf("over-capacity annotation = %t, want %t", over, tc.truncate)
			}
			if tc.truncate {
				ready, notReady := 0, 0
				for _, s := range got.Subsets {
					ready += len(s.Addresses)
					notReady += len(s.NotReadyAddresses)
				}
				if ready != 990 || notReady != 10 {
					t.Errorf("truncated to %d ready + %d not ready, want 990 + 10", ready, notReady)
				}
			}
			if got.Labels["endpointslice.kubernetes.io/skip-mirror"] != "true" || got.Labels["tier"] != "front" || !ownedBy(got.OwnerReferences, tc.svc) {
				t.Errorf("labels %v owners %v: want the service's labels, skip-mirror and the service as owner", got.Labels, got.OwnerReferences)
			}
			// What the server gives back says the same: no rewrite.
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			back := &corev1.Endpoints{}
			if err := json.Unmarshal(b, back); err != nil {
				t.Fatal(err)
			}
			if endpointsDiffer(back, got) {
				t.Errorf("endpointsDiffer after a JSON round-trip")
			}
			if again := desiredEndpoints(service(func(s *corev1.Service) { s.Labels = nil }), tc.pods); !endpointsDiffer(back, again) {
				t.Errorf("endpointsDiffer misses a label change")
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	addrs := func(n int) []corev1.EndpointAddress { return make([]corev1.EndpointAddress, n) }
	tests := []struct {
		name    string
		subsets []corev1.EndpointSubset
		limit   int
		want    [][2]int // ready, not ready per subset
	}{
		{"under the limit", []corev1.EndpointSubset{{Addresses: addrs(3), NotReadyAddresses: addrs(2)}}, 5, [][2]int{{3, 2}}},
		{"not ready cut, shared", []corev1.EndpointSubset{
			{Addresses: addrs(4), NotReadyAddresses: addrs(4)},
			{Addresses: addrs(2), NotReadyAddresses: addrs(4)},
		}, 8, [][2]int{{4, 1}, {2, 1}}},
		{"ready over the limit: not ready all gone", []corev1.EndpointSubset{
			{Addresses: addrs(6), NotReadyAddresses: addrs(1)},
			{Addresses: addrs(6)},
		}, 6, [][2]int{{3, 0}, {3, 0}}},
	}
	if len(tests) == 0 {
		t.Fatal("empty table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cut := truncate(tc.subsets, tc.limit)
			var got [][2]int
			total := 0
			for _, s := range tc.subsets {
				got = append(got, [2]int{len(s.Addresses), len(s.NotReadyAddresses)})
				total += len(s.Addresses) + len(s.NotReadyAddresses)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("sizes (-want +got):\n%s", diff)
			}
			if total > tc.limit {
				t.Errorf("%d addresses left, limit %d", total, tc.limit)
			}
			if wantCut := tc.name != "under the limit"; cut != wantCut {
				t.Errorf("truncate = %t, want %t", cut, wantCut)
			}
		})
	}
}
