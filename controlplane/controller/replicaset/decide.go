package replicaset

import (
	"slices"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// burstReplicas caps the pods one pass creates or deletes, as Kubernetes
// does, so one huge scale cannot monopolise a worker or the API.
const burstReplicas = 500

// podDeletionCost is the annotation by which users rank a ReplicaSet's
// pods for deletion (lower goes first).
const podDeletionCost = "controller.kubernetes.io/pod-deletion-cost"

// Reasons of the ReplicaFailure condition, as Kubernetes writes them.
const (
	reasonFailedCreate = "FailedCreate"
	reasonFailedDelete = "FailedDelete"
)

// change is what one pass does to a ReplicaSet's pods.
type change struct {
	// Create is how many pods to create.
	Create int
	// Delete are the pods to delete, in ranking order.
	Delete []*corev1.Pod
}

// diff decides how to bring the active pods of a ReplicaSet to want:
// create the shortfall, or delete the surplus ranked first for deletion;
// never more than burstReplicas at once.
func diff(want int32, active []*corev1.Pod) change {
	d := len(active) - int(want)
	switch {
	case d < 0:
		return change{Create: min(-d, burstReplicas)}
	case d > 0:
		return change{Delete: rankForDeletion(active)[:min(d, burstReplicas)]}
	}
	return change{}
}

// rankForDeletion returns pods sorted so that the ones whose loss hurts
// least come first: unscheduled before scheduled; pending, unknown, then
// running; not ready before ready; lower pod-deletion-cost first; ready
// for less time first; more restarts first; newest first. It does not
// change pods.
func rankForDeletion(pods []*corev1.Pod) []*corev1.Pod {
	out := slices.Clone(pods)
	slices.SortStableFunc(out, compareForDeletion)
	return out
}

var phaseRank = map[corev1.PodPhase]int{corev1.PodPending: 0, corev1.PodUnknown: 1, corev1.PodRunning: 2}

// compareForDeletion is negative when a should be deleted before b.
func compareForDeletion(a, b *corev1.Pod) int {
	if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
		return boolFirst(a.Spec.NodeName == "")
	}
	if pa, pb := phaseRank[a.Status.Phase], phaseRank[b.Status.Phase]; pa != pb {
		return pa - pb
	}
	ra, rb := PodReady(a), PodReady(b)
	if ra != rb {
		return boolFirst(!ra)
	}
	if ca, cb := deletionCost(a), deletionCost(b); ca != cb {
		if ca < cb {
			return -1
		}
		return 1
	}
	if ra {
		// Ready for less time goes first: it has served the least.
		ta, tb := readyCondition(a).LastTransitionTime, readyCondition(b).LastTransitionTime
		if !ta.Equal(&tb) {
			return boolFirst(tb.Before(&ta))
		}
	}
	if na, nb := restarts(a), restarts(b); na != nb {
		return nb - na
	}
	if ta, tb := a.CreationTimestamp, b.CreationTimestamp; !ta.Equal(&tb) {
		return boolFirst(tb.Before(&ta))
	}
	switch {
	case a.Name > b.Name:
		return -1
	case a.Name < b.Name:
		return 1
	}
	return 0
}

// boolFirst is -1 when the first argument should win, 1 otherwise.
func boolFirst(first bool) int {
	if first {
		return -1
	}
	return 1
}

// deletionCost reads the pod-deletion-cost annotation; absent or invalid
// counts as 0, as in Kubernetes.
func deletionCost(p *corev1.Pod) int64 {
	v, err := strconv.ParseInt(p.Annotations[podDeletionCost], 10, 32)
	if err != nil {
		return 0
	}
	return v
}

// restarts is the highest restart count among p's containers.
func restarts(p *corev1.Pod) int {
	n := 0
	for _, c := range p.Status.ContainerStatuses {
		n = max(n, int(c.RestartCount))
	}
	return n
}

// newPod is the pod a ReplicaSet creates: its template's metadata and
// spec, a name generated from "<replicaset>-", and the ReplicaSet as
// controller. weir's server, unlike Kubernetes', does not shorten a
// generateName prefix past 58 characters; pod names may be 253 long, so
// only the pod's hostname (cut to 63 by the node agent) would notice.
func newPod(rs *appsv1.ReplicaSet) *corev1.Pod {
	t := &rs.Spec.Template
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    rs.Name + "-",
			Namespace:       rs.Namespace,
			Labels:          cloneMap(t.Labels),
			Annotations:     cloneMap(t.Annotations),
			Finalizers:      slices.Clone(t.Finalizers),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))},
		},
		Spec: *t.Spec.DeepCopy(),
	}
	return p
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// status is a ReplicaSet's status given its active pods, how many of its
// pods are terminating, and the error of this pass's creates or deletes
// (nil for none). The ReplicaFailure condition is set on the first
// failure and cleared by the first pass without one; other conditions
// stay.
func status(rs *appsv1.ReplicaSet, active []*corev1.Pod, terminating int32, failure error, now time.Time) appsv1.ReplicaSetStatus {
	st := appsv1.ReplicaSetStatus{
		Replicas:            int32(len(active)),
		ObservedGeneration:  rs.Generation,
		TerminatingReplicas: new(terminating),
		Conditions:          slices.Clone(rs.Status.Conditions),
	}
	template := labels.SelectorFromSet(rs.Spec.Template.Labels)
	for _, p := range active {
		if template.Matches(labels.Set(p.Labels)) {
			st.FullyLabeledReplicas++
		}
		if PodReady(p) {
			st.ReadyReplicas++
			if PodAvailable(p, rs.Spec.MinReadySeconds, now) {
				st.AvailableReplicas++
			}
		}
	}
	i := slices.IndexFunc(st.Conditions, func(c appsv1.ReplicaSetCondition) bool { return c.Type == appsv1.ReplicaSetReplicaFailure })
	switch {
	case failure != nil && i < 0:
		reason := reasonFailedCreate
		if len(active) > int(replicas(rs)) {
			reason = reasonFailedDelete
		}
		st.Conditions = append(st.Conditions, appsv1.ReplicaSetCondition{
			Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue,
			LastTransitionTime: metav1.NewTime(now.Truncate(time.Second)), Reason: reason, Message: failure.Error(),
		})
	case failure == nil && i >= 0:
		st.Conditions = slices.Delete(st.Conditions, i, i+1)
	}
	if len(st.Conditions) == 0 {
		st.Conditions = nil
	}
	return st
}

// replicas is spec.replicas, 1 when unset (the server defaults it).
func replicas(rs *appsv1.ReplicaSet) int32 {
	if rs.Spec.Replicas == nil {
		return 1
	}
	return *rs.Spec.Replicas
}

// nextAvailable is how long until the first pod that is ready but not yet
// available turns available; ok is false when none is waiting.
func nextAvailable(active []*corev1.Pod, minReadySeconds int32, now time.Time) (wait time.Duration, ok bool) {
	if minReadySeconds == 0 {
		return 0, false
	}
	for _, p := range active {
		if !PodReady(p) || PodAvailable(p, minReadySeconds, now) {
			continue
		}
		at := readyCondition(p).LastTransitionTime.Add(time.Duration(minReadySeconds) * time.Second)
		// Available is strictly after the instant; a little past it.
		w := max(at.Sub(now), 0) + 10*time.Millisecond
		if !ok || w < wait {
			wait, ok = w, true
		}
	}
	return wait, ok
}
