package deployment_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"weir.dev/weir/controlplane/controller/deployment"
	"weir.dev/weir/controlplane/server"
	"weir.dev/weir/test/cluster"
)

// wait is the deadline of every wait on the controllers; each step needs
// well under a second (the progress deadline below, 3 s).
const wait = 60 * time.Second

// loops are the server's own, without the scheduler: the test plays the
// scheduler and the node agent itself.
func loops() []server.Loop { return cluster.LoopsWithout("scheduler") }

func namespace(t testing.TB, c kubernetes.Interface, name string) string {
	t.Helper()
	if _, err := c.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return name
}

// edit reads the Deployment, applies f and writes it, retrying on
// conflicts (the controller writes its annotations).
func edit(t testing.TB, c kubernetes.Interface, ns, name string, f func(*appsv1.Deployment)) *appsv1.Deployment {
	t.Helper()
	for {
		d, err := c.AppsV1().Deployments(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get deployment: %v", err)
		}
		f(d)
		out, err := c.AppsV1().Deployments(ns).Update(t.Context(), d, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			t.Fatalf("update deployment: %v", err)
		}
		return out
	}
}

func setImage(image, cause string) func(*appsv1.Deployment) {
	return func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = image
		d.Annotations[deployment.ChangeCauseAnnotation] = cause
	}
}

