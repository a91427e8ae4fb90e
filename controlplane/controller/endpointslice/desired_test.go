package endpointslice

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Fixtures. Pods are named p<N>, with IP 10.244.<N/250>.<N%250+1>.

func service(mods ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "svc-uid", Labels: map[string]string{"tier": "front"}},
		Spec: corev1.ServiceSpec{
			Selector:  map[string]string{"app": "web"},
			ClusterIP: "10.96.0.10",
			Ports:     []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	for _, m := range mods {
		m(s)
	}
	return s
}

func withPorts(ps ...corev1.ServicePort) func(*corev1.Service) {
	return func(s *corev1.Service) { s.Spec.Ports = ps }
}

func podIP(n int) string { return fmt.Sprintf("10.244.%d.%d", n/250, n%250+1) }

func pod(n int, mods ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p" + strconv.Itoa(n), Namespace: "ns", UID: types.UID("uid-" + strconv.Itoa(n)), Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "c", Image: "img",
			Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}}}},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: podIP(n), PodIPs: []corev1.PodIP{{IP: podIP(n)}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		},
	}
	for _, m := range mods {
		m(p)
	}
	return p
}

func notReady(p *corev1.Pod) { p.Status.Conditions[0].Status = corev1.ConditionFalse }

func terminating(p *corev1.Pod) {
	now := metav1.Now()
	p.DeletionTimestamp = &now
}

func webPort(port int32) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = port }
}

func pods(from, to int, mods ...func(*corev1.Pod)) []*corev1.Pod {
	var out []*corev1.Pod
	for n := from; n < to; n++ {
		out = append(out, pod(n, mods...))
	}
	return out
}

// fakeAPI applies plans the way the server would: generated names,
// resourceVersions, compare-and-swap updates, JSON round-trips.
type fakeAPI struct {
	t      *testing.T
	slices map[string]*discoveryv1.EndpointSlice
	names  int
	rv     int
}

func newFakeAPI(t *testing.T) *fakeAPI {
	return &fakeAPI{t: t, slices: map[string]*discoveryv1.EndpointSlice{}}
}

func (f *fakeAPI) roundTrip(s *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice {
	f.t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		f.t.Fatalf("marshal slice: %v", err)
	}
	out := &discoveryv1.EndpointSlice{}
	if err := json.Unmarshal(b, out); err != nil {
		f.t.Fatalf("unmarshal slice: %v", err)
	}
	f.rv++
	out.ResourceVersion = strconv.Itoa(f.rv)
	return out
}

func (f *fakeAPI) apply(p plan) {
	f.t.Helper()
	for _, c := range p.create {
		if c.Name != "" || c.GenerateName == "" {
			f.t.Fatalf("create of %q without generateName", c.Name)
		}
		f.names++
		c = f.roundTrip(c)
		c.Name = fmt.Sprintf("%s%03d", c.GenerateName, f.names)
		f.slices[c.Name] = c
	}
	for _, u := range p.update {
		old, ok := f.slices[u.Name]
		if !ok || old.ResourceVersion != u.ResourceVersion {
			f.t.Fatalf("update of %q at resourceVersion %q: stored %v", u.Name, u.ResourceVersion, old)
		}
		f.slices[u.Name] = f.roundTrip(u)
	}
	for _, d := range p.delete {
		if _, ok := f.slices[d.Name]; !ok {
			f.t.Fatalf("delete of missing slice %q", d.Name)
		}
		delete(f.slices, d.Name)
	}
}

func (f *fakeAPI) list() []*discoveryv1.EndpointSlice {
	return slices.Collect(maps.Values(f.slices))
}

func (f *fakeAPI) add(s *discoveryv1.EndpointSlice) { f.slices[s.Name] = f.roundTrip(s) }

// sliceView is a slice as a test reads it.
type sliceView struct {
	Name      string
	Ports     string
	Labels    string
	Endpoints []string // "pod address r/s/t node zone hostname" in slice order
}

