package replicaset_test

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"weir.dev/weir/controlplane/server"
	"weir.dev/weir/test/cluster"
)

// wait is the deadline of every wait on the controller; each condition
// needs well under a second.
const wait = 30 * time.Second

// loops are the server's own, without the scheduler: the test plays the
// scheduler and the node agent itself.
func loops() []server.Loop { return cluster.LoopsWithout("scheduler") }

// TestReplicaSet runs the controller in a real weir server; the test
// plays the node agent, writing pod readiness and finishing deletions.
func TestReplicaSet(t *testing.T) {
	s := cluster.Start(t, cluster.WithLoops(loops()))
	c := s.Client(t)
	tests := []struct {
		name string
		run  func(t *testing.T, c kubernetes.Interface, ns string)
	}{
		{name: "creates named, owned pods and reports them", run: testCreate},
		{name: "scales through the scale subresource", run: testScaleSubresource},
		{name: "scales down unscheduled, then not ready, then newest", run: testScaleDownRanking},
		{name: "adopts orphans and releases pods that stop matching", run: testAdoptRelease},
		{name: "a burst of creates is made once", run: testBurst},
		{name: "minReadySeconds delays availability", run: testMinReadySeconds},
	}
	if len(tests) == 0 {
		t.Fatal("empty table")
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns := fmt.Sprintf("rs-%d", i)
			if _, err := c.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
				t.Fatalf("create namespace: %v", err)
			}
			tc.run(t, c, ns)
		})
	}
}

func newRS(name string, replicas int32) *appsv1.ReplicaSet {
	l := map[string]string{"app": name}
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: new(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: l},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: l},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "weir.local/echo"}}},
			},
		},
	}
}

func createRS(t *testing.T, c kubernetes.Interface, ns string, rs *appsv1.ReplicaSet) *appsv1.ReplicaSet {
	t.Helper()
	out, err := c.AppsV1().ReplicaSets(ns).Create(t.Context(), rs, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create replicaset %s: %v", rs.Name, err)
	}
	return out
}

// pods lists the pods carrying label app=app, terminating ones included,
// sorted by name.
func pods(t *testing.T, c kubernetes.Interface, ns, app string) []corev1.Pod {
	t.Helper()
	l, err := c.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		t.Fatalf("list pods: %v", err)
	}
	sort.Slice(l.Items, func(i, j int) bool { return l.Items[i].Name < l.Items[j].Name })
	return l.Items
}

func active(ps []corev1.Pod) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range ps {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

// waitPods waits until exactly n pods labelled app=app are not being
// deleted, and returns them.
func waitPods(t *testing.T, c kubernetes.Interface, ns, app string, n int) []corev1.Pod {
	t.Helper()
	var got []corev1.Pod
	cluster.Eventually(t, wait, fmt.Sprintf("%d pods of %s", n, app), func() (bool, error) {
		got = active(pods(t, c, ns, app))
		return len(got) == n, nil
	})
	return got
}

// waitStatus waits until the ReplicaSet's status says what ok wants, for
// its current generation.
func waitStatus(t *testing.T, c kubernetes.Interface, ns, name, what string, ok func(appsv1.ReplicaSetStatus) bool) *appsv1.ReplicaSet {
	t.Helper()
	var rs *appsv1.ReplicaSet
	cluster.Eventually(t, wait, name+": "+what, func() (bool, error) {
		var err error
		rs, err = c.AppsV1().ReplicaSets(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return rs.Status.ObservedGeneration == rs.Generation && ok(rs.Status), fmt.Errorf("status %+v", rs.Status)
	})
	return rs
}

// setReady plays the agent: the pod runs and has been ready since at.
func setReady(t *testing.T, c kubernetes.Interface, p corev1.Pod, at time.Time) {
	t.Helper()
	for {
		cur, err := c.CoreV1().Pods(p.Namespace).Get(t.Context(), p.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get pod %s: %v", p.Name, err)
		}
		cur.Status.Phase = corev1.PodRunning
		cur.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(at)}}
		_, err = c.CoreV1().Pods(p.Namespace).UpdateStatus(t.Context(), cur, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			t.Fatalf("set pod %s ready: %v", p.Name, err)
		}
		return
	}
}

func setRunning(t *testing.T, c kubernetes.Interface, p corev1.Pod) {
	t.Helper()
	cur, err := c.CoreV1().Pods(p.Namespace).Get(t.Context(), p.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pod %s: %v", p.Name, err)
	}
	cur.Status.Phase = corev1.PodRunning
	if _, err := c.CoreV1().Pods(p.Namespace).UpdateStatus(t.Context(), cur, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("set pod %s running: %v", p.Name, err)
	}
}

func bind(t *testing.T, c kubernetes.Interface, p corev1.Pod) {
	t.Helper()
	err := c.CoreV1().Pods(p.Namespace).Bind(t.Context(), &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name}, Target: corev1.ObjectReference{Kind: "Node", Name: "node-a"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("bind pod %s: %v", p.Name, err)
	}
}