func progressing(d *appsv1.Deployment) *appsv1.DeploymentCondition {
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == appsv1.DeploymentProgressing {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

// waitDeployment waits until the Deployment's status, for its current
// generation, satisfies ok.
func waitDeployment(t testing.TB, c kubernetes.Interface, ns, name, what string, ok func(*appsv1.Deployment) bool) *appsv1.Deployment {
	t.Helper()
	var d *appsv1.Deployment
	cluster.Eventually(t, wait, name+": "+what, func() (bool, error) {
		var err error
		d, err = c.AppsV1().Deployments(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return d.Status.ObservedGeneration == d.Generation && ok(d), fmt.Errorf("status %+v", d.Status)
	})
	return d
}

// waitComplete waits until every replica runs image and is available.
func waitComplete(t testing.TB, c kubernetes.Interface, ns, name, image string) *appsv1.Deployment {
	t.Helper()
	return waitDeployment(t, c, ns, name, "complete with "+image, func(d *appsv1.Deployment) bool {
		n, st, p := *d.Spec.Replicas, d.Status, progressing(d)
		return d.Spec.Template.Spec.Containers[0].Image == image && st.UpdatedReplicas == n && st.Replicas == n &&
			st.AvailableReplicas == n && st.UnavailableReplicas == 0 && p != nil && p.Reason == deployment.ReasonNewReplicaSetAvailable
	})
}

// replicaSets lists the ReplicaSets d controls, by their image.
func replicaSets(t *testing.T, c kubernetes.Interface, d *appsv1.Deployment) ([]*appsv1.ReplicaSet, map[string]*appsv1.ReplicaSet) {
	t.Helper()
	l, err := c.AppsV1().ReplicaSets(d.Namespace).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list replicasets: %v", err)
	}
	var out []*appsv1.ReplicaSet
	byImage := map[string]*appsv1.ReplicaSet{}
	for i := range l.Items {
		rs := &l.Items[i]
		if metav1.IsControlledBy(rs, d) {
			out = append(out, rs)
			byImage[rs.Spec.Template.Spec.Containers[0].Image] = rs
		}
	}
	return out, byImage
}

func history(t *testing.T, c kubernetes.Interface, d *appsv1.Deployment) []string {
	t.Helper()
	rss, _ := replicaSets(t, c, d)
	var out []string
	for _, r := range deployment.History(rss) {
		out = append(out, fmt.Sprintf("%d %s", r.Number, r.ChangeCause))
	}
	return out
}

// specs records, from a watch, the successive spec.replicas of every
// ReplicaSet in a namespace.
func specs(t *testing.T, c kubernetes.Interface, ns string) func() map[string][]int32 {
	t.Helper()
	list, err := c.AppsV1().ReplicaSets(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list replicasets: %v", err)
	}
	seen := map[string][]int32{}
	for _, rs := range list.Items {
		seen[rs.Name] = []int32{*rs.Spec.Replicas}
	}
	w, err := c.AppsV1().ReplicaSets(ns).Watch(context.Background(), metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatalf("watch replicasets: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			rs, ok := ev.Object.(*appsv1.ReplicaSet)
			if !ok || ev.Type == watch.Deleted {
				continue
			}
			if s := seen[rs.Name]; len(s) == 0 || s[len(s)-1] != *rs.Spec.Replicas {
				seen[rs.Name] = append(s, *rs.Spec.Replicas)
			}
		}
	}()
	stop := func() map[string][]int32 {
		w.Stop()
		<-done
		return seen
	}
	t.Cleanup(func() { stop() })
	return stop
}

var podName = regexp.MustCompile(`^web-[a-z0-9]+-[a-z0-9]{5}$`)

// TestDeploymentRollout is acceptance 2 of the Deployment issue, against
// a real server; the test plays the node agents (pod readiness).
func TestDeploymentRollout(t *testing.T) {
	s := cluster.Start(t, cluster.WithLoops(loops()))
	c := s.Client(t)
	ns := namespace(t, c, "rollout")
	agent := startAgent(t, c, ns, "weir.local/never")

	// Apply: defaults give 25%/25%, so with 2 replicas maxSurge 1 and
	// maxUnavailable 0.
	labels := map[string]string{"app": "web"}
	_, err := c.AppsV1().Deployments(ns).Create(t.Context(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Annotations: map[string]string{deployment.ChangeCauseAnnotation: "apply v1"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "weir.local/echo:v1"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	d := waitComplete(t, c, ns, "web", "weir.local/echo:v1")
	rss, byImage := replicaSets(t, c, d)
	v1 := byImage["weir.local/echo:v1"]
	if len(rss) != 1 || v1 == nil {
		t.Fatalf("replicasets %d; want one for v1", len(rss))
	}
	hash := v1.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
	if v1.Name != "web-"+hash || v1.Spec.Selector.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] != hash {
		t.Errorf("replicaset %s selector %v; want web-<pod-template-hash> selecting its hash", v1.Name, v1.Spec.Selector.MatchLabels)
	}
	if d.Annotations[deployment.RevisionAnnotation] != "1" || v1.Annotations[deployment.RevisionAnnotation] != "1" {
		t.Errorf("revision deployment %q replicaset %q; want 1 and 1", d.Annotations[deployment.RevisionAnnotation], v1.Annotations[deployment.RevisionAnnotation])
	}
	pods, err := c.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil || len(pods.Items) != 2 {
		t.Fatalf("pods %v, %v; want 2", pods, err)
	}
	for _, p := range pods.Items {
		if !podName.MatchString(p.Name) || p.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash {
			t.Errorf("pod %s labels %v; want %s-<random5> with its hash", p.Name, p.Labels, v1.Name)
		}
	}

	t.Run("scale 2 → 5 → 2", func(t *testing.T) {
		for _, n := range []int32{5, 2} {
			sc, err := c.AppsV1().Deployments(ns).GetScale(t.Context(), "web", metav1.GetOptions{})
			if err != nil {
				t.Fatalf("get scale: %v", err)
			}
			sc.Spec.Replicas = n
			if _, err := c.AppsV1().Deployments(ns).UpdateScale(t.Context(), "web", sc, metav1.UpdateOptions{}); err != nil {
				t.Fatalf("scale to %d: %v", n, err)
			}
			d := waitComplete(t, c, ns, "web", "weir.local/echo:v1")
			if rss, _ := replicaSets(t, c, d); len(rss) != 1 || *rss[0].Spec.Replicas != n {
				t.Fatalf("after scaling to %d: %d replicasets; want one of %d", n, len(rss), n)
			}
		}
	})

	t.Run("a new image rolls out within the bounds", func(t *testing.T) {
		f := follow(t, c, ns, "web", 3, 2, nil)
		sizes := specs(t, c, ns)
		edit(t, c, ns, "web", setImage("weir.local/echo:v2", "image v2"))
		d := waitComplete(t, c, ns, "web", "weir.local/echo:v2")
		// Per replica: a new pod, its readiness, an old pod's deletion.
		if n := f.finish(t); n < 1+3*2 {
			t.Errorf("checked %d states; a rollout of 2 replicas passes at least 7", n)
		}
		_, byImage := replicaSets(t, c, d)
		v2 := byImage["weir.local/echo:v2"]
		if v2 == nil || v2.Name == v1.Name || d.Annotations[deployment.RevisionAnnotation] != "2" || v2.Annotations[deployment.RevisionAnnotation] != "2" {
			t.Fatalf("want a new replicaset at revision 2; deployment revision %q", d.Annotations[deployment.RevisionAnnotation])
		}
		if got := sizes()[v1.Name]; !slices.Equal(got, []int32{2, 1, 0}) {
			t.Errorf("old replicaset sizes %v; want 2, 1, 0 (one step per new pod available)", got)
		}
		if diff := history(t, c, d); !slices.Equal(diff, []string{"1 apply v1", "2 image v2"}) {
			t.Errorf("history %q", diff)
		}
	})

	t.Run("undo to revision 1", func(t *testing.T) {
		f := follow(t, c, ns, "web", 3, 2, nil)
		d, err := c.AppsV1().Deployments(ns).Get(t.Context(), "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rss, _ := replicaSets(t, c, d)
		back, err := deployment.RollbackTo(d, rss, 1)
		if err != nil {
			t.Fatalf("RollbackTo: %v", err)
		}
		if _, err := c.AppsV1().Deployments(ns).Update(t.Context(), back, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("write the rollback: %v", err)
		}
		d = waitComplete(t, c, ns, "web", "weir.local/echo:v1")
		f.finish(t)
		_, byImage := replicaSets(t, c, d)
		old := byImage["weir.local/echo:v1"]
		if old.Name != v1.Name || *old.Spec.Replicas != 2 {
			t.Fatalf("v1 is served by %s at %d; want the first replicaset %s back at 2", old.Name, *old.Spec.Replicas, v1.Name)
		}
		if old.Annotations[deployment.RevisionAnnotation] != "3" || old.Annotations[deployment.RevisionHistoryAnnotation] != "1" ||
			d.Annotations[deployment.RevisionAnnotation] != "3" {
			t.Errorf("revision %q history %q deployment %q; want 3, 1, 3", old.Annotations[deployment.RevisionAnnotation],
				old.Annotations[deployment.RevisionHistoryAnnotation], d.Annotations[deployment.RevisionAnnotation])
		}
		if got := history(t, c, d); !slices.Equal(got, []string{"2 image v2", "3 apply v1"}) {
			t.Errorf("history %q", got)
		}
		if _, err := deployment.RollbackTo(d, rss, 1); err == nil {
			t.Errorf("rolling back to the current template again did not say so")
		}
	})

	t.Run("pause after the first new pod, resume", func(t *testing.T) {
		agent.hold("weir.local/echo:v3")
		sizes := specs(t, c, ns)
		edit(t, c, ns, "web", setImage("weir.local/echo:v3", "image v3 canary"))
		var v3 *appsv1.ReplicaSet
		cluster.Eventually(t, wait, "the first v3 pod", func() (bool, error) {
			d, err := c.AppsV1().Deployments(ns).Get(t.Context(), "web", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			_, byImage := replicaSets(t, c, d)
			v3 = byImage["weir.local/echo:v3"]
			return v3 != nil && v3.Status.Replicas == 1, nil
		})
		edit(t, c, ns, "web", func(d *appsv1.Deployment) { d.Spec.Paused = true })
		waitDeployment(t, c, ns, "web", "paused", func(d *appsv1.Deployment) bool {
			p := progressing(d)
			return p != nil && p.Reason == deployment.ReasonPaused
		})
		// The canary turns ready; paused, the Deployment must not move on.
		agent.release("weir.local/echo:v3")
		d := waitDeployment(t, c, ns, "web", "the canary available", func(d *appsv1.Deployment) bool {
			return d.Status.AvailableReplicas == 3 && d.Status.UpdatedReplicas == 1
		})
		_, byImage := replicaSets(t, c, d)
		if got, want := [2]int32{*byImage["weir.local/echo:v3"].Spec.Replicas, *byImage["weir.local/echo:v1"].Spec.Replicas}, [2]int32{1, 2}; got != want {
			t.Fatalf("paused with the canary available: v3, v1 sizes %v; want %v", got, want)
		}
		edit(t, c, ns, "web", func(d *appsv1.Deployment) { d.Spec.Paused = false })
		d = waitComplete(t, c, ns, "web", "weir.local/echo:v3")
		seen := sizes()
		if got := seen[v3.Name]; !slices.Equal(got, []int32{1, 2}) {
			t.Errorf("v3 sizes %v; want 1 (paused there), then 2", got)
		}
		if got := history(t, c, d); !slices.Equal(got, []string{"2 image v2", "3 apply v1", "4 image v3 canary"}) {
			t.Errorf("history %q", got)
		}
	})

	t.Run("a template that never turns ready exceeds the progress deadline", func(t *testing.T) {
		edit(t, c, ns, "web", func(d *appsv1.Deployment) {
			setImage("weir.local/never", "never ready")(d)
			d.Spec.ProgressDeadlineSeconds = new(int32(3))
		})
		d := waitDeployment(t, c, ns, "web", "progress deadline exceeded", func(d *appsv1.Deployment) bool {
			p := progressing(d)
			return p != nil && p.Status == corev1.ConditionFalse && p.Reason == deployment.ReasonProgressDeadlineExceeded
		})
		_, byImage := replicaSets(t, c, d)
		old, stuck := byImage["weir.local/echo:v3"], byImage["weir.local/never"]
		if old == nil || stuck == nil || *old.Spec.Replicas != 2 || old.Status.AvailableReplicas != 2 || *stuck.Spec.Replicas != 1 || stuck.Status.AvailableReplicas != 0 {
			t.Fatalf("old %+v new %+v; want the old pods serving (2 available) beside one unready new pod", old.Status, stuck.Status)
		}
		if d.Status.AvailableReplicas != 2 || d.Status.UnavailableReplicas != 1 {
			t.Errorf("deployment available %d unavailable %d; want 2 and 1", d.Status.AvailableReplicas, d.Status.UnavailableReplicas)
		}
		for _, cond := range d.Status.Conditions {
			if cond.Type == appsv1.DeploymentAvailable && cond.Status != corev1.ConditionTrue {
				t.Errorf("Available = %s; the old pods still serve", cond.Status)
			}
		}
	})
}

// TestDeploymentRecreate: with Recreate, no pod of the new template
// exists while any pod of the old one does, terminating ones included
// (the pods are bound to a node, so deletion waits for the "agent").
func TestDeploymentRecreate(t *testing.T) {
	s := cluster.Start(t, cluster.WithLoops(loops()))
	c := s.Client(t)
	ns := namespace(t, c, "recreate")
	startAgent(t, c, ns)
	labels := map[string]string{"app": "batch"}
	if _, err := c.AppsV1().Deployments(ns).Create(t.Context(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "batch", Annotations: map[string]string{}},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{NodeName: "node-a",
					Containers: []corev1.Container{{Name: "batch", Image: "weir.local/echo:v1"}}},
			},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	waitComplete(t, c, ns, "batch", "weir.local/echo:v1")
	f := follow(t, c, ns, "batch", 3, 0, func(images map[string]int) string {
		if images["weir.local/echo:v1"] > 0 && images["weir.local/echo:v2"] > 0 {
			return fmt.Sprintf("old and new pods together: %v", images)
		}
		return ""
	})
	edit(t, c, ns, "batch", setImage("weir.local/echo:v2", "v2"))
	d := waitComplete(t, c, ns, "batch", "weir.local/echo:v2")
	f.finish(t)
	if _, byImage := replicaSets(t, c, d); *byImage["weir.local/echo:v1"].Spec.Replicas != 0 {
		t.Errorf("old replicaset not at zero")
	}
}
