package deployment

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func rollingDeployment(replicas int32, surge, unavailable intstr.IntOrString) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "d-uid", Generation: 1},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(replicas),
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable}},
		},
	}
}

func simRS(name string, replicas int32, age int) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(age) * time.Minute))},
		Spec:       appsv1.ReplicaSetSpec{Replicas: new(replicas)},
	}
}

func TestFenceposts(t *testing.T) {
	i, s := intstr.FromInt32, intstr.FromString
	tests := []struct {
		replicas               int32
		surge, unavail         intstr.IntOrString
		wantSurge, wantUnavail int32
	}{
		{10, s("25%"), s("25%"), 3, 2}, // surge rounds up, unavailable down
		{1, s("25%"), s("25%"), 1, 0},
		{1, i(0), s("25%"), 0, 1}, // both 0: one unavailable
		{4, i(0), i(0), 0, 1},
		{5, s("100%"), s("100%"), 5, 5},
		{5, i(1), i(7), 1, 5}, // unavailable capped at replicas
		{0, i(1), i(1), 1, 0},
	}
	if len(tests) == 0 {
		t.Fatal("empty table")
	}
	for _, tc := range tests {
		d := rollingDeployment(tc.replicas, tc.surge, tc.unavail)
		if got, want := [2]int32{maxSurge(d), maxUnavailable(d)}, [2]int32{tc.wantSurge, tc.wantUnavail}; got != want {
			t.Errorf("replicas %d surge %s unavailable %s: resolved %v, want %v", tc.replicas, tc.surge.String(), tc.unavail.String(), got, want)
		}
	}
	r := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: new(int32(3)), Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}}}
	if maxSurge(r) != 0 || maxUnavailable(r) != 0 {
		t.Errorf("Recreate resolves to surge %d unavailable %d, want 0 and 0", maxSurge(r), maxUnavailable(r))
	}
}

// rollout simulates a rolling update from an old ReplicaSet with every
// pod available to a new one. Each round the Deployment takes `lag` steps
// (its ReplicaSet controllers not having acted in between, as when their
// caches lag), then the ReplicaSets create their missing pods, then
// delete their surplus (not available first, as the ReplicaSet
// controller ranks them), then the test, playing the nodes, makes some
// waiting new pods available. The bounds are checked after every move.
type rollout struct {
	t                 *testing.T
	d                 *appsv1.Deployment
	newRS             *appsv1.ReplicaSet
	old               []*appsv1.ReplicaSet
	active, available map[string]int32
	maxTotal, minAvl  int32
	round             int
	log               []string
}

func newRollout(t *testing.T, d *appsv1.Deployment, olds ...*appsv1.ReplicaSet) *rollout {
	r := &rollout{t: t, d: d, newRS: simRS("new", 0, 100), old: olds,
		active: map[string]int32{}, available: map[string]int32{}}
	for _, rs := range olds {
		r.active[rs.Name], r.available[rs.Name] = rsReplicas(rs), rsReplicas(rs)
	}
	r.maxTotal = replicas(d) + maxSurge(d)
	r.minAvl = replicas(d) - maxUnavailable(d)
	return r
}

func (r *rollout) all() []*appsv1.ReplicaSet { return append([]*appsv1.ReplicaSet{r.newRS}, r.old...) }

func (r *rollout) pods() map[string]podCounts {
	out := map[string]podCounts{}
	for _, rs := range r.all() {
		out[rs.Name] = podCounts{Active: r.active[rs.Name], Available: r.available[rs.Name]}
	}
	return out
}

func (r *rollout) check(after string) {
	r.t.Helper()
	var total, avail int32
	var state []string
	for _, rs := range r.all() {
		total += r.active[rs.Name]
		avail += r.available[rs.Name]
		state = append(state, fmt.Sprintf("%s spec %d pods %d available %d", rs.Name, rsReplicas(rs), r.active[rs.Name], r.available[rs.Name]))
	}
	r.log = append(r.log, fmt.Sprintf("round %d %s: %s", r.round, after, strings.Join(state, "; ")))
	if total > r.maxTotal || avail < r.minAvl {
		r.t.Fatalf("after %s in round %d: %d pods (max %d), %d available (min %d)\n%s",
			after, r.round, total, r.maxTotal, avail, r.minAvl, strings.Join(r.log, "\n"))
	}
}

