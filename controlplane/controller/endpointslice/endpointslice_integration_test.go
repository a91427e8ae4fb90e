package endpointslice_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"weir.dev/weir/controlplane/controller/endpointslice"
	"weir.dev/weir/controlplane/server"
	"weir.dev/weir/test/cluster"
)

// wait is the deadline of every wait on the controller: a change takes
// milliseconds.
const wait = 30 * time.Second

// start runs a weir server whose leader runs the default loops and the
// EndpointSlice controller, registering its metrics with reg.
func start(t *testing.T) (kubernetes.Interface, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	loop := server.Loop{Name: "endpointslice", Run: func(ctx context.Context, c kubernetes.Interface, rc *rest.Config, log *slog.Logger, _ prometheus.Registerer) error {
		return endpointslice.New(c, rc, log, reg).Run(ctx)
	}}
	// The test writes pod status itself, so the scheduler stays out.
	s := cluster.Start(t, cluster.WithLoops(append(cluster.LoopsWithout("endpointslice", "scheduler"), loop)))
	return s.Client(t), reg
}

func namespace(t *testing.T, c kubernetes.Interface, name string) string {
	t.Helper()
	if _, err := c.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	return name
}

type svcOpt func(*corev1.Service)

func createService(t *testing.T, c kubernetes.Interface, ns, name string, selector map[string]string, opts ...svcOpt) *corev1.Service {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: selector,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
	for _, o := range opts {
		o(svc)
	}
	got, err := c.CoreV1().Services(ns).Create(t.Context(), svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create service %s/%s: %v", ns, name, err)
	}
	return got
}

type podOpt func(*corev1.Pod)

func onNode(n string) podOpt { return func(p *corev1.Pod) { p.Spec.NodeName = n } }

func ports(ps ...corev1.ContainerPort) podOpt {
	return func(p *corev1.Pod) { p.Spec.Containers[0].Ports = ps }
}

// createPod creates a pod bound to node-1 (unless told otherwise), as
// the scheduler would have left it.
func createPod(t testing.TB, c kubernetes.Interface, ns, name string, labels map[string]string, opts ...podOpt) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "app", Image: "weir.local/echo",
			Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 8080}}}}},
	}
	for _, o := range opts {
		o(p)
	}
	got, err := c.CoreV1().Pods(ns).Create(context.Background(), p, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", ns, name, err)
	}
	return got
}

// setStatus writes what a node agent would: running, its IP, Ready.
func setStatus(t testing.TB, c kubernetes.Interface, ns, name, ip string, ready bool) *corev1.Pod {
	t.Helper()
	var out *corev1.Pod
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := c.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		out, err = c.CoreV1().Pods(ns).UpdateStatus(context.Background(), withStatus(p, ip, ready), metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("update status of pod %s/%s: %v", ns, name, err)
	}
	return out
}

func withStatus(p *corev1.Pod, ip string, ready bool) *corev1.Pod {
	p = p.DeepCopy()
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.PodIP, p.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st, LastTransitionTime: metav1.Now()}}
	return p
}

func runningPod(t *testing.T, c kubernetes.Interface, ns, name, ip string, ready bool, labels map[string]string, opts ...podOpt) {
	t.Helper()
	createPod(t, c, ns, name, labels, opts...)
	setStatus(t, c, ns, name, ip, ready)
}