func scale(t *testing.T, c kubernetes.Interface, ns, name string, n int32) {
	t.Helper()
	sc, err := c.AppsV1().ReplicaSets(ns).GetScale(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get scale of %s: %v", name, err)
	}
	sc.Spec.Replicas = n
	if _, err := c.AppsV1().ReplicaSets(ns).UpdateScale(t.Context(), name, sc, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("scale %s to %d: %v", name, n, err)
	}
}

var generated = regexp.MustCompile(`^web-[a-z0-9]{5}$`)

func testCreate(t *testing.T, c kubernetes.Interface, ns string) {
	rs := createRS(t, c, ns, newRS("web", 3))
	got := waitPods(t, c, ns, "web", 3)
	for _, p := range got {
		if !generated.MatchString(p.Name) {
			t.Errorf("pod name %q is not web-<random5>", p.Name)
		}
		if ref := metav1.GetControllerOf(&p); ref == nil || ref.UID != rs.UID || ref.Kind != "ReplicaSet" {
			t.Errorf("pod %s controller = %+v; want the ReplicaSet", p.Name, ref)
		}
	}
	waitStatus(t, c, ns, "web", "3 replicas, none ready", func(st appsv1.ReplicaSetStatus) bool {
		return st.Replicas == 3 && st.FullyLabeledReplicas == 3 && st.ReadyReplicas == 0
	})
	for _, p := range got {
		setReady(t, c, p, time.Now())
	}
	waitStatus(t, c, ns, "web", "3 ready and available", func(st appsv1.ReplicaSetStatus) bool {
		return st.Replicas == 3 && st.ReadyReplicas == 3 && st.AvailableReplicas == 3
	})

	// A pod deleted behind its back is replaced.
	if err := c.CoreV1().Pods(ns).Delete(t.Context(), got[0].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete pod: %v", err)
	}
	cluster.Eventually(t, wait, "a replacement pod", func() (bool, error) {
		ps := active(pods(t, c, ns, "web"))
		return len(ps) == 3 && !slices.ContainsFunc(ps, func(p corev1.Pod) bool { return p.Name == got[0].Name }), nil
	})
}

func testScaleSubresource(t *testing.T, c kubernetes.Interface, ns string) {
	createRS(t, c, ns, newRS("web", 2))
	waitPods(t, c, ns, "web", 2)
	scale(t, c, ns, "web", 5)
	waitPods(t, c, ns, "web", 5)
	cluster.Eventually(t, wait, "scale status of 5", func() (bool, error) {
		sc, err := c.AppsV1().ReplicaSets(ns).GetScale(t.Context(), "web", metav1.GetOptions{})
		return err == nil && sc.Spec.Replicas == 5 && sc.Status.Replicas == 5, err
	})
	scale(t, c, ns, "web", 1)
	waitPods(t, c, ns, "web", 1)
	waitStatus(t, c, ns, "web", "1 replica", func(st appsv1.ReplicaSetStatus) bool { return st.Replicas == 1 })
}

func testScaleDownRanking(t *testing.T, c kubernetes.Interface, ns string) {
	createRS(t, c, ns, newRS("web", 4))
	got := waitPods(t, c, ns, "web", 4)
	// One pod stays unscheduled; the others run on a node: one not ready,
	// one ready for an hour, one ready for a minute.
	unsched, notReady, longReady, shortReady := got[0], got[1], got[2], got[3]
	for _, p := range got[1:] {
		bind(t, c, p)
	}
	setRunning(t, c, notReady)
	setReady(t, c, longReady, time.Now().Add(-time.Hour))
	setReady(t, c, shortReady, time.Now().Add(-time.Minute))
	waitStatus(t, c, ns, "web", "2 ready", func(st appsv1.ReplicaSetStatus) bool { return st.ReadyReplicas == 2 })

	steps := []struct {
		replicas int32
		gone     corev1.Pod
	}{{3, unsched}, {2, notReady}, {1, shortReady}}
	for _, st := range steps {
		scale(t, c, ns, "web", st.replicas)
		left := waitPods(t, c, ns, "web", int(st.replicas))
		if slices.ContainsFunc(left, func(p corev1.Pod) bool { return p.Name == st.gone.Name }) {
			t.Fatalf("scaled to %d and kept %s; pods left %v", st.replicas, st.gone.Name, podNames(left))
		}
		if st.gone.Name != unsched.Name {
			// A pod on a node stays until its agent is done: the test is
			// the agent.
			waitStatus(t, c, ns, "web", "one terminating", func(s appsv1.ReplicaSetStatus) bool {
				return s.Replicas == st.replicas && s.TerminatingReplicas != nil && *s.TerminatingReplicas == 1
			})
			if err := c.CoreV1().Pods(ns).Delete(t.Context(), st.gone.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))}); err != nil {
				t.Fatalf("finish deletion of %s: %v", st.gone.Name, err)
			}
		}
		waitStatus(t, c, ns, "web", "none terminating", func(s appsv1.ReplicaSetStatus) bool {
			return s.Replicas == st.replicas && s.TerminatingReplicas != nil && *s.TerminatingReplicas == 0
		})
	}
	if left := active(pods(t, c, ns, "web")); len(left) != 1 || left[0].Name != longReady.Name {
		t.Fatalf("left %v; want the pod ready the longest, %s", podNames(left), longReady.Name)
	}
}

