package replicaset

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// pod builds a test pod; opts adjust it.
func pod(name string, opts ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name),
			Labels: map[string]string{"app": "web"}, CreationTimestamp: metav1.NewTime(t0)},
		Spec:   corev1.PodSpec{NodeName: "node-a"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func readySince(at time.Time) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{
			Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(at)})
	}
}

func created(at time.Time) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(at) }
}

func unscheduled(p *corev1.Pod) { p.Spec.NodeName = ""; p.Status.Phase = corev1.PodPending }
func pending(p *corev1.Pod)     { p.Status.Phase = corev1.PodPending }
func restarted(n int32) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", RestartCount: n}}
	}
}
func cost(v string) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Annotations = map[string]string{podDeletionCost: v} }
}

func names(pods []*corev1.Pod) []string {
	out := make([]string, len(pods))
	for i, p := range pods {
		out[i] = p.Name
	}
	return out
}

func TestRankForDeletion(t *testing.T) {
	tests := []struct {
		name string
		pods []*corev1.Pod
		want []string
	}{
		{
			name: "unscheduled, then not ready, then newest",
			pods: []*corev1.Pod{
				pod("old-ready", readySince(t0), created(t0)),
				pod("new-ready", readySince(t0), created(t0.Add(time.Minute))),
				pod("not-ready"),
				pod("unscheduled", unscheduled),
			},
			want: []string{"unscheduled", "not-ready", "new-ready", "old-ready"},
		},
		{
			name: "pending before running, both not ready",
			pods: []*corev1.Pod{pod("running"), pod("pending", pending)},
			want: []string{"pending", "running"},
		},
		{
			name: "an unscheduled pod goes before a scheduled pending one",
			pods: []*corev1.Pod{pod("pending", pending), pod("unscheduled", unscheduled)},
			want: []string{"unscheduled", "pending"},
		},
		{
			name: "lower deletion cost first, before readiness age",
			pods: []*corev1.Pod{
				pod("costly", readySince(t0.Add(time.Minute)), cost("100")),
				pod("cheap", readySince(t0), cost("-5")),
				pod("default", readySince(t0)),
			},
			want: []string{"cheap", "default", "costly"},
		},
		{
			name: "ready for less time first",
			pods: []*corev1.Pod{pod("long", readySince(t0)), pod("short", readySince(t0.Add(time.Hour)))},
			want: []string{"short", "long"},
		},
		{
			name: "more restarts first, then newest",
			pods: []*corev1.Pod{
				pod("calm-old"),
				pod("crashy", restarted(7)),
				pod("calm-new", created(t0.Add(time.Second))),
			},
			want: []string{"crashy", "calm-new", "calm-old"},
		},
	}
	if len(tests) == 0 {
		t.Fatal("empty table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := names(tc.pods)
			got := names(rankForDeletion(tc.pods))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("rankForDeletion (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, names(tc.pods)); diff != "" {
				t.Errorf("rankForDeletion reordered its input (-before +after):\n%s", diff)
			}
		})
	}
}

func TestDiff(t *testing.T) {
	many := make([]*corev1.Pod, 0, 700)
	for i := range 700 {
		many = append(many, pod(fmt.Sprintf("p%03d", i)))
	}
	tests := []struct {
		name       string
		want       int32
		active     []*corev1.Pod
		wantCreate int
		wantDelete []string
	}{
		{name: "at scale", want: 2, active: []*corev1.Pod{pod("a"), pod("b")}},
		{name: "from zero", want: 3, wantCreate: 3},
		{name: "a burst is capped", want: 1000, active: many[:10], wantCreate: burstReplicas},
		{
			name: "surplus deletes the first ranked", want: 1,
			active:     []*corev1.Pod{pod("ready", readySince(t0)), pod("unscheduled", unscheduled), pod("not-ready")},
			wantDelete: []string{"unscheduled", "not-ready"},
		},
		{name: "a mass deletion is capped", want: 0, active: many, wantDelete: names(rankForDeletion(many))[:burstReplicas]},
	}
	if len(tests) == 0 {
		t.Fatal("empty table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := diff(tc.want, tc.active)
			if got.Create != tc.wantCreate {
				t.Errorf("create = %d, want %d", got.Create, tc.wantCreate)
			}
			if diff := cmp.Diff(tc.wantDelete, names(got.Delete), cmpEmpty); diff != "" {
				t.Errorf("delete (-want +got):\n%s", diff)
			}
		})
	}
}

// cmpEmpty treats nil and empty slices alike.
var cmpEmpty = cmp.Transformer("empty", func(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
})

func testRS(replicas int32, minReady int32) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-abc", Namespace: "ns", UID: "rs-uid", Generation: 4},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: new(replicas), MinReadySeconds: minReady,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "tier": "front"},
					Annotations: map[string]string{"note": "x"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "weir.local/echo"}}},
			},
		},
	}
}