func listSlices(ctx context.Context, c kubernetes.Interface, ns, svc string) ([]discoveryv1.EndpointSlice, error) {
	l, err := c.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// endpointsView renders every endpoint of a Service's managed slices as
// pod → "RST" flags (ready, serving, terminating; "-" where false).
func endpointsView(ss []discoveryv1.EndpointSlice) map[string]string {
	out := map[string]string{}
	for _, s := range ss {
		if s.Labels[discoveryv1.LabelManagedBy] != endpointslice.ControllerName {
			continue
		}
		for _, ep := range s.Endpoints {
			out[ep.TargetRef.Name] = flags(ep.Conditions)
		}
	}
	return out
}

func flags(c discoveryv1.EndpointConditions) string {
	f := func(b *bool, ch string) string {
		if b != nil && *b {
			return ch
		}
		return "-"
	}
	return f(c.Ready, "R") + f(c.Serving, "S") + f(c.Terminating, "T")
}

// waitEndpoints waits until the Service's slices hold exactly want.
func waitEndpoints(t *testing.T, c kubernetes.Interface, ns, svc string, want map[string]string) []discoveryv1.EndpointSlice {
	t.Helper()
	var last []discoveryv1.EndpointSlice
	cluster.Eventually(t, wait, fmt.Sprintf("endpoints of %s/%s are %v", ns, svc, want), func() (bool, error) {
		ss, err := listSlices(t.Context(), c, ns, svc)
		if err != nil {
			return false, err
		}
		last = ss
		if got := endpointsView(ss); !maps.Equal(got, want) {
			return false, fmt.Errorf("endpoints %v", got)
		}
		return true, nil
	})
	return last
}

// legacyView renders an Endpoints object as pod → "ready"/"notready".
func legacyView(ep *corev1.Endpoints) map[string]string {
	out := map[string]string{}
	for _, s := range ep.Subsets {
		for _, a := range s.Addresses {
			out[a.TargetRef.Name] = "ready"
		}
		for _, a := range s.NotReadyAddresses {
			out[a.TargetRef.Name] = "notready"
		}
	}
	return out
}

func waitLegacy(t *testing.T, c kubernetes.Interface, ns, svc string, want map[string]string) *corev1.Endpoints {
	t.Helper()
	var last *corev1.Endpoints
	cluster.Eventually(t, wait, fmt.Sprintf("Endpoints %s/%s are %v", ns, svc, want), func() (bool, error) {
		ep, err := c.CoreV1().Endpoints(ns).Get(t.Context(), svc, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = ep
		if got := legacyView(ep); !maps.Equal(got, want) {
			return false, fmt.Errorf("endpoints %v", got)
		}
		return true, nil
	})
	return last
}

var web = map[string]string{"app": "web"}

// TestReadiness is acceptance 1: ready pods appear as ready endpoints, a
// pod turning not-Ready flips ready in one write, a deleted pod is
// terminating (serving while Ready) until it is gone.
func TestReadiness(t *testing.T) {
	c, reg := start(t)
	ns := namespace(t, c, "readiness")
	if _, err := c.CoreV1().Nodes().Create(t.Context(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name: "node-z", Labels: map[string]string{corev1.LabelTopologyZone: "zone-1"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create node: %v", err)
	}
	createService(t, c, ns, "web", web)
	runningPod(t, c, ns, "p0", "10.244.1.10", true, web)
	runningPod(t, c, ns, "p1", "10.244.1.11", true, web)
	runningPod(t, c, ns, "p2", "10.244.1.12", true, web, onNode("node-z"))
	runningPod(t, c, ns, "other", "10.244.1.13", true, map[string]string{"app": "db"})
	// Not an endpoint until it has an address.
	createPod(t, c, ns, "starting", web)

	ss := waitEndpoints(t, c, ns, "web", map[string]string{"p0": "RS-", "p1": "RS-", "p2": "RS-"})
	waitLegacy(t, c, ns, "web", map[string]string{"p0": "ready", "p1": "ready", "p2": "ready"})
	if len(ss) != 1 {
		t.Fatalf("%d slices, want 1", len(ss))
	}
	s := ss[0]
	wantLabels := map[string]string{discoveryv1.LabelServiceName: "web", discoveryv1.LabelManagedBy: endpointslice.ControllerName}
	if !maps.Equal(s.Labels, wantLabels) || len(s.OwnerReferences) != 1 || s.OwnerReferences[0].Name != "web" ||
		s.OwnerReferences[0].Kind != "Service" || s.AddressType != discoveryv1.AddressTypeIPv4 {
		t.Errorf("slice labels %v owners %v addressType %s", s.Labels, s.OwnerReferences, s.AddressType)
	}
	if len(s.Ports) != 1 || *s.Ports[0].Name != "http" || *s.Ports[0].Port != 8080 || *s.Ports[0].Protocol != corev1.ProtocolTCP {
		t.Errorf("slice ports %v, want http 8080/TCP", s.Ports)
	}
	for _, ep := range s.Endpoints {
		wantNode, wantZone := "node-1", ""
		if ep.TargetRef.Name == "p2" {
			wantNode, wantZone = "node-z", "zone-1"
		}
		if ep.NodeName == nil || *ep.NodeName != wantNode || (ep.Zone == nil) != (wantZone == "") || (ep.Zone != nil && *ep.Zone != wantZone) ||
			ep.TargetRef.Kind != "Pod" || ep.TargetRef.Namespace != ns || ep.TargetRef.UID == "" || len(ep.Addresses) != 1 {
			t.Errorf("endpoint %+v: want node %s zone %q and a full pod reference", ep, wantNode, wantZone)
		}
	}

	t.Run("zone follows the node", func(t *testing.T) {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			n, err := c.CoreV1().Nodes().Get(t.Context(), "node-z", metav1.GetOptions{})
			if err != nil {
				return err
			}
			n.Labels[corev1.LabelTopologyZone] = "zone-2"
			_, err = c.CoreV1().Nodes().Update(t.Context(), n, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatalf("relabel node: %v", err)
		}
		cluster.Eventually(t, wait, "p2 in zone-2", func() (bool, error) {
			ss, err := listSlices(t.Context(), c, ns, "web")
			if err != nil {
				return false, err
			}
			for _, s := range ss {
				for _, ep := range s.Endpoints {
					if ep.TargetRef.Name == "p2" && ep.Zone != nil && *ep.Zone == "zone-2" {
						return true, nil
					}
				}
			}
			return false, nil
		})
		ss, err := listSlices(t.Context(), c, ns, "web")
		if err != nil || len(ss) != 1 {
			t.Fatalf("slices %v, %v; want one", sliceNames(ss), err)
		}
		s = ss[0]
	})

	t.Run("not ready in one write", func(t *testing.T) {
		// Watch the slice from its current version: the first change
		// written after p1 turns not-Ready must already say so.
		w, err := c.DiscoveryV1().EndpointSlices(ns).Watch(t.Context(), metav1.ListOptions{
			LabelSelector: discoveryv1.LabelServiceName + "=web", ResourceVersion: s.ResourceVersion})
		if err != nil {
			t.Fatalf("watch slices: %v", err)
		}
		defer w.Stop()
		start := time.Now()
		setStatus(t, c, ns, "p1", "10.244.1.11", false)
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatal("watch closed")
			}
			got, isSlice := ev.Object.(*discoveryv1.EndpointSlice)
			if ev.Type != watch.Modified || !isSlice || got.Name != s.Name {
				t.Fatalf("first event %s %T, want the slice modified", ev.Type, ev.Object)
			}
			want := map[string]string{"p0": "RS-", "p1": "---", "p2": "RS-"}
			if diff := cmp.Diff(want, endpointsView([]discoveryv1.EndpointSlice{*got})); diff != "" {
				t.Errorf("slice after one write (-want +got):\n%s", diff)
			}
			if got.Annotations[corev1.EndpointsLastChangeTriggerTime] == "" {
				t.Errorf("slice written without %s", corev1.EndpointsLastChangeTriggerTime)
			}
			t.Logf("not-Ready written and watched back in %s", time.Since(start))
		case <-time.After(wait):
			t.Fatalf("no slice change within %s", wait)
		}
		waitLegacy(t, c, ns, "web", map[string]string{"p0": "ready", "p1": "notready", "p2": "ready"})
		// Observed once the write is answered, which may come after
		// the watch event.
		cluster.Eventually(t, wait, "the flip measured", func() (bool, error) {
			n := histogramCount(t, reg, "weir_endpointslice_ready_to_write_seconds")
			return n == 1, fmt.Errorf("ready-to-write histogram has %d samples, want 1", n)
		})
		setStatus(t, c, ns, "p1", "10.244.1.11", true)
		waitEndpoints(t, c, ns, "web", map[string]string{"p0": "RS-", "p1": "RS-", "p2": "RS-"})
	})

	t.Run("deleted pod terminating until gone", func(t *testing.T) {
		// p2 is bound: the server keeps it, terminating, until its node
		// lets go.
		if err := c.CoreV1().Pods(ns).Delete(t.Context(), "p2", metav1.DeleteOptions{}); err != nil {
			t.Fatalf("delete p2: %v", err)
		}
		waitEndpoints(t, c, ns, "web", map[string]string{"p0": "RS-", "p1": "RS-", "p2": "-ST"})
		// Kubernetes' Endpoints drop terminating pods.
		waitLegacy(t, c, ns, "web", map[string]string{"p0": "ready", "p1": "ready"})
		// Its readiness probe fails while it drains.
		setStatus(t, c, ns, "p2", "10.244.1.12", false)
		waitEndpoints(t, c, ns, "web", map[string]string{"p0": "RS-", "p1": "RS-", "p2": "--T"})
		zero := int64(0)
		if err := c.CoreV1().Pods(ns).Delete(t.Context(), "p2", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			t.Fatalf("final delete of p2: %v", err)
		}
		waitEndpoints(t, c, ns, "web", map[string]string{"p0": "RS-", "p1": "RS-"})
	})

	t.Run("a new pod joins, the last pod leaves a placeholder", func(t *testing.T) {
		setStatus(t, c, ns, "starting", "10.244.1.14", true)
		waitEndpoints(t, c, ns, "web", map[string]string{"p0": "RS-", "p1": "RS-", "starting": "RS-"})
		for _, p := range []string{"p0", "p1", "starting"} {
			zero := int64(0)
			if err := c.CoreV1().Pods(ns).Delete(t.Context(), p, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
				t.Fatalf("delete %s: %v", p, err)
			}
		}
		ss := waitEndpoints(t, c, ns, "web", map[string]string{})
		if len(ss) != 1 || len(ss[0].Endpoints) != 0 || ss[0].Name != s.Name {
			t.Errorf("slices %v, want the one slice %s kept empty", sliceNames(ss), s.Name)
		}
		waitLegacy(t, c, ns, "web", map[string]string{})
	})
}

func sliceNames(ss []discoveryv1.EndpointSlice) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name)
	}
	return out
}