func viewOf(s *discoveryv1.EndpointSlice) sliceView {
	v := sliceView{Name: s.Name, Ports: portKey(s.Ports)}
	var ls []string
	for _, k := range slices.Sorted(maps.Keys(s.Labels)) {
		ls = append(ls, k+"="+s.Labels[k])
	}
	v.Labels = strings.Join(ls, ",")
	for _, ep := range s.Endpoints {
		c := ep.Conditions
		v.Endpoints = append(v.Endpoints, fmt.Sprintf("%s %s %s %s %s %s", ep.TargetRef.Name, strings.Join(ep.Addresses, ","),
			flags(deref(c.Ready), deref(c.Serving), deref(c.Terminating)), deref(ep.NodeName), deref(ep.Zone), deref(ep.Hostname)))
	}
	return v
}

func flags(r, s, t bool) string {
	b := []byte("---")
	if r {
		b[0] = 'R'
	}
	if s {
		b[1] = 'S'
	}
	if t {
		b[2] = 'T'
	}
	return string(b)
}

func (f *fakeAPI) view() []sliceView {
	var out []sliceView
	for _, s := range sortedByName(f.list()) {
		out = append(out, viewOf(s))
	}
	return out
}

// ep renders an endpoint of a default pod as viewOf does.
func ep(n int, fl string) string { return fmt.Sprintf("p%d %s %s node-a  ", n, podIP(n), fl) }

func eps(from, to int, fl string) []string {
	var out []string
	for n := from; n < to; n++ {
		out = append(out, ep(n, fl))
	}
	return out
}

// byName sorts like the slice names do for the endpoints of new slices
// (reconcile places new endpoints in pod-key order: p10 before p2).
func byName(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return out
}

const (
	port8080  = "http/TCP/8080/"
	svcLabels = "endpointslice.kubernetes.io/managed-by=endpointslice-controller.weir.dev,kubernetes.io/service-name=web,tier=front"
)

type writes struct{ Create, Update, Delete int }