func (r *rollout) step() bool {
	moved := false
	for name, n := range rollingStep(r.d, r.newRS, r.old, r.pods()) {
		for _, rs := range r.all() {
			if rs.Name == name && rsReplicas(rs) != n {
				rs.Spec.Replicas = new(n)
				moved = true
			}
		}
	}
	return moved
}

func (r *rollout) reconcileReplicaSets() {
	for _, rs := range r.all() {
		if n := rsReplicas(rs); r.active[rs.Name] < n {
			r.active[rs.Name] = n
		}
	}
	r.check("creates")
	for _, rs := range r.all() {
		n := rsReplicas(rs)
		surplus := r.active[rs.Name] - n
		if surplus <= 0 {
			continue
		}
		waiting := r.active[rs.Name] - r.available[rs.Name]
		r.available[rs.Name] -= max(surplus-waiting, 0)
		r.active[rs.Name] = n
	}
	r.check("deletes")
}

func (r *rollout) done() bool {
	want := replicas(r.d)
	if rsReplicas(r.newRS) != want || r.active["new"] != want || r.available["new"] != want {
		return false
	}
	for _, rs := range r.old {
		if rsReplicas(rs) != 0 || r.active[rs.Name] != 0 {
			return false
		}
	}
	return true
}

// TestRollingUpdateBounds is acceptance 1: every replicas × maxSurge ×
// maxUnavailable combination, under several speeds of pods turning
// available and with or without lag, keeps both bounds at every move and
// ends with every replica on the new template.
func TestRollingUpdateBounds(t *testing.T) {
	values := []intstr.IntOrString{intstr.FromInt32(0), intstr.FromInt32(1), intstr.FromString("25%"), intstr.FromString("50%"), intstr.FromString("100%")}
	speeds := []struct {
		name string
		// ready is how many of the waiting new pods turn available in a round.
		ready func(round int, waiting int32) int32
	}{
		{"all at once", func(_ int, w int32) int32 { return w }},
		{"one at a time", func(_ int, w int32) int32 { return min(w, 1) }},
		{"every third round", func(r int, w int32) int32 {
			if r%3 == 2 {
				return w
			}
			return 0
		}},
	}
	cases := 0
	for _, replicas := range []int32{1, 2, 5, 10} {
		for _, surge := range values {
			for _, unavail := range values {
				for _, sp := range speeds {
					for _, lag := range []int{1, 2} {
						name := fmt.Sprintf("replicas=%d/surge=%s/unavailable=%s/%s/lag=%d", replicas, surge.String(), unavail.String(), sp.name, lag)
						t.Run(name, func(t *testing.T) {
							d := rollingDeployment(replicas, surge, unavail)
							r := newRollout(t, d, simRS("old", replicas, 0))
							r.check("start")
							for r.round = 0; !r.done(); r.round++ {
								if r.round > 20*int(replicas)+20 {
									t.Fatalf("no end after %d rounds\n%s", r.round, strings.Join(r.log, "\n"))
								}
								for range lag {
									r.step()
									r.check("deployment step")
								}
								r.reconcileReplicaSets()
								waiting := r.active["new"] - r.available["new"]
								r.available["new"] += sp.ready(r.round, waiting)
								r.check("pods ready")
							}
							if r.step() {
								t.Fatalf("a finished rollout still moves\n%s", strings.Join(r.log, "\n"))
							}
						})
						cases++
					}
				}
			}
		}
	}
	if cases != 4*5*5*3*2 {
		t.Fatalf("ran %d cases", cases)
	}
}

// TestRollingUpdateThroughSeveralTemplates starts from two old
// ReplicaSets (a rollout interrupted by another) and from old pods that
// never became ready: the old ones are drained oldest first, unready pods
// go before available ones, and the bounds hold.
func TestRollingUpdateThroughSeveralTemplates(t *testing.T) {
	d := rollingDeployment(6, intstr.FromInt32(2), intstr.FromInt32(1))
	r := newRollout(t, d, simRS("oldest", 3, 0), simRS("older", 3, 10))
	r.available["older"] = 2 // one never turned ready
	r.check("start")
	for r.round = 0; !r.done(); r.round++ {
		if r.round > 100 {
			t.Fatalf("no end\n%s", strings.Join(r.log, "\n"))
		}
		r.step()
		r.check("deployment step")
		if r.round == 0 && rsReplicas(r.old[1]) != 2 {
			t.Fatalf("first step left older at %d; want its unready pod removed first\n%s", rsReplicas(r.old[1]), strings.Join(r.log, "\n"))
		}
		r.reconcileReplicaSets()
		r.available["new"] = r.active["new"]
		r.check("pods ready")
	}
}