// slicePorts renders each managed slice as "ports: pods", sorted.
func slicePorts(ss []discoveryv1.EndpointSlice) []string {
	var out []string
	for _, s := range ss {
		if s.Labels[discoveryv1.LabelManagedBy] != endpointslice.ControllerName {
			continue
		}
		var ps, pods []string
		for _, p := range s.Ports {
			ps = append(ps, fmt.Sprintf("%s/%s/%d", *p.Name, *p.Protocol, *p.Port))
		}
		for _, ep := range s.Endpoints {
			pods = append(pods, ep.TargetRef.Name)
		}
		slices.Sort(ps)
		slices.Sort(pods)
		out = append(out, strings.Join(ps, ",")+": "+strings.Join(pods, ","))
	}
	slices.Sort(out)
	return out
}

func waitSlicePorts(t *testing.T, c kubernetes.Interface, ns, svc string, want []string) {
	t.Helper()
	cluster.Eventually(t, wait, fmt.Sprintf("slices of %s/%s are %v", ns, svc, want), func() (bool, error) {
		ss, err := listSlices(t.Context(), c, ns, svc)
		if err != nil {
			return false, err
		}
		if got := slicePorts(ss); !slices.Equal(got, want) {
			return false, fmt.Errorf("slices %v", got)
		}
		return true, nil
	})
}

