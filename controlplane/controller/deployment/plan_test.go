package deployment

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// web is the Deployment of the decide tests: 3 replicas, 25%/25%
// (surge 1, unavailable 0), image given.
func web(image string, mods ...func(*appsv1.Deployment)) *appsv1.Deployment {
	d := rollingDeployment(3, intstr.FromString("25%"), intstr.FromString("25%"))
	d.Annotations = map[string]string{ChangeCauseAnnotation: "image " + image}
	d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	d.Spec.Template = corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}},
	}
	d.Spec.RevisionHistoryLimit = new(int32(10))
	d.Spec.ProgressDeadlineSeconds = new(int32(600))
	for _, m := range mods {
		m(d)
	}
	return d
}

// ownedRS is the ReplicaSet d would make for image, at revision rev,
// scaled (and stamped) to n with avail available pods.
func ownedRS(d *appsv1.Deployment, image string, rev int64, n, avail int32, age int) *appsv1.ReplicaSet {
	rs := buildReplicaSet(web(image), rev)
	rs.OwnerReferences[0].UID = d.UID
	rs.UID = types.UID("uid-" + rs.Name)
	rs.CreationTimestamp = metav1.NewTime(t0.Add(time.Duration(age) * time.Minute))
	rs.Spec.Replicas = new(n)
	rs.Status = appsv1.ReplicaSetStatus{Replicas: n, ReadyReplicas: avail, AvailableReplicas: avail}
	setReplicasAnnotations(rs, replicas(d), replicas(d)+maxSurge(d))
	return rs
}

// steady gives d the status of a finished rollout of n replicas.
func steady(d *appsv1.Deployment, n int32) {
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
		Conditions: []appsv1.DeploymentCondition{
			condition(appsv1.DeploymentAvailable, corev1.ConditionTrue, ReasonMinimumReplicasAvailable, "", t0.Add(-time.Hour)),
			condition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonNewReplicaSetAvailable, "", t0.Add(-time.Hour)),
		}}
}

func counted(rss ...*appsv1.ReplicaSet) map[string]podCounts {
	out := map[string]podCounts{}
	for _, rs := range rss {
		out[rs.Name] = podCounts{Active: rs.Status.Replicas, Available: rs.Status.AvailableReplicas}
	}
	return out
}

// outcome is the part of a plan the table compares.
type outcome struct {
	Create      string
	Update      []string
	Revision    string
	Delete      []string
	Progressing string
	Available   string
	Recheck     bool
}

func summarize(p plan) outcome {
	var o outcome
	rs := func(r *appsv1.ReplicaSet) string {
		return fmt.Sprintf("%s=%d rev %s", r.Name, rsReplicas(r), r.Annotations[RevisionAnnotation])
	}
	if p.create != nil {
		o.Create = rs(p.create)
	}
	for _, u := range p.update {
		o.Update = append(o.Update, rs(u))
	}
	if p.annotations != nil {
		o.Revision = p.annotations[RevisionAnnotation]
	}
	for _, d := range p.delete {
		o.Delete = append(o.Delete, d.Name)
	}
	if c := getCondition(&p.status, appsv1.DeploymentProgressing); c != nil {
		o.Progressing = string(c.Status) + " " + c.Reason
	}
	if c := getCondition(&p.status, appsv1.DeploymentAvailable); c != nil {
		o.Available = string(c.Status)
	}
	o.Recheck = p.recheck > 0
	return o
}