// TestRollingUpdateStalls: new pods that never become available stop the
// rollout after the surge, with the old pods still serving.
func TestRollingUpdateStalls(t *testing.T) {
	for _, replicas := range []int32{1, 2, 5, 10} {
		t.Run(fmt.Sprint(replicas), func(t *testing.T) {
			d := rollingDeployment(replicas, intstr.FromString("25%"), intstr.FromString("25%"))
			r := newRollout(t, d, simRS("old", replicas, 0))
			for r.round = 0; r.round < 10; r.round++ {
				r.step()
				r.check("deployment step")
				r.reconcileReplicaSets()
			}
			if r.step() {
				t.Fatalf("a stalled rollout still moves\n%s", strings.Join(r.log, "\n"))
			}
			if got, want := r.available["old"], replicas-maxUnavailable(d); got != want {
				t.Fatalf("old available %d, want %d (replicas − maxUnavailable)\n%s", got, want, strings.Join(r.log, "\n"))
			}
		})
	}
}

// TestRecreate: old ReplicaSets go to zero and their pods, terminating
// ones included, are gone before the new ReplicaSet is made or grows.
func TestRecreate(t *testing.T) {
	for _, replicas := range []int32{1, 2, 5, 10} {
		t.Run(fmt.Sprint(replicas), func(t *testing.T) {
			d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: new(replicas),
				Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}}}
			newRS, old := simRS("new", 0, 100), []*appsv1.ReplicaSet{simRS("old-a", replicas, 0), simRS("old-b", 1, 5)}
			pods := map[string]podCounts{"old-a": {Active: replicas, Available: replicas}, "old-b": {Active: 1}}
			created := false
			var log []string
			for round := 0; ; round++ {
				if round > 20 {
					t.Fatalf("no end\n%s", strings.Join(log, "\n"))
				}
				sz, create := recreateStep(d, newRS, old, pods)
				log = append(log, fmt.Sprintf("round %d: %v create=%v pods=%v", round, sz, create, pods))
				oldLeft := int32(0)
				for _, rs := range old {
					oldLeft += pods[rs.Name].Active + pods[rs.Name].Terminating
				}
				if (create || sz["new"] > 0) && oldLeft > 0 {
					t.Fatalf("new ReplicaSet made or grown with %d old pods left\n%s", oldLeft, strings.Join(log, "\n"))
				}
				created = created || create
				for name, n := range sz {
					for _, rs := range append(old, newRS) {
						if rs.Name == name {
							rs.Spec.Replicas = new(n)
						}
					}
				}
				// Deleted pods terminate for one round (their agent's grace
				// period), then go.
				for _, rs := range old {
					p := pods[rs.Name]
					p.Terminating = max(p.Active-rsReplicas(rs), 0)
					p.Active, p.Available = min(p.Active, rsReplicas(rs)), min(p.Available, rsReplicas(rs))
					pods[rs.Name] = p
				}
				if created && rsReplicas(newRS) == replicas {
					break
				}
			}
		})
	}
}