func TestStatus(t *testing.T) {
	full := func(p *corev1.Pod) { p.Labels = map[string]string{"app": "web", "tier": "front"} }
	boom := errors.New("create pods: quota")
	failed := appsv1.ReplicaSetCondition{Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue,
		LastTransitionTime: metav1.NewTime(t0), Reason: reasonFailedCreate, Message: "create pods: quota"}
	tests := []struct {
		name        string
		rs          *appsv1.ReplicaSet
		active      []*corev1.Pod
		terminating int32
		failure     error
		want        appsv1.ReplicaSetStatus
	}{
		{
			name: "counts without minReadySeconds",
			rs:   testRS(3, 0),
			active: []*corev1.Pod{
				pod("a", full, readySince(t0)), pod("b", readySince(t0)), pod("c", full),
			},
			terminating: 2,
			want: appsv1.ReplicaSetStatus{Replicas: 3, FullyLabeledReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2,
				ObservedGeneration: 4, TerminatingReplicas: new(int32(2))},
		},
		{
			name:   "minReadySeconds holds back recently ready pods",
			rs:     testRS(2, 10),
			active: []*corev1.Pod{pod("a", readySince(t0.Add(-11*time.Second))), pod("b", readySince(t0.Add(-5*time.Second)))},
			want: appsv1.ReplicaSetStatus{Replicas: 2, ReadyReplicas: 2, AvailableReplicas: 1,
				ObservedGeneration: 4, TerminatingReplicas: new(int32(0))},
		},
		{
			name:    "a failure to create sets ReplicaFailure",
			rs:      testRS(3, 0),
			active:  []*corev1.Pod{pod("a")},
			failure: boom,
			want: appsv1.ReplicaSetStatus{Replicas: 1, ObservedGeneration: 4, TerminatingReplicas: new(int32(0)),
				Conditions: []appsv1.ReplicaSetCondition{failed}},
		},
		{
			name: "a failure to delete says so",
			rs:   testRS(0, 0), active: []*corev1.Pod{pod("a")}, failure: boom,
			want: appsv1.ReplicaSetStatus{Replicas: 1, ObservedGeneration: 4, TerminatingReplicas: new(int32(0)),
				Conditions: []appsv1.ReplicaSetCondition{{Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue,
					LastTransitionTime: metav1.NewTime(t0), Reason: reasonFailedDelete, Message: "create pods: quota"}}},
		},
		{
			name: "a clean pass clears ReplicaFailure",
			rs: func() *appsv1.ReplicaSet {
				rs := testRS(1, 0)
				rs.Status.Conditions = []appsv1.ReplicaSetCondition{failed}
				return rs
			}(),
			active: []*corev1.Pod{pod("a")},
			want:   appsv1.ReplicaSetStatus{Replicas: 1, ObservedGeneration: 4, TerminatingReplicas: new(int32(0))},
		},
	}
	if len(tests) == 0 {
		t.Fatal("empty table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := status(tc.rs, tc.active, tc.terminating, tc.failure, t0)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNextAvailable(t *testing.T) {
	active := []*corev1.Pod{
		pod("long-ready", readySince(t0.Add(-time.Minute))),
		pod("soon", readySince(t0.Add(-7*time.Second))),
		pod("later", readySince(t0.Add(-2*time.Second))),
		pod("not-ready"),
	}
	wait, ok := nextAvailable(active, 10, t0)
	if !ok || wait < 3*time.Second || wait > 3*time.Second+100*time.Millisecond {
		t.Errorf("nextAvailable = %v, %v; want just over 3s, true", wait, ok)
	}
	if _, ok := nextAvailable(active, 0, t0); ok {
		t.Errorf("nextAvailable without minReadySeconds wants a wait")
	}
	if _, ok := nextAvailable(active[:1], 10, t0); ok {
		t.Errorf("nextAvailable with every ready pod available wants a wait")
	}
}

func TestNewPod(t *testing.T) {
	rs := testRS(1, 0)
	p := newPod(rs)
	if p.GenerateName != "web-abc-" || p.Name != "" || p.Namespace != "ns" {
		t.Errorf("name = %q generateName %q namespace %q; want generated from web-abc- in ns", p.Name, p.GenerateName, p.Namespace)
	}
	if diff := cmp.Diff(rs.Spec.Template.Labels, p.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	ref := metav1.GetControllerOf(p)
	if ref == nil || ref.UID != rs.UID || ref.Kind != "ReplicaSet" || ref.APIVersion != "apps/v1" || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
		t.Errorf("controller reference = %+v; want the ReplicaSet, blocking owner deletion", ref)
	}
	p.Labels["tier"] = "changed"
	p.Spec.Containers[0].Image = "changed"
	if rs.Spec.Template.Labels["tier"] != "front" || rs.Spec.Template.Spec.Containers[0].Image != "weir.local/echo" {
		t.Errorf("newPod shares memory with the template")
	}
}

func TestClaim(t *testing.T) {
	rs := testRS(3, 0)
	sel := labels.SelectorFromSet(map[string]string{"app": "web"})
	ours := func(p *corev1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))}
	}
	theirs := func(p *corev1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "other", UID: "other", Controller: new(true)}}
	}
	relabelled := func(p *corev1.Pod) { p.Labels = map[string]string{"app": "debug"} }
	deleting := func(p *corev1.Pod) { p.DeletionTimestamp = new(metav1.NewTime(t0)) }
	pods := []*corev1.Pod{
		pod("owned", ours), pod("moved-out", ours, relabelled), pod("orphan"),
		pod("orphan-elsewhere", relabelled), pod("someone-elses", theirs), pod("orphan-going", deleting),
	}
	owned, adopt, release := Claim(rs, sel, pods)
	got := map[string][]string{"owned": names(owned), "adopt": names(adopt), "release": names(release)}
	want := map[string][]string{"owned": {"owned"}, "adopt": {"orphan"}, "release": {"moved-out"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Claim (-want +got):\n%s", diff)
	}

	rs.DeletionTimestamp = new(metav1.NewTime(t0))
	owned, adopt, release = Claim(rs, sel, pods)
	got = map[string][]string{"owned": names(owned), "adopt": names(adopt), "release": names(release)}
	want = map[string][]string{"owned": {"owned"}, "adopt": {}, "release": {}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Claim by a ReplicaSet being deleted (-want +got):\n%s", diff)
	}
	if _, adopt, _ := Claim(testRS(1, 0), labels.Everything(), pods); len(adopt) != 0 {
		t.Errorf("an empty selector adopts %v", names(adopt))
	}
}