func TestDecide(t *testing.T) {
	name := func(image string) string { return buildReplicaSet(web(image), 1).Name }
	type scenario struct {
		d    *appsv1.Deployment
		rss  []*appsv1.ReplicaSet
		pods map[string]podCounts
	}
	tests := []struct {
		name  string
		setup func() scenario
		want  outcome
	}{
		{
			name: "the first sync makes revision 1 at full size",
			setup: func() scenario {
				return scenario{d: web("v1")}
			},
			want: outcome{Create: name("v1") + "=3 rev 1", Revision: "1", Progressing: "True NewReplicaSetCreated", Available: "False", Recheck: true},
		},
		{
			name: "a new template makes the next revision within the surge",
			setup: func() scenario {
				d := web("v2")
				v1 := ownedRS(d, "v1", 1, 3, 3, 0)
				d.Annotations[RevisionAnnotation] = "1"
				steady(d, 3)
				return scenario{d: d, rss: []*appsv1.ReplicaSet{v1}, pods: counted(v1)}
			},
			want: outcome{Create: name("v2") + "=1 rev 2", Revision: "2", Progressing: "True NewReplicaSetCreated", Available: "True", Recheck: true},
		},
		{
			name: "rollout restart (a template annotation) makes the next revision",
			setup: func() scenario {
				d := web("v1")
				d.Annotations[RevisionAnnotation] = "1"
				steady(d, 3)
				v1 := ownedRS(d, "v1", 1, 3, 3, 0)
				d.Spec.Template.Annotations = map[string]string{"kubectl.kubernetes.io/restartedAt": "2026-01-01T12:00:00Z"}
				return scenario{d: d, rss: []*appsv1.ReplicaSet{v1}, pods: counted(v1)}
			},
			want: outcome{Create: buildReplicaSet(web("v1", func(d *appsv1.Deployment) {
				d.Spec.Template.Annotations = map[string]string{"kubectl.kubernetes.io/restartedAt": "2026-01-01T12:00:00Z"}
			}), 1).Name + "=1 rev 2", Revision: "2", Progressing: "True NewReplicaSetCreated", Available: "True", Recheck: true},
		},
		{
			name: "a new pod available lets an old one go",
			setup: func() scenario {
				d := web("v2")
				d.Annotations[RevisionAnnotation] = "2"
				v1, v2 := ownedRS(d, "v1", 1, 3, 3, 0), ownedRS(d, "v2", 2, 1, 1, 5)
				return scenario{d: d, rss: []*appsv1.ReplicaSet{v1, v2}, pods: counted(v1, v2)}
			},
			want: outcome{Update: []string{name("v1") + "=2 rev 1"}, Progressing: "True ReplicaSetUpdated", Available: "True", Recheck: true},
		},
		{
			name: "a rollback makes the old ReplicaSet the newest revision",
			setup: func() scenario {
				d := web("v1")
				d.Annotations[RevisionAnnotation] = "2"
				steady(d, 3)
				v1, v2 := ownedRS(d, "v1", 1, 0, 0, 0), ownedRS(d, "v2", 2, 3, 3, 5)
				return scenario{d: d, rss: []*appsv1.ReplicaSet{v1, v2}, pods: counted(v1, v2)}
			},
			// As in Kubernetes, the condition moves with the first progress.
			want: outcome{Update: []string{name("v1") + "=1 rev 3"}, Revision: "3", Progressing: "True NewReplicaSetAvailable", Available: "True"},
		},
		{
			name: "paused: no new ReplicaSet, no progress",
			setup: func() scenario {
				d := web("v2", func(d *appsv1.Deployment) { d.Spec.Paused = true })
				d.Annotations[RevisionAnnotation] = "1"
				v1 := ownedRS(d, "v1", 1, 3, 3, 0)
				return scenario{d: d, rss: []*appsv1.ReplicaSet{v1}, pods: counted(v1)}
			},
			want: outcome{Progressing: "Unknown DeploymentPaused", Available: "True"},
		},
		{
			name: "paused mid-rollout: sizes stay",
			setup: func() scenario {
				d := web("v2", func(d *appsv1.Deployment) { d.Spec.Paused = true })
				d.Annotations[RevisionAnnotation] = "2"
				v1, v2 := ownedRS(d, "v1", 1, 3, 3, 0), ownedRS(d, "v2", 2, 1, 1, 5)
				return scenario{d: d, rss: []*appsv1.ReplicaSet{v1, v2}, pods: counted(v1, v2)}
			},
			want: outcome{Progressing: "Unknown DeploymentPaused", Available: "True"},
		},
		{
			name: "resumed: progress again",
			setup: func() scenario {
				d := web("v2")
				d.Annotations[RevisionAnnotation] = "2"
				d.Status.Conditions = []appsv1.DeploymentCondition{condition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, ReasonPaused, "", t0)}
				v1, v2 := ownedRS(d, "v1", 1, 3, 3, 0), ownedRS(d, "v2", 2, 1, 1, 5)
				return scenario{d: d, rss: []*appsv1.ReplicaSet{v1, v2}, pods: counted(v1, v2)}
			},
			want: outcome{Update: []string{name("v1") + "=2 rev 1"}, Progressing: "True ReplicaSetUpdated", Available: "True", Recheck: true},
		},
		{
			name: "complete: history trimmed to the limit",
			setup: func() scenario {
				d := web("v3", func(d *appsv1.Deployment) { d.Spec.RevisionHistoryLimit = new(int32(1)) })
				d.Annotations[RevisionAnnotation] = "3"
				v1, v2, v3 := ownedRS(d, "v1", 1, 0, 0, 0), ownedRS(d, "v2", 2, 0, 0, 5), ownedRS(d, "v3", 3, 3, 3, 10)
				return scenario{d: d, rss: []*appsv1.ReplicaSet{v2, v3, v1}, pods: counted(v1, v2, v3)}
			},
			want: outcome{Delete: []string{name("v1")}, Progressing: "True NewReplicaSetAvailable", Available: "True"},
		},
		{
			name: "no progress past the deadline",
			setup: func() scenario {
				d := web("v2")
				d.Annotations[RevisionAnnotation] = "2"
				v1, v2 := ownedRS(d, "v1", 1, 3, 3, 0), ownedRS(d, "v2", 2, 1, 0, 5)
				d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 4, UpdatedReplicas: 1, ReadyReplicas: 3, AvailableReplicas: 3, UnavailableReplicas: 1,
					Conditions: []appsv1.DeploymentCondition{condition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonReplicaSetUpdated, "", t0.Add(-601*time.Second))}}
				return scenario{d: d, rss: []*appsv1.ReplicaSet{v1, v2}, pods: counted(v1, v2)}
			},
			want: outcome{Progressing: "False ProgressDeadlineExceeded", Available: "True"},
		},
		{
			name: "within the deadline: look again when it passes",
			setup: func() scenario {
				d := web("v2")
				d.Annotations[RevisionAnnotation] = "2"
				v1, v2 := ownedRS(d, "v1", 1, 3, 3, 0), ownedRS(d, "v2", 2, 1, 0, 5)
				d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 4, UpdatedReplicas: 1, ReadyReplicas: 3, AvailableReplicas: 3, UnavailableReplicas: 1,
					Conditions: []appsv1.DeploymentCondition{condition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonReplicaSetUpdated, "", t0.Add(-599*time.Second))}}
				return scenario{d: d, rss: []*appsv1.ReplicaSet{v1, v2}, pods: counted(v1, v2)}
			},
			want: outcome{Progressing: "True ReplicaSetUpdated", Available: "True", Recheck: true},
		},
		{
			name: "replicas changed mid-rollout: proportional, no rollout step",
			setup: func() scenario {
				d := web("v2")
				d.Annotations[RevisionAnnotation] = "2"
				v1, v2 := ownedRS(d, "v1", 1, 3, 3, 0), ownedRS(d, "v2", 2, 1, 0, 5)
				d.Spec.Replicas = new(int32(6))
				return scenario{d: d, rss: []*appsv1.ReplicaSet{v1, v2}, pods: counted(v1, v2)}
			},
			want: outcome{Update: []string{name("v1") + "=6 rev 1", name("v2") + "=2 rev 2"}, Progressing: "True FoundNewReplicaSet", Available: "False"},
		},
		{
			name: "Recreate waits for terminating old pods",
			setup: func() scenario {
				d := web("v2", func(d *appsv1.Deployment) {
					d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
				})
				d.Annotations[RevisionAnnotation] = "1"
				v1 := ownedRS(d, "v1", 1, 0, 0, 0)
				return scenario{d: d, rss: []*appsv1.ReplicaSet{v1}, pods: map[string]podCounts{v1.Name: {Terminating: 2}}}
			},
			want: outcome{Available: "False"},
		},
		{
			name: "Recreate makes the new ReplicaSet once the old pods are gone",
			setup: func() scenario {
				d := web("v2", func(d *appsv1.Deployment) {
					d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
				})
				d.Annotations[RevisionAnnotation] = "1"
				v1 := ownedRS(d, "v1", 1, 0, 0, 0)
				return scenario{d: d, rss: []*appsv1.ReplicaSet{v1}, pods: counted(v1)}
			},
			want: outcome{Create: buildReplicaSet(web("v2", func(d *appsv1.Deployment) {
				d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
			}), 1).Name + "=3 rev 2", Revision: "2", Progressing: "True NewReplicaSetCreated", Available: "False", Recheck: true},
		},
		{
			name: "being deleted: status only",
			setup: func() scenario {
				d := web("v2", func(d *appsv1.Deployment) { d.DeletionTimestamp = new(metav1.NewTime(t0)) })
				v1 := ownedRS(d, "v1", 1, 3, 3, 0)
				return scenario{d: d, rss: []*appsv1.ReplicaSet{v1}, pods: counted(v1)}
			},
			want: outcome{Available: "True"},
		},
	}
	if len(tests) == 0 {
		t.Fatal("empty table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc := tc.setup()
			got := summarize(decide(snapshot{d: sc.d, rss: sc.rss, pods: sc.pods, now: t0}))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("decide (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecideNewReplicaSet checks what a created ReplicaSet carries.
func TestDecideNewReplicaSet(t *testing.T) {
	d := web("v1")
	d.Annotations[corev1.LastAppliedConfigAnnotation] = "{}"
	d.Spec.MinReadySeconds = 7
	p := decide(snapshot{d: d, now: t0})
	rs := p.create
	if rs == nil {
		t.Fatal("no ReplicaSet to create")
	}
	hash := rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
	if hash == "" || rs.Name != "web-"+hash || rs.Namespace != "ns" {
		t.Fatalf("name %s/%s with hash label %q; want ns/web-<hash>", rs.Namespace, rs.Name, hash)
	}
	if rs.Spec.Selector.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] != hash || rs.Spec.Template.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash {
		t.Errorf("selector %v template labels %v; want the hash in both", rs.Spec.Selector.MatchLabels, rs.Spec.Template.Labels)
	}
	if d.Spec.Selector.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] != "" || d.Spec.Template.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != "" {
		t.Errorf("the Deployment's own selector or template was changed")
	}
	if ref := metav1.GetControllerOf(rs); ref == nil || ref.UID != d.UID || ref.Kind != "Deployment" {
		t.Errorf("controller %+v; want the Deployment", ref)
	}
	want := map[string]string{RevisionAnnotation: "1", ChangeCauseAnnotation: "image v1", DesiredReplicasAnnotation: "3", MaxReplicasAnnotation: "4"}
	if diff := cmp.Diff(want, rs.Annotations); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
	if rs.Spec.MinReadySeconds != 7 {
		t.Errorf("minReadySeconds %d, want 7", rs.Spec.MinReadySeconds)
	}
	// The hash follows the template and the collision count.
	other := web("v1")
	other.Status.CollisionCount = new(int32(1))
	if templateHash(&d.Spec.Template, nil) != hash || templateHash(&other.Spec.Template, other.Status.CollisionCount) == hash ||
		templateHash(&web("v2").Spec.Template, nil) == hash {
		t.Errorf("templateHash does not follow the template and collision count")
	}
}

func TestSyncAnnotations(t *testing.T) {
	tests := []struct {
		name string
		had  map[string]string
		rev  int64
		want map[string]string
	}{
		{name: "fresh", rev: 1, want: map[string]string{RevisionAnnotation: "1", ChangeCauseAnnotation: "c"}},
		{name: "renumbered keeps history", had: map[string]string{RevisionAnnotation: "1"}, rev: 3,
			want: map[string]string{RevisionAnnotation: "3", RevisionHistoryAnnotation: "1", ChangeCauseAnnotation: "c"}},
		{name: "history grows", had: map[string]string{RevisionAnnotation: "3", RevisionHistoryAnnotation: "1"}, rev: 5,
			want: map[string]string{RevisionAnnotation: "5", RevisionHistoryAnnotation: "1,3", ChangeCauseAnnotation: "c"}},
		{name: "never lowered", had: map[string]string{RevisionAnnotation: "7"}, rev: 5,
			want: map[string]string{RevisionAnnotation: "7", ChangeCauseAnnotation: "c"}},
	}
	if len(tests) == 0 {
		t.Fatal("empty table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
				ChangeCauseAnnotation: "c", RevisionAnnotation: "9", corev1.LastAppliedConfigAnnotation: "{}"}}}
			rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Annotations: tc.had}}
			syncAnnotations(d, rs, tc.rev)
			if diff := cmp.Diff(tc.want, rs.Annotations); diff != "" {
				t.Errorf("annotations (-want +got):\n%s", diff)
			}
		})
	}
}
