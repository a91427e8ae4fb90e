package deployment

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"weir.dev/weir/controlplane/controller/replicaset"
)

// snapshot is what one sync of a Deployment reads.
type snapshot struct {
	d *appsv1.Deployment
	// rss are the ReplicaSets d controls.
	rss []*appsv1.ReplicaSet
	// pods counts their pods, by ReplicaSet name.
	pods map[string]podCounts
	now  time.Time
}

// plan is what one sync of a Deployment writes, in this order.
type plan struct {
	// create is the ReplicaSet of the current template, to be made.
	create *appsv1.ReplicaSet
	// update are ReplicaSets to write (size, annotations,
	// minReadySeconds), those that shrink first.
	update []*appsv1.ReplicaSet
	// annotations are the Deployment's new annotations (its revision);
	// nil when unchanged.
	annotations map[string]string
	// delete are old ReplicaSets past revisionHistoryLimit.
	delete []*appsv1.ReplicaSet
	// status is the Deployment's status after this sync.
	status appsv1.DeploymentStatus
	// recheck, when not zero, is when to look again for a progress
	// deadline that may pass with nothing else happening.
	recheck time.Duration
}

// decide is one sync of a Deployment, as Kubernetes' deployment
// controller makes it:
//
//   - being deleted: only the status;
//   - paused, or its replicas changed since it last scaled its
//     ReplicaSets: scaleStep, no rollout (and, paused, history cleanup);
//   - otherwise a rollout step by its strategy (rollingStep,
//     recreateStep), creating the ReplicaSet of the current template when
//     the strategy allows, and, once complete, trimming old ReplicaSets
//     to revisionHistoryLimit.
//
// In every case the current ReplicaSet is kept at the highest revision
// (a rollback bumps it), carries the Deployment's annotations and
// minReadySeconds, and the Deployment carries its revision. Pure.
func decide(s snapshot) plan {
	d, now := s.d, s.now
	cur, old := splitReplicaSets(d, s.rss)
	all := slices.Clone(old)
	if cur != nil {
		all = append(all, cur)
	}
	rev := maxRevision(old) + 1
	want, surge := replicas(d), maxSurge(d)
	deleting := d.DeletionTimestamp != nil
	event := scalingEvent(d, all)
	rollout := !deleting && !d.Spec.Paused && !event

	// next is the current ReplicaSet as the Deployment wants it.
	var next *appsv1.ReplicaSet
	if cur != nil {
		next = syncedReplicaSet(d, cur, rev)
	}
	var sz sizes
	var p plan
	switch {
	case deleting:
	case !rollout:
		sz = scaleStep(d, next, old, event)
	case rolling(d):
		if next == nil {
			next = buildReplicaSet(d, rev)
			p.create = next
		}
		sz = rollingStep(d, next, old, s.pods)
	default:
		target := next
		if target == nil {
			target = buildReplicaSet(d, rev)
		}
		var ok bool
		sz, ok = recreateStep(d, target, old, s.pods)
		if next == nil && ok {
			next, p.create = target, target
		}
	}
	if p.create != nil {
		p.create.Spec.Replicas = new(sz[p.create.Name])
	}
	var grow []*appsv1.ReplicaSet
	for _, rs := range all {
		w := rs
		if rs == cur {
			w = next
		}
		if n, ok := sz[rs.Name]; ok {
			w = w.DeepCopy()
			w.Spec.Replicas = new(n)
			setReplicasAnnotations(w, want, want+surge)
		}
		if !changed(rs, w) {
			continue
		}
		if rsReplicas(w) < rsReplicas(rs) {
			p.update = append(p.update, w)
		} else {
			grow = append(grow, w)
		}
	}
	p.update = append(p.update, grow...)
	if next != nil {
		if v := next.Annotations[RevisionAnnotation]; v != "" && d.Annotations[RevisionAnnotation] != v {
			p.annotations = maps.Clone(d.Annotations)
			if p.annotations == nil {
				p.annotations = map[string]string{}
			}
			p.annotations[RevisionAnnotation] = v
		}
	}

	st := counts(d, cur, all, now)
	if !deleting {
		pausedConditions(d, &st, now)
		if hasDeadline(d) {
			switch {
			case p.create != nil:
				setCondition(&st, condition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonNewReplicaSetCreated,
					fmt.Sprintf("Created new replica set %q", p.create.Name), now))
			case cur != nil && getCondition(&st, appsv1.DeploymentProgressing) == nil:
				setCondition(&st, condition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonFoundNewReplicaSet,
					fmt.Sprintf("Found new replica set %q", cur.Name), now))
			}
		}
		if rollout {
			name := ""
			if next != nil {
				name = next.Name
			}
			rolloutConditions(d, &st, name, cur, all, now)
		}
	}
	p.status = st
	if (d.Spec.Paused && !deleting) || (rollout && len(p.update) == 0 && p.create == nil && complete(d, &st)) {
		p.delete = cleanup(d, old, sz)
	}
	if rollout {
		if after, ok := recheckAfter(d, &st, now); ok {
			p.recheck = after
		}
	}
	return p
}

