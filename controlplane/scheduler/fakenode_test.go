package scheduler_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"weir.dev/weir/controlplane/scheduler"
	"weir.dev/weir/controlplane/server"
	"weir.dev/weir/test/cluster"
)

// wait is the deadline of a wait on the scheduler: each is expected in
// well under a second or two, the 1,000-pod one in a few.
const wait = 60 * time.Second

// schedulerLoop runs the scheduler as the leader's loop, registering
// its metrics with reg.
func schedulerLoop(reg prometheus.Registerer) server.Loop {
	return server.Loop{Name: "scheduler", Run: func(ctx context.Context, c kubernetes.Interface, rc *rest.Config, log *slog.Logger, _ prometheus.Registerer) error {
		return scheduler.New(c, rc, log, reg).Run(ctx)
	}}
}

// loops are the default loops without any scheduler they may already
// hold (so the test's is the only one), plus extra.
func loops(extra ...server.Loop) []server.Loop {
	ls := slices.DeleteFunc(server.DefaultLoops(), func(l server.Loop) bool { return l.Name == "scheduler" })
	return append(ls, extra...)
}

// fakeNode is a Node object with no agent behind it: it reports Ready
// and what it can hold, and fakeNodes renews its Lease as a kubelet
// would, so a node-lifecycle controller leaves it alone.
type fakeNode struct {
	name     string
	cpu, mem string
	pods     int64
	labels   map[string]string
}

func (n fakeNode) object() *corev1.Node {
	labels := map[string]string{"kubernetes.io/hostname": n.name, "kubernetes.io/os": "linux"}
	for k, v := range n.labels {
		labels[k] = v
	}
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(n.cpu),
		corev1.ResourceMemory: resource.MustParse(n.mem),
		corev1.ResourcePods:   *resource.NewQuantity(n.pods, resource.DecimalSI),
	}
	now := metav1.Now()
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.name, Labels: labels},
		Status: corev1.NodeStatus{
			Capacity: res, Allocatable: res,
			Conditions: []corev1.NodeCondition{{
				Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
				Message: "fake node", LastHeartbeatTime: now, LastTransitionTime: now,
			}},
		},
	}
}

// fakeNodes registers the nodes and renews their Leases every 10 s
// until the test ends.
func fakeNodes(t testing.TB, ctx context.Context, c kubernetes.Interface, nodes ...fakeNode) {
	t.Helper()
	for _, n := range nodes {
		if _, err := c.CoreV1().Nodes().Create(ctx, n.object(), metav1.CreateOptions{}); err != nil {
			t.Fatalf("create node %s: %v", n.name, err)
		}
		lease := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: n.name, Namespace: corev1.NamespaceNodeLease},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity: new(n.name), LeaseDurationSeconds: new(int32(40)),
				RenewTime: &metav1.MicroTime{Time: time.Now()},
			},
		}
		if _, err := c.CoordinationV1().Leases(corev1.NamespaceNodeLease).Create(ctx, lease, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create lease %s: %v", n.name, err)
		}
	}
	var wg sync.WaitGroup
	rctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-tick.C:
			}
			for _, n := range nodes {
				renewLease(rctx, c, n.name)
			}
		}
	})
}

func renewLease(ctx context.Context, c kubernetes.Interface, name string) {
	leases := c.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	l, err := leases.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return // the next tick tries again
	}
	l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
	_, _ = leases.Update(ctx, l, metav1.UpdateOptions{})
}

// testPod is a pod asking for cpu and memory.
func testPod(name, cpu, mem string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "c", Image: "weir.local/echo",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem),
			}},
		}}},
	}
}

// createPods creates n pods named prefix-i from tmpl with 16 clients at
// once.
func createPods(t testing.TB, ctx context.Context, c kubernetes.Interface, ns, prefix string, n int, tmpl *corev1.Pod) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				p := tmpl.DeepCopy()
				p.Name = fmt.Sprintf("%s-%d", prefix, i)
				if _, err := c.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
					errs <- fmt.Errorf("create pod %s: %w", p.Name, err)
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func createNamespace(t testing.TB, ctx context.Context, c kubernetes.Interface, name string) {
	t.Helper()
	_, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// startCluster starts a server whose leader runs the scheduler.
func startCluster(t *testing.T) (*cluster.Server, kubernetes.Interface, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s := cluster.Start(t, cluster.WithLoops(loops(schedulerLoop(reg))))
	return s, s.Client(t), reg
}
