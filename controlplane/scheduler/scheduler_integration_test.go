package scheduler_test

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"weir.dev/weir/controlplane/scheduler"
	"weir.dev/weir/test/cluster"
)

// TestThousandPods: 1,000 pending pods over 3 fake nodes are all bound
// without overcommitting any node (the nodes hold exactly 1,000 such
// pods, unevenly, so any mistake in the accounting leaves pods Pending
// or overfills a node); an oversized pod then stays Pending with the
// Unschedulable reason and a FailedScheduling event worded as
// Kubernetes words it, and binds once a node with room appears.
func TestThousandPods(t *testing.T) {
	_, c, reg := startCluster(t)
	ctx := t.Context()
	// By cpu (10m a pod) n1 holds 100, n2 400; n3 holds 500 by its pod
	// limit, with cpu to spare.
	fakeNodes(t, ctx, c,
		fakeNode{name: "n1", cpu: "1", mem: "4Gi", pods: 110},
		fakeNode{name: "n2", cpu: "4", mem: "16Gi", pods: 500},
		fakeNode{name: "n3", cpu: "6", mem: "16Gi", pods: 500},
	)
	createNamespace(t, ctx, c, "load")
	createPods(t, ctx, c, "load", "p", 1000, testPod("", "10m", "16Mi"))

	cluster.Eventually(t, wait, "1,000 pods bound", func() (bool, error) {
		unbound, err := c.CoreV1().Pods("load").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName="})
		if err != nil {
			return false, err
		}
		return len(unbound.Items) == 0, fmt.Errorf("%d pods unbound", len(unbound.Items))
	})
	pods, err := c.CoreV1().Pods("load").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1000 {
		t.Fatalf("%d pods, want 1000", len(pods.Items))
	}
	perNode := map[string]int64{}
	for _, p := range pods.Items {
		perNode[p.Spec.NodeName]++
		if cond := condition(&p); cond == nil || cond.Status != corev1.ConditionTrue {
			t.Errorf("pod %s bound to %q without PodScheduled=True: %+v", p.Name, p.Spec.NodeName, cond)
		}
	}
	nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		count := perNode[n.Name]
		cpu := resource.NewMilliQuantity(count*10, resource.DecimalSI)
		if count > n.Status.Allocatable.Pods().Value() || cpu.Cmp(*n.Status.Allocatable.Cpu()) > 0 {
			t.Errorf("node %s holds %d pods asking %s cpu; allocatable %s pods, %s cpu",
				n.Name, count, cpu, n.Status.Allocatable.Pods(), n.Status.Allocatable.Cpu())
		}
	}
	t.Logf("pods per node: %v", perNode)
	if got := counter(t, reg, "weir_scheduler_schedule_attempts_total", "result", "scheduled"); got < 1000 {
		t.Errorf("scheduled attempts metric = %v, want ≥ 1000", got)
	}

	// The oversized pod: no node has 100 cpu, and n3 is at its pod limit.
	createNamespace(t, ctx, c, "big")
	if _, err := c.CoreV1().Pods("big").Create(ctx, testPod("huge", "100", "1Gi"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const msg = "0/3 nodes are available: 1 Too many pods, 3 Insufficient cpu."
	waitUnschedulable(t, c, "big", "huge", msg)
	if got := counter(t, reg, "weir_scheduler_pending_pods", "queue", "unschedulable") +
		counter(t, reg, "weir_scheduler_pending_pods", "queue", "backoff"); got != 1 {
		t.Errorf("pending pods (unschedulable + backoff) = %v, want 1", got)
	}

	fakeNodes(t, ctx, c, fakeNode{name: "n4", cpu: "128", mem: "64Gi", pods: 110})
	waitBound(t, c, "big", "huge", "n4")
}

// TestNodeSelectorFlowServer is the seed's flow against a server: label
// a node disktype=ssd (as `kubectl label node` does) and pods that ask
// for it land only there; remove the label and they stay, new pods
// without the selector go anywhere, a new pod with it waits, saying why;
// label another node and the waiting pod binds there.
//
// The scheduler sees nodes and pods on two watches, so a pod created
// right after a label change may be decided before the change is seen
// (kube-scheduler has the same window). The waiting pod is therefore
// created first, held by a label no node has (tier=db), and the node
// changes that follow reach the scheduler in order on one watch.
func TestNodeSelectorFlowServer(t *testing.T) {
	_, c, _ := startCluster(t)
	ctx := t.Context()
	fakeNodes(t, ctx, c,
		fakeNode{name: "a", cpu: "4", mem: "8Gi", pods: 110},
		fakeNode{name: "b", cpu: "4", mem: "8Gi", pods: 110},
		fakeNode{name: "c", cpu: "4", mem: "8Gi", pods: 110},
	)
	label(t, c, "b", `{"disktype":"ssd"}`)
	ssd := testPod("", "100m", "64Mi")
	ssd.Spec.NodeSelector = map[string]string{"disktype": "ssd"}
	createPods(t, ctx, c, "default", "ssd", 6, ssd)
	for i := range 6 {
		waitBound(t, c, "default", fmt.Sprintf("ssd-%d", i), "b")
	}
	late := ssd.DeepCopy()
	late.Spec.NodeSelector["tier"] = "db"
	createPods(t, ctx, c, "default", "ssd-late", 1, late)
	const noMatch = "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
	waitUnschedulable(t, c, "default", "ssd-late-0", noMatch)

	label(t, c, "b", `{"disktype":null}`)
	label(t, c, "b", `{"tier":"db"}`) // b would fit ssd-late-0 if it still had disktype=ssd
	createPods(t, ctx, c, "default", "plain", 6, testPod("", "100m", "64Mi"))
	placed := map[string]int{}
	for i := range 6 {
		placed[waitBound(t, c, "default", fmt.Sprintf("plain-%d", i), "")]++
	}
	// b holds the six ssd pods: least requested fills a and c first.
	if placed["a"] != 3 || placed["c"] != 3 {
		t.Errorf("plain pods placed %v, want 3 on a and 3 on c", placed)
	}
	for i := range 6 {
		if p, err := c.CoreV1().Pods("default").Get(ctx, fmt.Sprintf("ssd-%d", i), metav1.GetOptions{}); err != nil || p.Spec.NodeName != "b" {
			t.Fatalf("ssd-%d after unlabelling: %v on %q, want it to stay on b", i, err, p.Spec.NodeName)
		}
	}
	if p, err := c.CoreV1().Pods("default").Get(ctx, "ssd-late-0", metav1.GetOptions{}); err != nil || p.Spec.NodeName != "" {
		t.Fatalf("ssd-late-0 after b lost disktype=ssd: %v, bound to %q", err, p.Spec.NodeName)
	}
	waitUnschedulable(t, c, "default", "ssd-late-0", noMatch)

	label(t, c, "c", `{"disktype":"ssd","tier":"db"}`)
	waitBound(t, c, "default", "ssd-late-0", "c")
}

// TestCordonAndDrainPlan: a cordoned node gets no new pods, and the
// drain plan of its pods, evicted through pods/eviction and finished as
// an agent would, empties it of what has a controller.
func TestCordonAndDrainPlan(t *testing.T) {
	_, c, _ := startCluster(t)
	ctx := t.Context()
	fakeNodes(t, ctx, c, fakeNode{name: "a", cpu: "4", mem: "8Gi", pods: 110})
	// The pods' controller must exist, or the garbage collector deletes
	// them; a ConfigMap is an owner no controller loop acts on.
	owner, err := c.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "web"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	owned := testPod("", "100m", "64Mi")
	owned.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID, Controller: new(true)}}
	createPods(t, ctx, c, "default", "web", 3, owned)
	createPods(t, ctx, c, "default", "bare", 1, testPod("", "100m", "64Mi"))
	for _, n := range []string{"web-0", "web-1", "web-2", "bare-0"} {
		waitBound(t, c, "default", n, "a")
	}

	// As in TestNodeSelectorFlowServer, the new pod waits first (for a
	// label), so the cordon reaches the scheduler before the node fits.
	late := testPod("", "100m", "64Mi")
	late.Spec.NodeSelector = map[string]string{"pool": "late"}
	createPods(t, ctx, c, "default", "late", 1, late)
	waitUnschedulable(t, c, "default", "late-0", "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.")
	cordon(t, c, "a", true)
	label(t, c, "a", `{"pool":"late"}`)
	waitUnschedulable(t, c, "default", "late-0", "0/1 nodes are available: 1 node(s) were unschedulable.")

	onNode, err := c.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", "a").String()})
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(ns, name string) error {
		_, err := c.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
		return err
	}
	plan := scheduler.PlanDrain(onNode.Items, lookup, scheduler.DrainOptions{})
	if err := plan.Err(); err == nil || err.Error() != "cannot delete Pods that declare no controller (use --force to override): default/bare-0" {
		t.Fatalf("plan without --force: %v", err)
	}
	plan = scheduler.PlanDrain(onNode.Items, lookup, scheduler.DrainOptions{Force: true})
	if err := plan.Err(); err != nil || len(plan.Evict()) != 4 {
		t.Fatalf("plan with --force: %d to evict, error %v", len(plan.Evict()), err)
	}
	for _, p := range plan.Evict() {
		if err := c.CoreV1().Pods(p.Namespace).EvictV1(ctx, evictionOf(p)); err != nil {
			t.Fatalf("evict %s: %v", p.Name, err)
		}
		// A bound pod stays, terminating, until its agent is done.
		got, err := c.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil || got.DeletionTimestamp == nil {
			t.Fatalf("evicted %s: %v, deletionTimestamp %v", p.Name, err, got.GetDeletionTimestamp())
		}
		if err := c.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))}); err != nil {
			t.Fatalf("finish %s as an agent would: %v", p.Name, err)
		}
	}
	cluster.Eventually(t, wait, "node a empty", func() (bool, error) {
		left, err := c.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=a"})
		return err == nil && len(left.Items) == 0, err
	})
	// Uncordoned, the node takes the waiting pod.
	cordon(t, c, "a", false)
	waitBound(t, c, "default", "late-0", "a")
}