// changed reports whether w differs from rs in what a Deployment writes.
func changed(rs, w *appsv1.ReplicaSet) bool {
	return rsReplicas(rs) != rsReplicas(w) || rs.Spec.MinReadySeconds != w.Spec.MinReadySeconds ||
		!apiequality.Semantic.DeepEqual(rs.Annotations, w.Annotations)
}

// cleanup picks the old ReplicaSets to delete so at most
// revisionHistoryLimit remain, lowest revisions first, skipping any that
// still has pods or replicas (after sz) or whose status is behind.
func cleanup(d *appsv1.Deployment, old []*appsv1.ReplicaSet, sz sizes) []*appsv1.ReplicaSet {
	if d.Spec.RevisionHistoryLimit == nil {
		return nil
	}
	var alive []*appsv1.ReplicaSet
	for _, rs := range old {
		if rs.DeletionTimestamp == nil {
			alive = append(alive, rs)
		}
	}
	n := len(alive) - int(*d.Spec.RevisionHistoryLimit)
	if n <= 0 {
		return nil
	}
	slices.SortStableFunc(alive, func(a, b *appsv1.ReplicaSet) int {
		ra, oka := revision(a)
		rb, okb := revision(b)
		switch {
		case oka && okb && ra != rb:
			return cmp.Compare(ra, rb)
		case oka != okb:
			// Without a revision sorts first, as Kubernetes does (0).
			if !oka {
				return -1
			}
			return 1
		}
		return byCreation(a, b)
	})
	var out []*appsv1.ReplicaSet
	for _, rs := range alive[:n] {
		if rs.Status.Replicas != 0 || sizeIn(sz, rs) != 0 || rs.Generation > rs.Status.ObservedGeneration {
			continue
		}
		out = append(out, rs)
	}
	return out
}

// countPods counts the pods of each ReplicaSet in rss (by controller
// reference) by name.
func countPods(rss []*appsv1.ReplicaSet, pods []*corev1.Pod, now time.Time) map[string]podCounts {
	byUID := make(map[types.UID]*appsv1.ReplicaSet, len(rss))
	for _, rs := range rss {
		byUID[rs.UID] = rs
	}
	out := make(map[string]podCounts, len(rss))
	for _, p := range pods {
		ref := metav1.GetControllerOfNoCopy(p)
		if ref == nil {
			continue
		}
		rs := byUID[ref.UID]
		if rs == nil {
			continue
		}
		c := out[rs.Name]
		switch {
		case replicaset.PodActive(p):
			c.Active++
			if replicaset.PodAvailable(p, rs.Spec.MinReadySeconds, now) {
				c.Available++
			}
		case p.DeletionTimestamp != nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed:
			c.Terminating++
		}
		out[rs.Name] = c
	}
	return out
}
