package deployment

import (
	"fmt"
	"math"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Reasons of the Progressing and Available conditions, as Kubernetes
// writes them (kubectl rollout status reads some).
const (
	ReasonNewReplicaSetAvailable   = "NewReplicaSetAvailable"
	ReasonProgressDeadlineExceeded = "ProgressDeadlineExceeded"
	ReasonReplicaSetUpdated        = "ReplicaSetUpdated"
	ReasonNewReplicaSetCreated     = "NewReplicaSetCreated"
	ReasonFoundNewReplicaSet       = "FoundNewReplicaSet"
	ReasonPaused                   = "DeploymentPaused"
	ReasonResumed                  = "DeploymentResumed"
	ReasonMinimumReplicasAvailable = "MinimumReplicasAvailable"
	ReasonMinimumReplicasMissing   = "MinimumReplicasUnavailable"
)

// stamp is a condition time: API times have whole seconds, and keeping
// only those lets a computed status compare equal to the stored one.
func stamp(t time.Time) metav1.Time { return metav1.NewTime(t.Truncate(time.Second)) }

func condition(t appsv1.DeploymentConditionType, s corev1.ConditionStatus, reason, msg string, now time.Time) appsv1.DeploymentCondition {
	return appsv1.DeploymentCondition{Type: t, Status: s, Reason: reason, Message: msg,
		LastUpdateTime: stamp(now), LastTransitionTime: stamp(now)}
}

func getCondition(st *appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			return &st.Conditions[i]
		}
	}
	return nil
}

// setCondition sets c, as Kubernetes does: unchanged when status and
// reason are the same; the transition time kept when only the reason
// changes.
func setCondition(st *appsv1.DeploymentStatus, c appsv1.DeploymentCondition) {
	cur := getCondition(st, c.Type)
	if cur != nil && cur.Status == c.Status && cur.Reason == c.Reason {
		return
	}
	if cur != nil && cur.Status == c.Status {
		c.LastTransitionTime = cur.LastTransitionTime
	}
	removeCondition(st, c.Type)
	st.Conditions = append(st.Conditions, c)
}

func removeCondition(st *appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) {
	st.Conditions = slices.DeleteFunc(st.Conditions, func(c appsv1.DeploymentCondition) bool { return c.Type == t })
	if len(st.Conditions) == 0 {
		st.Conditions = nil
	}
}

// counts is a Deployment's status from its ReplicaSets' statuses (cur is
// the ReplicaSet of its template, nil if none yet), with the Available
// condition; the other conditions are carried over.
func counts(d *appsv1.Deployment, cur *appsv1.ReplicaSet, all []*appsv1.ReplicaSet, now time.Time) appsv1.DeploymentStatus {
	st := appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation,
		CollisionCount:     d.Status.CollisionCount,
		Conditions:         slices.Clone(d.Status.Conditions),
	}
	var specTotal int32
	for _, rs := range all {
		specTotal += rsReplicas(rs)
		st.Replicas += rs.Status.Replicas
		st.ReadyReplicas += rs.Status.ReadyReplicas
		st.AvailableReplicas += rs.Status.AvailableReplicas
		if t := rs.Status.TerminatingReplicas; t != nil {
			st.TerminatingReplicas = new(valueOr(st.TerminatingReplicas) + *t)
		}
	}
	if cur != nil {
		st.UpdatedReplicas = cur.Status.Replicas
	}
	st.UnavailableReplicas = max(specTotal-st.AvailableReplicas, 0)
	if st.AvailableReplicas >= replicas(d)-maxUnavailable(d) {
		setCondition(&st, condition(appsv1.DeploymentAvailable, corev1.ConditionTrue, ReasonMinimumReplicasAvailable, "Deployment has minimum availability.", now))
	} else {
		setCondition(&st, condition(appsv1.DeploymentAvailable, corev1.ConditionFalse, ReasonMinimumReplicasMissing, "Deployment does not have minimum availability.", now))
	}
	return st
}