// TestServiceShapes is acceptance 2.
func TestServiceShapes(t *testing.T) {
	c, _ := start(t)
	tests := []struct {
		name string
		run  func(t *testing.T, ns string)
	}{
		{"publishNotReadyAddresses", func(t *testing.T, ns string) {
			createService(t, c, ns, "web", web, func(s *corev1.Service) { s.Spec.PublishNotReadyAddresses = true })
			runningPod(t, c, ns, "up", "10.244.2.1", true, web)
			runningPod(t, c, ns, "down", "10.244.2.2", false, web)
			waitEndpoints(t, c, ns, "web", map[string]string{"up": "RS-", "down": "R--"})
			waitLegacy(t, c, ns, "web", map[string]string{"up": "ready", "down": "ready"})
		}},
		{"named ports resolved per pod", func(t *testing.T, ns string) {
			createService(t, c, ns, "web", web, func(s *corev1.Service) {
				s.Spec.Ports = []corev1.ServicePort{
					{Name: "http", Port: 80, TargetPort: intstr.FromString("web")},
					{Name: "metrics", Port: 9100, TargetPort: intstr.FromInt32(9100)},
				}
			})
			runningPod(t, c, ns, "a", "10.244.3.1", true, web)
			runningPod(t, c, ns, "b", "10.244.3.2", true, web, ports(corev1.ContainerPort{Name: "web", ContainerPort: 9090}))
			runningPod(t, c, ns, "c", "10.244.3.3", true, web, ports(corev1.ContainerPort{Name: "other", ContainerPort: 7070}))
			waitSlicePorts(t, c, ns, "web", []string{
				"http/TCP/8080,metrics/TCP/9100: a",
				"http/TCP/9090,metrics/TCP/9100: b",
				"metrics/TCP/9100: c",
			})
			ep := waitLegacy(t, c, ns, "web", map[string]string{"a": "ready", "b": "ready", "c": "ready"})
			if len(ep.Subsets) != 3 {
				t.Errorf("Endpoints has %d subsets, want one per port set (3)", len(ep.Subsets))
			}
		}},
		{"TCP and UDP ports", func(t *testing.T, ns string) {
			createService(t, c, ns, "dns", web, func(s *corev1.Service) {
				s.Spec.Ports = []corev1.ServicePort{
					{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(5353)},
					{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(5353)},
				}
			})
			runningPod(t, c, ns, "a", "10.244.4.1", true, web)
			waitSlicePorts(t, c, ns, "dns", []string{"dns-tcp/TCP/5353,dns/UDP/5353: a"})
		}},
		{"selector change", func(t *testing.T, ns string) {
			createService(t, c, ns, "web", map[string]string{"app": "a"})
			runningPod(t, c, ns, "a0", "10.244.5.1", true, map[string]string{"app": "a"})
			runningPod(t, c, ns, "a1", "10.244.5.2", false, map[string]string{"app": "a"})
			runningPod(t, c, ns, "b0", "10.244.5.3", true, map[string]string{"app": "b"})
			waitEndpoints(t, c, ns, "web", map[string]string{"a0": "RS-", "a1": "---"})
			err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				svc, err := c.CoreV1().Services(ns).Get(t.Context(), "web", metav1.GetOptions{})
				if err != nil {
					return err
				}
				svc.Spec.Selector = map[string]string{"app": "b"}
				_, err = c.CoreV1().Services(ns).Update(t.Context(), svc, metav1.UpdateOptions{})
				return err
			})
			if err != nil {
				t.Fatalf("change selector: %v", err)
			}
			waitEndpoints(t, c, ns, "web", map[string]string{"b0": "RS-"})
			waitLegacy(t, c, ns, "web", map[string]string{"b0": "ready"})
			// A pod relabelled into the selector joins.
			err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
				p, err := c.CoreV1().Pods(ns).Get(t.Context(), "a0", metav1.GetOptions{})
				if err != nil {
					return err
				}
				p.Labels = map[string]string{"app": "b"}
				_, err = c.CoreV1().Pods(ns).Update(t.Context(), p, metav1.UpdateOptions{})
				return err
			})
			if err != nil {
				t.Fatalf("relabel pod: %v", err)
			}
			waitEndpoints(t, c, ns, "web", map[string]string{"a0": "RS-", "b0": "RS-"})
		}},
		{"service deleted", func(t *testing.T, ns string) {
			createService(t, c, ns, "web", web)
			runningPod(t, c, ns, "a", "10.244.6.1", true, web)
			waitEndpoints(t, c, ns, "web", map[string]string{"a": "RS-"})
			waitLegacy(t, c, ns, "web", map[string]string{"a": "ready"})
			if err := c.CoreV1().Services(ns).Delete(t.Context(), "web", metav1.DeleteOptions{}); err != nil {
				t.Fatalf("delete service: %v", err)
			}
			cluster.Eventually(t, wait, "slices and Endpoints gone", func() (bool, error) {
				ss, err := listSlices(t.Context(), c, ns, "web")
				if err != nil {
					return false, err
				}
				_, err = c.CoreV1().Endpoints(ns).Get(t.Context(), "web", metav1.GetOptions{})
				if err != nil && !apierrors.IsNotFound(err) {
					return false, err
				}
				return len(ss) == 0 && apierrors.IsNotFound(err), fmt.Errorf("slices %v, endpoints get: %v", sliceNames(ss), err)
			})
		}},
		{"service without a selector", func(t *testing.T, ns string) {
			createService(t, c, ns, "manual", nil)
			hand, err := c.DiscoveryV1().EndpointSlices(ns).Create(t.Context(), &discoveryv1.EndpointSlice{
				ObjectMeta:  metav1.ObjectMeta{Name: "manual-1", Labels: map[string]string{discoveryv1.LabelServiceName: "manual"}},
				AddressType: discoveryv1.AddressTypeIPv4,
				Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"192.0.2.10"}}},
				Ports:       []discoveryv1.EndpointPort{{Name: new("http"), Port: new(int32(8080))}},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("create hand-written slice: %v", err)
			}
			handEP, err := c.CoreV1().Endpoints(ns).Create(t.Context(), &corev1.Endpoints{
				ObjectMeta: metav1.ObjectMeta{Name: "manual"},
				Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "192.0.2.10"}},
					Ports: []corev1.EndpointPort{{Name: "http", Port: 8080}}}},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("create hand-written Endpoints: %v", err)
			}
			runningPod(t, c, ns, "a", "10.244.7.1", true, web)
			// A Service queued after the selector-less one: once its
			// slice is written, the selector-less one has been seen.
			createService(t, c, ns, "after", web)
			waitEndpoints(t, c, ns, "after", map[string]string{"a": "RS-"})
			// unchanged checks the hand-written slice is as written and,
			// with managed false, that no other slice exists.
			unchanged := func(when string, managed bool) {
				t.Helper()
				ss, err := listSlices(t.Context(), c, ns, "manual")
				if err != nil {
					t.Fatalf("list slices: %v", err)
				}
				i := slices.IndexFunc(ss, func(s discoveryv1.EndpointSlice) bool { return s.Name == hand.Name })
				if i < 0 || ss[i].ResourceVersion != hand.ResourceVersion || (!managed && len(ss) != 1) {
					t.Errorf("%s: slices of the service %v; want %s untouched at version %s (and no other: %t)",
						when, sliceNames(ss), hand.Name, hand.ResourceVersion, !managed)
				}
			}
			unchanged("before a selector", false)
			ep, err := c.CoreV1().Endpoints(ns).Get(t.Context(), "manual", metav1.GetOptions{})
			if err != nil || ep.ResourceVersion != handEP.ResourceVersion {
				t.Errorf("hand-written Endpoints = %v, %v; want it untouched at version %s", ep, err, handEP.ResourceVersion)
			}
			// Given a selector, it gets managed slices beside the hand
			// one; losing it again, only the managed ones go.
			setSelector := func(sel map[string]string) {
				t.Helper()
				err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
					svc, err := c.CoreV1().Services(ns).Get(t.Context(), "manual", metav1.GetOptions{})
					if err != nil {
						return err
					}
					svc.Spec.Selector = sel
					_, err = c.CoreV1().Services(ns).Update(t.Context(), svc, metav1.UpdateOptions{})
					return err
				})
				if err != nil {
					t.Fatalf("set selector %v: %v", sel, err)
				}
			}
			setSelector(web)
			waitEndpoints(t, c, ns, "manual", map[string]string{"a": "RS-"})
			unchanged("with a selector", true)
			setSelector(nil)
			waitEndpoints(t, c, ns, "manual", map[string]string{})
			cluster.Eventually(t, wait, "managed slices of the selector-less service gone", func() (bool, error) {
				ss, err := listSlices(t.Context(), c, ns, "manual")
				return err == nil && len(ss) == 1, fmt.Errorf("slices %v (%v)", sliceNames(ss), err)
			})
			unchanged("selector removed", false)
		}},
	}
	if len(tests) == 0 {
		t.Fatal("empty table")
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, namespace(t, c, fmt.Sprintf("shape-%d", i)))
		})
	}
}