// TestPatches applies the adopt and release patches the way the server
// does and checks the owner references they leave.
func TestPatches(t *testing.T) {
	rs := testRS(1, 0)
	ref := *metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))
	other := metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "cm", UID: "cm-uid"}
	orig := []byte(`{"metadata":{"name":"p","uid":"pod-uid","ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"cm","uid":"cm-uid"}]}}`)

	adopted, err := strategicpatch.StrategicMergePatch(orig, AdoptPatch(ref, "pod-uid"), &corev1.Pod{})
	if err != nil {
		t.Fatalf("apply adopt patch: %v", err)
	}
	var p corev1.Pod
	if err := json.Unmarshal(adopted, &p); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]metav1.OwnerReference{ref, other}, p.OwnerReferences); diff != "" {
		t.Errorf("owner references after adoption (-want +got):\n%s", diff)
	}
	released, err := strategicpatch.StrategicMergePatch(adopted, ReleasePatch(rs.UID, "pod-uid"), &corev1.Pod{})
	if err != nil {
		t.Fatalf("apply release patch: %v", err)
	}
	p = corev1.Pod{}
	if err := json.Unmarshal(released, &p); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]metav1.OwnerReference{other}, p.OwnerReferences); diff != "" {
		t.Errorf("owner references after release (-want +got):\n%s", diff)
	}
	if p.UID != "pod-uid" {
		t.Errorf("uid = %q; the patches must carry the pod's uid as a precondition", p.UID)
	}
}

func TestPodAvailable(t *testing.T) {
	p := pod("a", readySince(t0))
	for _, tc := range []struct {
		minReady int32
		now      time.Time
		want     bool
	}{
		{0, t0, true},
		{5, t0.Add(5 * time.Second), false},
		{5, t0.Add(5*time.Second + time.Millisecond), true},
	} {
		if got := PodAvailable(p, tc.minReady, tc.now); got != tc.want {
			t.Errorf("PodAvailable(minReadySeconds %d, at +%v) = %v, want %v", tc.minReady, tc.now.Sub(t0), got, tc.want)
		}
	}
	if PodAvailable(pod("b"), 0, t0) || PodReady(pod("b")) {
		t.Errorf("a pod without a Ready condition reads as ready")
	}
}

func TestSlowStart(t *testing.T) {
	var calls atomic.Int32
	n, err := slowStart(10, func() error { calls.Add(1); return nil })
	if n != 10 || err != nil || calls.Load() != 10 {
		t.Errorf("slowStart all good = %d, %v after %d calls; want 10, nil, 10", n, err, calls.Load())
	}
	calls.Store(0)
	boom := errors.New("boom")
	n, err = slowStart(100, func() error {
		if calls.Add(1) > 3 {
			return boom
		}
		return nil
	})
	// Batches 1 and 2 pass (3 calls); the batch of 4 fails and stops it.
	if !errors.Is(err, boom) || calls.Load() != 7 || n != 3 {
		t.Errorf("slowStart failing = %d, %v after %d calls; want 3, boom, 7", n, err, calls.Load())
	}
}