func podNames(ps []corev1.Pod) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	return out
}

func testAdoptRelease(t *testing.T, c kubernetes.Interface, ns string) {
	orphan := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "orphan", Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "weir.local/echo"}}},
	}
	if _, err := c.CoreV1().Pods(ns).Create(t.Context(), orphan, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create orphan: %v", err)
	}
	rs := createRS(t, c, ns, newRS("web", 3))
	waitStatus(t, c, ns, "web", "3 replicas", func(st appsv1.ReplicaSetStatus) bool { return st.Replicas == 3 })
	got := active(pods(t, c, ns, "web"))
	if len(got) != 3 {
		t.Fatalf("pods %v; want the orphan and two new ones", podNames(got))
	}
	i := slices.IndexFunc(got, func(p corev1.Pod) bool { return p.Name == "orphan" })
	if i < 0 {
		t.Fatalf("the orphan is gone; pods %v", podNames(got))
	}
	if ref := metav1.GetControllerOf(&got[i]); ref == nil || ref.UID != rs.UID {
		t.Fatalf("orphan controller = %+v; want adopted by the ReplicaSet", ref)
	}

	// Relabel one pod out of the selector: released, then replaced.
	moved := got[(i+1)%3]
	patch := []byte(`{"metadata":{"labels":{"app":"debug"}}}`)
	if _, err := c.CoreV1().Pods(ns).Patch(t.Context(), moved.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("relabel pod: %v", err)
	}
	cluster.Eventually(t, wait, "the relabelled pod released", func() (bool, error) {
		p, err := c.CoreV1().Pods(ns).Get(t.Context(), moved.Name, metav1.GetOptions{})
		return err == nil && metav1.GetControllerOf(p) == nil, err
	})
	left := waitPods(t, c, ns, "web", 3)
	if slices.ContainsFunc(left, func(p corev1.Pod) bool { return p.Name == moved.Name }) {
		t.Fatalf("the relabelled pod still counts: %v", podNames(left))
	}
}

func testBurst(t *testing.T, c kubernetes.Interface, ns string) {
	const n = 60
	w, err := c.CoreV1().Pods(ns).Watch(t.Context(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatalf("watch pods: %v", err)
	}
	defer w.Stop()
	createRS(t, c, ns, newRS("web", n))
	waitStatus(t, c, ns, "web", fmt.Sprintf("%d replicas", n), func(st appsv1.ReplicaSetStatus) bool { return st.Replicas == n })
	// The ReplicaSet's status is written after its pods, so every create
	// it made is in the watch before the marker below.
	if _, err := c.CoreV1().Pods(ns).Create(t.Context(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "marker", Labels: map[string]string{"app": "web", "marker": "1"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "x", UID: "x", Controller: new(true)}}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "weir.local/echo"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create marker: %v", err)
	}
	added, deleted := 0, 0
	timeout := time.After(wait)
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch closed after %d adds", added)
			}
			p, _ := ev.Object.(*corev1.Pod)
			switch {
			case p == nil:
			case p.Name == "marker":
				if added != n || deleted != 0 {
					t.Fatalf("the ReplicaSet created %d pods and deleted %d; want %d and 0", added, deleted, n)
				}
				return
			case ev.Type == watch.Added:
				added++
			case ev.Type == watch.Deleted:
				deleted++
			}
		case <-timeout:
			t.Fatalf("no marker within %s (%d adds)", wait, added)
		}
	}
}

func testMinReadySeconds(t *testing.T, c kubernetes.Interface, ns string) {
	rs := newRS("web", 1)
	rs.Spec.MinReadySeconds = 2
	createRS(t, c, ns, rs)
	p := waitPods(t, c, ns, "web", 1)[0]
	setReady(t, c, p, time.Now())
	waitStatus(t, c, ns, "web", "ready, not yet available", func(st appsv1.ReplicaSetStatus) bool {
		return st.ReadyReplicas == 1 && st.AvailableReplicas == 0
	})
	// Nothing changes any more but time: the controller must come back.
	got := waitStatus(t, c, ns, "web", "available", func(st appsv1.ReplicaSetStatus) bool { return st.AvailableReplicas == 1 })
	if got.Status.ReadyReplicas != 1 || got.Status.Replicas != 1 {
		t.Fatalf("status %+v; want one ready, available replica", got.Status)
	}
}