// createReadyPods creates n ready pods p0..p(n-1) of app=web, bound and
// with addresses, from a few writers at once.
func createReadyPods(t testing.TB, c kubernetes.Interface, ns string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				name := fmt.Sprintf("p%d", i)
				createPod(t, c, ns, name, web)
				setStatus(t, c, ns, name, podIP(i), true)
			}
		})
	}
	wg.Wait()
}

func podIP(i int) string { return fmt.Sprintf("10.244.%d.%d", 10+i/250, i%250+1) }

// TestThousandEndpoints is acceptance 3: 1,000 endpoints in slices of at
// most 100, and one pod's change rewrites exactly one slice.
func TestThousandEndpoints(t *testing.T) {
	c, reg := start(t)
	ns := namespace(t, c, "thousand")
	const n = 1000
	createReadyPods(t, c, ns, n)
	createService(t, c, ns, "web", web)
	want := map[string]string{}
	for i := range n {
		want[fmt.Sprintf("p%d", i)] = "RS-"
	}
	before := waitEndpoints(t, c, ns, "web", want)
	if len(before) != n/endpointslice.MaxEndpointsPerSlice {
		t.Errorf("%d slices, want %d", len(before), n/endpointslice.MaxEndpointsPerSlice)
	}
	for _, s := range before {
		if len(s.Endpoints) > endpointslice.MaxEndpointsPerSlice {
			t.Errorf("slice %s holds %d endpoints", s.Name, len(s.Endpoints))
		}
	}
	ep := waitLegacy(t, c, ns, "web", mapValues(want, "ready"))
	if ep.Annotations[corev1.EndpointsOverCapacity] != "" {
		t.Errorf("Endpoints of 1,000 addresses marked %q", ep.Annotations[corev1.EndpointsOverCapacity])
	}

	versions := func(ss []discoveryv1.EndpointSlice) map[string]string {
		m := map[string]string{}
		for _, s := range ss {
			m[s.Name] = s.ResourceVersion
		}
		return m
	}
	holder := ""
	for _, s := range before {
		for _, e := range s.Endpoints {
			if e.TargetRef.Name == "p537" {
				holder = s.Name
			}
		}
	}
	updates := counter(t, reg, "weir_endpointslice_writes_total", "endpointslices", "update")

	setStatus(t, c, ns, "p537", podIP(537), false)
	want["p537"] = "---"
	after := waitEndpoints(t, c, ns, "web", want)
	// Flipping it back, and waiting for that, also waits out any other
	// write the first change might (wrongly) have caused.
	setStatus(t, c, ns, "p537", podIP(537), true)
	want["p537"] = "RS-"
	final := waitEndpoints(t, c, ns, "web", want)
	for _, ss := range [][]discoveryv1.EndpointSlice{after, final} {
		v0, v1 := versions(before), versions(ss)
		var changed []string
		for name, rv := range v1 {
			if v0[name] != rv {
				changed = append(changed, name)
			}
		}
		if !slices.Equal(slices.Sorted(maps.Keys(v0)), slices.Sorted(maps.Keys(v1))) {
			t.Errorf("slices %v became %v; want the same slices", slices.Sorted(maps.Keys(v0)), slices.Sorted(maps.Keys(v1)))
		}
		if len(changed) != 1 || changed[0] != holder {
			t.Errorf("slices rewritten: %v; want only %s, which holds p537", changed, holder)
		}
	}
	if got := counter(t, reg, "weir_endpointslice_writes_total", "endpointslices", "update") - updates; got != 2 {
		t.Errorf("%v slice updates for two flips, want 2", got)
	}
}