func TestReconcile(t *testing.T) {
	nodes := map[string]*corev1.Node{
		"node-a": {ObjectMeta: metav1.ObjectMeta{Name: "node-a"}},
		"node-z": {ObjectMeta: metav1.ObjectMeta{Name: "node-z", Labels: map[string]string{corev1.LabelTopologyZone: "zone-1"}}},
	}
	tests := []struct {
		name string
		svc  *corev1.Service
		// before is the pods of a first pass (with svc, or beforeSvc)
		// whose result is the existing slices; nil for none.
		before    []*corev1.Pod
		beforeSvc *corev1.Service
		// extra slices present before the pass (after before's).
		extra []*discoveryv1.EndpointSlice
		pods  []*corev1.Pod
		max   int
		want  writes
		// slices after the pass; nil to check only writes.
		slices []sliceView
	}{
		{
			name: "no pods: one placeholder",
			svc:  service(), want: writes{Create: 1},
			slices: []sliceView{{Name: "web-001", Labels: svcLabels}},
		},
		{
			name: "the placeholder stays",
			svc:  service(), before: []*corev1.Pod{}, want: writes{},
			slices: []sliceView{{Name: "web-001", Labels: svcLabels}},
		},
		{
			name: "ready pods in one slice, no placeholder",
			svc:  service(), pods: pods(0, 3), want: writes{Create: 1},
			slices: []sliceView{{Name: "web-001", Ports: port8080, Labels: svcLabels, Endpoints: eps(0, 3, "RS-")}},
		},
		{
			name: "the placeholder becomes the slice",
			svc:  service(), before: []*corev1.Pod{}, pods: pods(0, 2), want: writes{Update: 1},
			slices: []sliceView{{Name: "web-001", Ports: port8080, Labels: svcLabels, Endpoints: eps(0, 2, "RS-")}},
		},
		{
			name: "conditions; no IP, finished and IPv6-only pods left out",
			svc:  service(),
			pods: []*corev1.Pod{
				pod(0), pod(1, notReady), pod(2, terminating), pod(3, notReady, terminating),
				pod(4, func(p *corev1.Pod) { p.Status.PodIP, p.Status.PodIPs = "", nil }),
				pod(5, func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
				pod(6, func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }),
				pod(7, func(p *corev1.Pod) { p.Status.PodIP, p.Status.PodIPs = "fd00::7", []corev1.PodIP{{IP: "fd00::7"}} }),
				pod(8, func(p *corev1.Pod) { p.Status.Phase = corev1.PodPending; notReady(p) }),
				// Dual stack: the IPv4 address, wherever it is listed.
				pod(9, func(p *corev1.Pod) {
					p.Status.PodIP, p.Status.PodIPs = "fd00::9", []corev1.PodIP{{IP: "fd00::9"}, {IP: podIP(9)}}
				}),
			},
			want: writes{Create: 1},
			slices: []sliceView{{Name: "web-001", Ports: port8080, Labels: svcLabels, Endpoints: []string{
				ep(0, "RS-"), ep(1, "---"), ep(2, "-ST"), ep(3, "--T"), ep(8, "---"), ep(9, "RS-"),
			}}},
		},
		{
			name: "publishNotReadyAddresses: every endpoint ready, serving as the pod is",
			svc:  service(func(s *corev1.Service) { s.Spec.PublishNotReadyAddresses = true }),
			pods: []*corev1.Pod{pod(0), pod(1, notReady), pod(2, notReady, terminating)},
			want: writes{Create: 1},
			slices: []sliceView{{Name: "web-001", Ports: port8080, Labels: svcLabels, Endpoints: []string{
				ep(0, "RS-"), ep(1, "R--"), ep(2, "R-T"),
			}}},
		},
		{
			name: "node, zone and hostname",
			svc:  service(),
			pods: []*corev1.Pod{
				pod(0, func(p *corev1.Pod) { p.Spec.NodeName = "node-z" }),
				pod(1, func(p *corev1.Pod) { p.Spec.NodeName = "node-gone" }),
				pod(2, func(p *corev1.Pod) { p.Spec.Hostname, p.Spec.Subdomain = "db-2", "web" }),
				pod(3, func(p *corev1.Pod) { p.Spec.Hostname, p.Spec.Subdomain = "db-3", "other" }),
			},
			want: writes{Create: 1},
			slices: []sliceView{{Name: "web-001", Ports: port8080, Labels: svcLabels, Endpoints: []string{
				fmt.Sprintf("p0 %s RS- node-z zone-1 ", podIP(0)),
				fmt.Sprintf("p1 %s RS- node-gone  ", podIP(1)),
				fmt.Sprintf("p2 %s RS- node-a  db-2", podIP(2)),
				ep(3, "RS-"),
			}}},
		},
		{
			name: "named ports resolved per pod; a pod without the name leaves that port",
			svc: service(withPorts(
				corev1.ServicePort{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("web")},
				corev1.ServicePort{Name: "metrics", Port: 9100, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(9100)},
			)),
			pods: []*corev1.Pod{
				pod(0), pod(1, webPort(9090)), pod(2, webPort(9090)),
				pod(3, func(p *corev1.Pod) { p.Spec.Containers[0].Ports = nil }),
				// The name with another protocol does not count.
				pod(4, func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].Protocol = corev1.ProtocolUDP }),
				// A sidecar's port counts, a plain init container's does not.
				pod(5, func(p *corev1.Pod) {
					p.Spec.Containers[0].Ports = nil
					p.Spec.InitContainers = []corev1.Container{{Name: "side", RestartPolicy: new(corev1.ContainerRestartPolicyAlways),
						Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 7070}}}}
				}),
				pod(6, func(p *corev1.Pod) {
					p.Spec.Containers[0].Ports = nil
					p.Spec.InitContainers = []corev1.Container{{Name: "init", Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 7070}}}}
				}),
			},
			want: writes{Create: 4},
			slices: []sliceView{
				{Name: "web-001", Ports: "http/TCP/7070/,metrics/TCP/9100/", Labels: svcLabels, Endpoints: []string{ep(5, "RS-")}},
				{Name: "web-002", Ports: "http/TCP/8080/,metrics/TCP/9100/", Labels: svcLabels, Endpoints: []string{ep(0, "RS-")}},
				{Name: "web-003", Ports: "http/TCP/9090/,metrics/TCP/9100/", Labels: svcLabels, Endpoints: []string{ep(1, "RS-"), ep(2, "RS-")}},
				{Name: "web-004", Ports: "metrics/TCP/9100/", Labels: svcLabels, Endpoints: []string{ep(3, "RS-"), ep(4, "RS-"), ep(6, "RS-")}},
			},
		},
		{
			name: "TCP and UDP on one port number; unset targetPort is the port",
			svc: service(withPorts(
				corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(5353)},
				corev1.ServicePort{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP},
			)),
			pods: pods(0, 2), want: writes{Create: 1},
			slices: []sliceView{{Name: "web-001", Ports: "dns-tcp/TCP/53/,dns/UDP/5353/", Labels: svcLabels, Endpoints: eps(0, 2, "RS-")}},
		},
		{
			name: "headless",
			svc:  service(func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone }),
			pods: pods(0, 1), want: writes{Create: 1},
			slices: []sliceView{{Name: "web-001", Ports: port8080, Endpoints: eps(0, 1, "RS-"),
				Labels: "endpointslice.kubernetes.io/managed-by=endpointslice-controller.weir.dev,kubernetes.io/service-name=web,service.kubernetes.io/headless=,tier=front"}},
		},
		{
			name: "250 endpoints in slices of at most 100",
			svc:  service(), pods: pods(0, 250), want: writes{Create: 3},
			slices: []sliceView{
				{Name: "web-001", Ports: port8080, Labels: svcLabels, Endpoints: byName(eps(0, 250, "RS-"))[0:100]},
				{Name: "web-002", Ports: port8080, Labels: svcLabels, Endpoints: byName(eps(0, 250, "RS-"))[100:200]},
				{Name: "web-003", Ports: port8080, Labels: svcLabels, Endpoints: byName(eps(0, 250, "RS-"))[200:250]},
			},
		},
		{
			name: "a smaller bound",
			svc:  service(), pods: pods(0, 5), max: 2, want: writes{Create: 3},
		},
		{
			name: "nothing changed: nothing written",
			svc:  service(), before: pods(0, 250), pods: pods(0, 250), want: writes{},
		},
		{
			name: "one pod turns not ready: one slice rewritten",
			svc:  service(), before: pods(0, 250),
			pods: append(append(pods(0, 137), pod(137, notReady)), pods(138, 250)...),
			want: writes{Update: 1},
		},
		{
			name: "one pod gone: one slice rewritten",
			svc:  service(), before: pods(0, 250), pods: append(pods(0, 137), pods(138, 250)...),
			want: writes{Update: 1},
		},
		{
			name: "a new pod fills the slice with room",
			svc:  service(), before: pods(0, 250), pods: pods(0, 251),
			want: writes{Update: 1},
		},
		{
			name: "new pods that fit nowhere get new slices",
			svc:  service(), before: pods(0, 200), pods: pods(0, 320),
			want: writes{Create: 2},
		},
		{
			name: "a slice being rewritten takes new pods first",
			svc:  service(), before: pods(0, 250),
			pods: append(append(pods(0, 137), pod(137, notReady)), pods(138, 280)...),
			// p137's slice is full; the 30 new go to the half-full one.
			want: writes{Update: 2},
		},
		{
			name: "a slice emptied and a slice's worth of new pods: reused in place",
			svc:  service(), before: pods(0, 100), pods: pods(100, 200),
			want:   writes{Update: 1},
			slices: []sliceView{{Name: "web-001", Ports: port8080, Labels: svcLabels, Endpoints: byName(eps(100, 200, "RS-"))}},
		},
		{
			name: "target port changed: slices rewritten in place",
			svc: service(withPorts(corev1.ServicePort{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP,
				TargetPort: intstr.FromInt32(8081)})),
			before: pods(0, 150), pods: pods(0, 150),
			want: writes{Update: 2},
		},
		{
			name:   "service labels changed: every slice relabelled",
			svc:    service(func(s *corev1.Service) { s.Labels = map[string]string{"tier": "back"} }),
			before: pods(0, 150), pods: pods(0, 150),
			want: writes{Update: 2},
		},
		{
			name:      "slices of an earlier service of the same name go, never reused",
			svc:       service(func(s *corev1.Service) { s.UID = "new-uid" }),
			beforeSvc: service(), before: pods(0, 3), pods: pods(0, 3),
			want: writes{Create: 1, Delete: 1},
		},
		{
			name: "the last pod gone: its slice becomes the placeholder",
			svc:  service(), before: pods(0, 3), pods: nil,
			want:   writes{Update: 1},
			slices: []sliceView{{Name: "web-001", Labels: svcLabels}},
		},
		{
			name:   "a pod listed in two slices stays in one",
			svc:    service(),
			before: pods(0, 2),
			extra: []*discoveryv1.EndpointSlice{func() *discoveryv1.EndpointSlice {
				g := desiredGroups(service(), pods(1, 3), nodes)[port8080]
				meta := sliceMeta{labels: sliceLabels(service()), owner: ownerRef(service())}
				s := meta.newSlice(service(), g.ports)
				s.Name = "web-dup"
				s.Endpoints = []discoveryv1.Endpoint{g.endpoints["ns/p1"], g.endpoints["ns/p2"]}
				return s
			}()},
			pods: pods(0, 3),
			want: writes{Update: 1},
			slices: []sliceView{
				{Name: "web-001", Ports: port8080, Labels: svcLabels, Endpoints: eps(0, 2, "RS-")},
				{Name: "web-dup", Ports: port8080, Labels: svcLabels, Endpoints: eps(2, 3, "RS-")},
			},
		},
		{
			name: "slices another manager owns are never touched",
			svc:  service(),
			extra: []*discoveryv1.EndpointSlice{{
				ObjectMeta:  metav1.ObjectMeta{Name: "by-hand", Namespace: "ns", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
				AddressType: discoveryv1.AddressTypeIPv4,
				Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"192.0.2.1"}}},
			}},
			pods: pods(0, 1), want: writes{Create: 1},
		},
	}
	if len(tests) == 0 {
		t.Fatal("empty table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			maxPer := cmpOr(tc.max, MaxEndpointsPerSlice)
			api := newFakeAPI(t)
			if tc.before != nil {
				bs := tc.beforeSvc
				if bs == nil {
					bs = service()
				}
				api.apply(reconcile(bs, tc.before, nodes, nil, maxPer))
			}
			for _, s := range tc.extra {
				api.add(s)
			}
			p := reconcile(tc.svc, tc.pods, nodes, api.list(), maxPer)
			got := writes{Create: len(p.create), Update: len(p.update), Delete: len(p.delete)}
			if got != tc.want {
				t.Errorf("writes = %+v, want %+v", got, tc.want)
			}
			api.apply(p)
			if tc.slices != nil {
				if diff := cmp.Diff(tc.slices, api.view()); diff != "" {
					t.Errorf("slices (-want +got):\n%s", diff)
				}
			}
			checkSlices(t, tc.svc, tc.pods, nodes, api.list(), maxPer)
			// Level-triggered: a second pass over its own result writes
			// nothing.
			if again := reconcile(tc.svc, tc.pods, nodes, api.list(), maxPer); again.writes() != 0 {
				t.Errorf("second pass writes %d/%d/%d, want none", len(again.create), len(again.update), len(again.delete))
			}
		})
	}
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// checkSlices checks the invariants of a Service's managed slices: every
// desired endpoint exactly once, in a slice with its ports, none over the
// bound, every slice labelled and owned.
func checkSlices(t *testing.T, svc *corev1.Service, pods []*corev1.Pod, nodes map[string]*corev1.Node, got []*discoveryv1.EndpointSlice, maxPer int) {
	t.Helper()
	meta := sliceMeta{labels: sliceLabels(svc), owner: ownerRef(svc)}
	want := map[string]string{} // pod key → port key
	for k, g := range desiredGroups(svc, pods, nodes) {
		for pk := range g.endpoints {
			want[pk] = k
		}
	}
	seen := map[string]string{}
	managed := 0
	for _, s := range got {
		if s.Labels[discoveryv1.LabelManagedBy] != ControllerName {
			continue
		}
		managed++
		if !meta.matches(s) {
			t.Errorf("slice %s: labels %v owners %v, want %v %v", s.Name, s.Labels, s.OwnerReferences, meta.labels, meta.owner)
		}
		if len(s.Endpoints) > maxPer {
			t.Errorf("slice %s holds %d endpoints, more than %d", s.Name, len(s.Endpoints), maxPer)
		}
		for i := range s.Endpoints {
			k := endpointKey(&s.Endpoints[i])
			if _, dup := seen[k]; dup {
				t.Errorf("endpoint %s in two slices", k)
			}
			seen[k] = portKey(s.Ports)
		}
	}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("endpoints by ports (-want +got):\n%s", diff)
	}
	if managed == 0 {
		t.Errorf("no managed slice; want at least the placeholder")
	}
}