// cordon sets spec.unschedulable as `kubectl cordon` and `uncordon` do.
func cordon(t *testing.T, c kubernetes.Interface, node string, on bool) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"unschedulable":%t}}`, on)
	if _, err := c.CoreV1().Nodes().Patch(t.Context(), node, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("cordon node %s: %v", node, err)
	}
}

// label merges labels (a JSON object; null removes a key) into a node's,
// as `kubectl label node` does.
func label(t *testing.T, c kubernetes.Interface, node, labels string) {
	t.Helper()
	patch := `{"metadata":{"labels":` + labels + `}}`
	if _, err := c.CoreV1().Nodes().Patch(t.Context(), node, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("label node %s: %v", node, err)
	}
}

func condition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodScheduled {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// waitBound waits for the pod to be bound (to node, unless "") and
// returns its node.
func waitBound(t *testing.T, c kubernetes.Interface, ns, name, node string) string {
	t.Helper()
	var got string
	cluster.Eventually(t, wait, fmt.Sprintf("pod %s bound to %q", name, node), func() (bool, error) {
		p, err := c.CoreV1().Pods(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		got = p.Spec.NodeName
		if got == "" {
			return false, fmt.Errorf("unbound: %+v", condition(p))
		}
		return node == "" || got == node, fmt.Errorf("bound to %s", got)
	})
	return got
}

// waitUnschedulable waits for PodScheduled=False, reason Unschedulable,
// with msg, and a FailedScheduling Warning event saying the same.
func waitUnschedulable(t *testing.T, c kubernetes.Interface, ns, name, msg string) {
	t.Helper()
	ctx := t.Context()
	cluster.Eventually(t, wait, fmt.Sprintf("pod %s unschedulable", name), func() (bool, error) {
		p, err := c.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		cond := condition(p)
		ok := p.Spec.NodeName == "" && cond != nil && cond.Status == corev1.ConditionFalse &&
			cond.Reason == corev1.PodReasonUnschedulable && cond.Message == msg
		return ok, fmt.Errorf("node %q, condition %+v", p.Spec.NodeName, cond)
	})
	cluster.Eventually(t, wait, fmt.Sprintf("FailedScheduling event for %s", name), func() (bool, error) {
		evs, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.Set{
			"involvedObject.kind": "Pod", "involvedObject.name": name, "reason": "FailedScheduling",
		}.String()})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.Type == corev1.EventTypeWarning && e.Message == msg && e.Source.Component == "default-scheduler" {
				return true, nil
			}
		}
		return false, fmt.Errorf("events: %+v", evs.Items)
	})
}

// counter reads one series of a counter or gauge from reg.
func counter(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					if m.GetCounter() != nil {
						return m.GetCounter().GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}

func evictionOf(p *corev1.Pod) *policyv1.Eviction {
	return &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace}}
}