func mapValues(m map[string]string, v string) map[string]string {
	out := make(map[string]string, len(m))
	for k := range m {
		out[k] = v
	}
	return out
}

func family(t testing.TB, reg *prometheus.Registry, name string) *dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	return nil
}

func histogramCount(t testing.TB, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	mf := family(t, reg, name)
	if mf == nil || len(mf.Metric) == 0 {
		return 0
	}
	return mf.Metric[0].GetHistogram().GetSampleCount()
}

// counter reads a counter of a vector with labels resource and op.
func counter(t testing.TB, reg *prometheus.Registry, name, resource, op string) float64 {
	t.Helper()
	mf := family(t, reg, name)
	if mf == nil {
		return 0
	}
	for _, m := range mf.Metric {
		ls := map[string]string{}
		for _, l := range m.Label {
			ls[l.GetName()] = l.GetValue()
		}
		if ls["resource"] == resource && ls["op"] == op {
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// TestRestartAdopts runs one controller, then another in its place (as
// after a leader change): the second takes the slices and Endpoints the
// first wrote as they are and rewrites nothing.
func TestRestartAdopts(t *testing.T) {
	// The test runs its own controllers; the server must not run one too.
	s := cluster.Start(t, cluster.WithLoops(cluster.LoopsWithout("endpointslice", "scheduler")))
	c := s.Client(t)
	runController := func(reg *prometheus.Registry) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- endpointslice.New(c, s.RESTConfig("application/json"), slog.New(slog.DiscardHandler), reg).Run(ctx)
		}()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("controller Run: %v", err)
			}
		}
	}
	ns := namespace(t, c, "restart")
	first := prometheus.NewRegistry()
	stop := runController(first)
	createService(t, c, ns, "web", web, func(s *corev1.Service) { s.Labels = map[string]string{"tier": "front"} })
	const n = 150
	createReadyPods(t, c, ns, n)
	want := map[string]string{}
	for i := range n {
		want[fmt.Sprintf("p%d", i)] = "RS-"
	}
	before := waitEndpoints(t, c, ns, "web", want)
	ep := waitLegacy(t, c, ns, "web", mapValues(want, "ready"))
	stop()

	second := prometheus.NewRegistry()
	defer runController(second)()
	// Queued after web: once it is written, web has been looked at. (It
	// selects no pod, so it is written once whatever the order in which
	// the informers hear of things.)
	createService(t, c, ns, "later", map[string]string{"app": "later"})
	waitSlicePorts(t, c, ns, "later", []string{": "})
	// And a change to web, queued after its first pass, is written only
	// once that pass is over.
	setStatus(t, c, ns, "p3", podIP(3), false)
	want["p3"] = "---"
	after := waitEndpoints(t, c, ns, "web", want)
	var changed []string
	for _, a := range after {
		i := slices.IndexFunc(before, func(b discoveryv1.EndpointSlice) bool { return b.Name == a.Name })
		if i < 0 || before[i].ResourceVersion != a.ResourceVersion {
			changed = append(changed, a.Name)
		}
	}
	if len(after) != len(before) || len(changed) != 1 {
		t.Errorf("slices %v became %v, %v rewritten; want the same slices, one rewritten for p3", sliceNames(before), sliceNames(after), changed)
	}
	// The second controller wrote, for web, the one slice and the
	// Endpoints for p3; for later, a placeholder slice and an Endpoints.
	waitLegacy(t, c, ns, "later", map[string]string{})
	cluster.Eventually(t, wait, "Endpoints show p3 not ready", func() (bool, error) {
		got, err := c.CoreV1().Endpoints(ns).Get(t.Context(), "web", metav1.GetOptions{})
		return err == nil && got.ResourceVersion != ep.ResourceVersion && legacyView(got)["p3"] == "notready", err
	})
	for _, w := range []struct {
		resource, op string
		want         float64
	}{
		{"endpointslices", "create", 1}, {"endpointslices", "update", 1}, {"endpointslices", "delete", 0},
		{"endpoints", "create", 1}, {"endpoints", "update", 1}, {"endpoints", "delete", 0},
	} {
		// The controller counts a write once its call returns, which can
		// be just after the object is visible; wait for the count, then
		// make sure it settles exactly there.
		var got float64
		deadline := time.Now().Add(5 * time.Second)
		for got = counter(t, second, "weir_endpointslice_writes_total", w.resource, w.op); got < w.want && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
			got = counter(t, second, "weir_endpointslice_writes_total", w.resource, w.op)
		}
		if got != w.want {
			t.Errorf("second controller: %s %s = %v, want %v", w.resource, w.op, got, w.want)
		}
	}
}