func TestManagesSlices(t *testing.T) {
	tests := []struct {
		name string
		svc  *corev1.Service
		want bool
	}{
		{"selector", service(), true},
		{"no selector", service(func(s *corev1.Service) { s.Spec.Selector = nil }), false},
		{"empty selector", service(func(s *corev1.Service) { s.Spec.Selector = map[string]string{} }), false},
		{"external name", service(func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeExternalName }), false},
	}
	if len(tests) == 0 {
		t.Fatal("empty table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := managesSlices(tc.svc); got != tc.want {
				t.Errorf("managesSlices = %t, want %t", got, tc.want)
			}
			if got := selects(tc.svc, map[string]string{"app": "web", "x": "y"}); got != tc.want {
				t.Errorf("selects a matching pod = %t, want %t", got, tc.want)
			}
			if selects(tc.svc, map[string]string{"app": "db"}) {
				t.Errorf("selects a pod of another app")
			}
		})
	}
}

func TestEndpointEqual(t *testing.T) {
	// endpointEqual lists the fields it compares: a field added to the
	// type must be added there too.
	if n := reflect.TypeFor[discoveryv1.Endpoint]().NumField(); n != 8 {
		t.Errorf("discoveryv1.Endpoint has %d fields; endpointEqual knows 8", n)
	}
	if n := reflect.TypeFor[discoveryv1.EndpointConditions]().NumField(); n != 3 {
		t.Errorf("discoveryv1.EndpointConditions has %d fields; endpointEqual knows 3", n)
	}
	base := func() discoveryv1.Endpoint {
		e := podEndpoint(service(), pod(1, func(p *corev1.Pod) { p.Spec.Hostname, p.Spec.Subdomain = "h", "web" }), podIP(1),
			&corev1.Node{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{corev1.LabelTopologyZone: "z"}}})
		return e
	}
	tests := []struct {
		name   string
		change func(*discoveryv1.Endpoint)
	}{
		{"addresses", func(e *discoveryv1.Endpoint) { e.Addresses = []string{"10.0.0.9"} }},
		{"ready", func(e *discoveryv1.Endpoint) { e.Conditions.Ready = new(false) }},
		{"serving unset", func(e *discoveryv1.Endpoint) { e.Conditions.Serving = nil }},
		{"terminating", func(e *discoveryv1.Endpoint) { e.Conditions.Terminating = new(true) }},
		{"hostname", func(e *discoveryv1.Endpoint) { e.Hostname = new("other") }},
		{"target", func(e *discoveryv1.Endpoint) { e.TargetRef.UID = "other" }},
		{"no target", func(e *discoveryv1.Endpoint) { e.TargetRef = nil }},
		{"topology", func(e *discoveryv1.Endpoint) { e.DeprecatedTopology = map[string]string{"a": "b"} }},
		{"node", func(e *discoveryv1.Endpoint) { e.NodeName = new("node-b") }},
		{"zone", func(e *discoveryv1.Endpoint) { e.Zone = nil }},
		{"hints", func(e *discoveryv1.Endpoint) {
			e.Hints = &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: "z"}}}
		}},
		{"nothing", func(*discoveryv1.Endpoint) {}},
	}
	if len(tests) == 0 {
		t.Fatal("empty table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := base(), base()
			tc.change(&b)
			want := apiequality.Semantic.DeepEqual(a, b)
			if want != (tc.name == "nothing") {
				t.Fatalf("Semantic.DeepEqual = %t; the table is wrong", want)
			}
			if got := endpointEqual(&a, &b); got != want {
				t.Errorf("endpointEqual = %t, Semantic.DeepEqual = %t", got, want)
			}
			if got := endpointEqual(&b, &a); got != want {
				t.Errorf("endpointEqual reversed = %t, Semantic.DeepEqual = %t", got, want)
			}
		})
	}
}

// BenchmarkReconcile is the pass over a Service of 1,000 pods after one
// pod's readiness changed: the controller's own share of a flip.
func BenchmarkReconcile(b *testing.B) {
	svc := service()
	nodes := map[string]*corev1.Node{"node-a": {ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}}
	api := newFakeAPI(&testing.T{})
	ps := pods(0, 1000)
	api.apply(reconcile(svc, ps, nodes, nil, MaxEndpointsPerSlice))
	existing := api.list()
	flipped := append(append(pods(0, 500), pod(500, notReady)), pods(501, 1000)...)
	b.ReportAllocs()
	for b.Loop() {
		if p := reconcile(svc, flipped, nodes, existing, MaxEndpointsPerSlice); p.writes() != 1 {
			b.Fatalf("%d writes, want 1", p.writes())
		}
	}
}