func valueOr(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

func hasDeadline(d *appsv1.Deployment) bool {
	// MaxInt32 means no deadline, by Kubernetes' convention.
	return d.Spec.ProgressDeadlineSeconds != nil && *d.Spec.ProgressDeadlineSeconds != math.MaxInt32
}

// complete reports whether every replica runs the current template and
// is available, for the Deployment's current generation.
func complete(d *appsv1.Deployment, st *appsv1.DeploymentStatus) bool {
	n := replicas(d)
	return st.UpdatedReplicas == n && st.Replicas == n && st.AvailableReplicas == n && st.ObservedGeneration >= d.Generation
}

// progressing reports whether st shows progress over d's stored status.
func progressing(d *appsv1.Deployment, st *appsv1.DeploymentStatus) bool {
	old := d.Status
	return st.UpdatedReplicas > old.UpdatedReplicas ||
		st.Replicas-st.UpdatedReplicas < old.Replicas-old.UpdatedReplicas ||
		st.ReadyReplicas > old.ReadyReplicas ||
		st.AvailableReplicas > old.AvailableReplicas
}

// timedOut reports whether the Progressing condition in st has gone
// without an update for longer than the progress deadline.
func timedOut(d *appsv1.Deployment, st *appsv1.DeploymentStatus, now time.Time) bool {
	if !hasDeadline(d) {
		return false
	}
	c := getCondition(st, appsv1.DeploymentProgressing)
	switch {
	case c == nil, c.Reason == ReasonNewReplicaSetAvailable:
		return false
	case c.Reason == ReasonProgressDeadlineExceeded:
		return true
	}
	return c.LastUpdateTime.Add(time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second).Before(now)
}

// pausedConditions records a pause or a resume in the Progressing
// condition (Unknown), unless the rollout already timed out.
func pausedConditions(d *appsv1.Deployment, st *appsv1.DeploymentStatus, now time.Time) {
	if !hasDeadline(d) {
		return
	}
	c := getCondition(st, appsv1.DeploymentProgressing)
	if c != nil && c.Reason == ReasonProgressDeadlineExceeded {
		return
	}
	marked := c != nil && c.Reason == ReasonPaused
	switch {
	case d.Spec.Paused && !marked:
		setCondition(st, condition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, ReasonPaused, "Deployment is paused", now))
	case !d.Spec.Paused && marked:
		setCondition(st, condition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, ReasonResumed, "Deployment is resumed", now))
	}
}

// rolloutConditions estimates progress for a rollout in flight, as
// Kubernetes' syncRolloutStatus does: complete, progressing (which moves
// lastUpdateTime and so the deadline), or timed out; then copies a
// ReplicaFailure of the ReplicaSets (the current one's first). curName is
// the current ReplicaSet's name, "" if none.
func rolloutConditions(d *appsv1.Deployment, st *appsv1.DeploymentStatus, curName string, cur *appsv1.ReplicaSet, all []*appsv1.ReplicaSet, now time.Time) {
	if !hasDeadline(d) {
		removeCondition(st, appsv1.DeploymentProgressing)
	}
	what := fmt.Sprintf("Deployment %q", d.Name)
	if curName != "" {
		what = fmt.Sprintf("ReplicaSet %q", curName)
	}
	c := getCondition(st, appsv1.DeploymentProgressing)
	done := st.Replicas == st.UpdatedReplicas && c != nil && c.Reason == ReasonNewReplicaSetAvailable
	if hasDeadline(d) && !done {
		switch {
		case complete(d, st):
			setCondition(st, condition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonNewReplicaSetAvailable, what+" has successfully progressed.", now))
		case progressing(d, st):
			// Progress always moves lastUpdateTime, even with the same
			// reason: the deadline counts from the last progress.
			nc := condition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonReplicaSetUpdated, what+" is progressing.", now)
			if c != nil && c.Status == corev1.ConditionTrue {
				nc.LastTransitionTime = c.LastTransitionTime
			}
			removeCondition(st, appsv1.DeploymentProgressing)
			st.Conditions = append(st.Conditions, nc)
		case timedOut(d, st, now):
			setCondition(st, condition(appsv1.DeploymentProgressing, corev1.ConditionFalse, ReasonProgressDeadlineExceeded, what+" has timed out progressing.", now))
		}
	}
	if f := replicaFailure(cur, all); f != nil {
		setCondition(st, *f)
	} else {
		removeCondition(st, appsv1.DeploymentReplicaFailure)
	}
}

// replicaFailure is the ReplicaFailure condition of cur, else of any
// ReplicaSet, as a Deployment condition; nil if none has one.
func replicaFailure(cur *appsv1.ReplicaSet, all []*appsv1.ReplicaSet) *appsv1.DeploymentCondition {
	for _, rs := range append([]*appsv1.ReplicaSet{cur}, all...) {
		if rs == nil {
			continue
		}
		for _, c := range rs.Status.Conditions {
			if c.Type == appsv1.ReplicaSetReplicaFailure {
				return &appsv1.DeploymentCondition{Type: appsv1.DeploymentReplicaFailure, Status: c.Status, Reason: c.Reason,
					Message: c.Message, LastUpdateTime: c.LastTransitionTime, LastTransitionTime: c.LastTransitionTime}
			}
		}
	}
	return nil
}

// recheckAfter is when a rollout that has not finished should be looked
// at again to see whether it timed out; ok is false when that cannot
// happen (no deadline, complete, already timed out, paused).
func recheckAfter(d *appsv1.Deployment, st *appsv1.DeploymentStatus, now time.Time) (time.Duration, bool) {
	c := getCondition(st, appsv1.DeploymentProgressing)
	// From NewReplicaSetAvailable only progress moves it (see timedOut).
	if !hasDeadline(d) || d.Spec.Paused || c == nil || complete(d, st) ||
		c.Reason == ReasonProgressDeadlineExceeded || c.Reason == ReasonNewReplicaSetAvailable {
		return 0, false
	}
	after := c.LastUpdateTime.Add(time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second).Sub(now)
	// Past the instant by a second: the deadline is strictly exceeded.
	return max(after, 0) + time.Second, true
}