func TestScaleStep(t *testing.T) {
	// maxSurge 0 and maxUnavailable 1 (Kubernetes' test fixture), so
	// max-replicas is the old size.
	dep := func(replicas int32) *appsv1.Deployment {
		return rollingDeployment(replicas, intstr.FromInt32(0), intstr.FromInt32(1))
	}
	stamped := func(name string, n, desired int32, age int) *appsv1.ReplicaSet {
		rs := simRS(name, n, age)
		setReplicasAnnotations(rs, desired, desired)
		return rs
	}
	tests := []struct {
		name  string
		d     *appsv1.Deployment
		newRS *appsv1.ReplicaSet
		old   []*appsv1.ReplicaSet
		event bool
		want  sizes
	}{
		{name: "one active ReplicaSet takes it all", d: dep(12), newRS: stamped("new", 10, 10, 5), event: true, want: sizes{"new": 12}},
		{name: "proportional 5 to 10", d: dep(10), newRS: stamped("new", 2, 5, 5), old: []*appsv1.ReplicaSet{stamped("old", 3, 5, 0)}, event: true,
			want: sizes{"new": 4, "old": 6}},
		{name: "proportional 5 to 3", d: dep(3), newRS: stamped("new", 2, 5, 5), old: []*appsv1.ReplicaSet{stamped("old", 3, 5, 0)}, event: true,
			want: sizes{"new": 1, "old": 2}},
		{name: "proportional 9 to 4", d: dep(4), newRS: stamped("new", 8, 9, 5), old: []*appsv1.ReplicaSet{stamped("old", 1, 9, 0)}, event: true,
			want: sizes{"new": 4, "old": 0}},
		{name: "to zero", d: dep(0), newRS: stamped("new", 2, 5, 5), old: []*appsv1.ReplicaSet{stamped("old", 3, 5, 0)}, event: true,
			want: sizes{"new": 0, "old": 0}},
		{name: "paused mid-rollout without a scale stays", d: dep(5), newRS: stamped("new", 2, 5, 5), old: []*appsv1.ReplicaSet{stamped("old", 3, 5, 0)},
			want: sizes{}},
		{name: "none active: the newest old one", d: dep(3), old: []*appsv1.ReplicaSet{stamped("older", 0, 3, 0), stamped("newer", 0, 3, 5)},
			want: sizes{"newer": 3}},
		{name: "a saturated new ReplicaSet drains the old", d: dep(2),
			newRS: func() *appsv1.ReplicaSet { rs := stamped("new", 2, 2, 5); rs.Status.AvailableReplicas = 2; return rs }(),
			old:   []*appsv1.ReplicaSet{stamped("old", 1, 2, 0)}, want: sizes{"old": 0}},
	}
	if len(tests) == 0 {
		t.Fatal("empty table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, scaleStep(tc.d, tc.newRS, tc.old, tc.event)); diff != "" {
				t.Errorf("scaleStep (-want +got):\n%s", diff)
			}
		})
	}
}

func TestScalingEvent(t *testing.T) {
	d := rollingDeployment(5, intstr.FromInt32(1), intstr.FromInt32(0))
	rs := simRS("a", 3, 0)
	if scalingEvent(d, []*appsv1.ReplicaSet{rs}) {
		t.Errorf("a ReplicaSet never scaled by the Deployment reads as a scaling event")
	}
	setReplicasAnnotations(rs, 3, 4)
	if !scalingEvent(d, []*appsv1.ReplicaSet{rs, nil}) {
		t.Errorf("replicas 3 → 5 is not a scaling event")
	}
	rs.Spec.Replicas = new(int32(0))
	if scalingEvent(d, []*appsv1.ReplicaSet{rs}) {
		t.Errorf("an inactive ReplicaSet made a scaling event")
	}
}

// Pods of a ReplicaSet are counted by controller, state and availability.
func TestCountPods(t *testing.T) {
	rs := simRS("web-1", 3, 0)
	rs.UID, rs.Spec.MinReadySeconds = "rs-uid", 5
	owned := func(name string, f func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))}}}
		p.Status.Phase = corev1.PodRunning
		if f != nil {
			f(p)
		}
		return p
	}
	ready := func(at time.Time) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(at)}}
		}
	}
	pods := []*corev1.Pod{
		owned("available", ready(t0.Add(-time.Minute))),
		owned("just-ready", ready(t0)),
		owned("starting", nil),
		owned("going", func(p *corev1.Pod) { p.DeletionTimestamp = new(metav1.NewTime(t0)) }),
		owned("done", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
		{ObjectMeta: metav1.ObjectMeta{Name: "orphan"}},
	}
	got := countPods([]*appsv1.ReplicaSet{rs}, pods, t0)
	want := map[string]podCounts{"web-1": {Active: 3, Available: 1, Terminating: 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("countPods (-want +got):\n%s", diff)
	}
}
