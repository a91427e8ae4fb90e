package app

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"weir.dev/weir/test/cluster"
)

// finishDeletes plays the node agent: it completes the graceful delete of
// every pod marked for deletion until ctx ends.
func finishDeletes(ctx context.Context, c kubernetes.Interface) {
	zero := int64(0)
	for ctx.Err() == nil {
		pods, err := c.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err == nil {
			for _, p := range pods.Items {
				if p.DeletionTimestamp != nil {
					_ = c.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCordonAndDrain: cordon, uncordon and drain with kubectl's refusals
// for DaemonSet-managed and bare pods.
func TestCordonAndDrain(t *testing.T) {
	// No controllers: the garbage collector would remove pods whose
	// owners do not exist.
	s := cluster.Start(t, cluster.WithLoops(nil))
	c := s.Client(t)
	ctx := t.Context()
	if _, err := c.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := mustWeir(t, s, "", "cordon", "n1"); got != "node/n1 cordoned\n" {
		t.Fatalf("cordon: %q", got)
	}
	if got := mustWeir(t, s, "", "cordon", "n1"); got != "node/n1 already cordoned\n" {
		t.Fatalf("cordon again: %q", got)
	}
	if out := mustWeir(t, s, "", "get", "nodes"); !strings.Contains(out, "SchedulingDisabled") {
		t.Fatalf("get nodes after cordon:\n%s", out)
	}
	if got := mustWeir(t, s, "", "uncordon", "n1"); got != "node/n1 uncordoned\n" {
		t.Fatalf("uncordon: %q", got)
	}
	owned := func(name, kind string) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		}
		if kind != "" {
			yes := true
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name + "-owner", UID: "u-" + "0123", Controller: &yes}}
		}
		return p
	}
	// The DaemonSet exists: drain checks, as kubectl does.
	labels := map[string]string{"app": "agent"}
	if _, err := c.AppsV1().DaemonSets("default").Create(ctx, &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent-owner"},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*corev1.Pod{owned("web", "ReplicaSet"), owned("bare", ""), owned("agent", "DaemonSet")} {
		if _, err := c.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := weir(t, s, "", "drain", "n1")
	want := `error: unable to drain node "n1" due to error: [cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): default/agent, cannot delete Pods that declare no controller (use --force to override): default/bare], continuing command...`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("drain without flags: %v\nwant prefix %s", err, want)
	}
	if _, err := c.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Fatalf("a refused drain evicted a pod: %v", err)
	}
	agentCtx, stop := context.WithCancel(ctx)
	defer stop()
	go finishDeletes(agentCtx, c)
	out, errOut, err := weir(t, s, "", "drain", "n1", "--ignore-daemonsets", "--force", "--timeout=30s")
	if err != nil {
		t.Fatalf("drain: %v\n%s%s", err, out, errOut)
	}
	for _, w := range []string{"node/n1 already cordoned\n", "evicting pod default/bare\n", "evicting pod default/web\n", "pod/web evicted\n", "pod/bare evicted\n", "node/n1 drained\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("drain output lacks %q:\n%s", w, out)
		}
	}
	if !strings.Contains(errOut, "Warning: ignoring DaemonSet-managed Pods: default/agent; deleting Pods that declare no controller: default/bare") {
		t.Errorf("drain warnings:\n%s", errOut)
	}
	for _, name := range []string{"web", "bare"} {
		if _, err := c.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("pod %s still there: %v", name, err)
		}
	}
	if _, err := c.CoreV1().Pods("default").Get(ctx, "agent", metav1.GetOptions{}); err != nil {
		t.Errorf("the DaemonSet pod was evicted: %v", err)
	}
}
