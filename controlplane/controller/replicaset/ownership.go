package replicaset

import (
	"encoding/json"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// Claim sorts the objects a controller's selector might cover, as
// Kubernetes' ControllerRefManager does: owned are those it controls and
// that still match; adopt are orphans that match (never while the
// controller or the object is being deleted); release are those it
// controls whose labels stopped matching (kept while the controller is
// being deleted, so the garbage collector finds them). Objects another
// controller owns are left alone. An empty selector adopts nothing. Pure;
// safe for concurrent use.
func Claim[T metav1.Object](owner metav1.Object, sel labels.Selector, objs []T) (owned, adopt, release []T) {
	deleting := owner.GetDeletionTimestamp() != nil
	for _, o := range objs {
		match := !sel.Empty() && sel.Matches(labels.Set(o.GetLabels()))
		ref := metav1.GetControllerOfNoCopy(o)
		switch {
		case ref != nil && ref.UID == owner.GetUID():
			switch {
			case match:
				owned = append(owned, o)
			case !deleting:
				release = append(release, o)
			}
		case ref != nil:
		case deleting || !match || o.GetDeletionTimestamp() != nil:
		default:
			adopt = append(adopt, o)
		}
	}
	return owned, adopt, release
}

// AdoptPatch is the strategic merge patch that makes ref the controller
// of the object with the given UID; the UID fails the patch with a
// conflict if the name now belongs to another object.
func AdoptPatch(ref metav1.OwnerReference, uid types.UID) []byte {
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": []metav1.OwnerReference{ref}, "uid": uid,
	}})
	return b
}

// ReleasePatch is the strategic merge patch that removes the reference to
// owner from the object with the given UID.
func ReleasePatch(owner, uid types.UID) []byte {
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": []map[string]any{{"$patch": "delete", "uid": owner}}, "uid": uid,
	}})
	return b
}

// PodActive reports whether p counts toward a controller's replicas: not
// finished and not being deleted.
func PodActive(p *corev1.Pod) bool {
	return p.DeletionTimestamp == nil && !podFinished(p)
}

// podTerminating reports whether p is being deleted but may still run.
func podTerminating(p *corev1.Pod) bool {
	return p.DeletionTimestamp != nil && !podFinished(p)
}

func podFinished(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// readyCondition is p's Ready condition, or nil.
func readyCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// PodReady reports whether p's Ready condition is True.
func PodReady(p *corev1.Pod) bool {
	c := readyCondition(p)
	return c != nil && c.Status == corev1.ConditionTrue
}

// PodAvailable reports whether p has been ready for more than
// minReadySeconds at now (ready is enough when minReadySeconds is 0).
func PodAvailable(p *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	c := readyCondition(p)
	if c == nil || c.Status != corev1.ConditionTrue {
		return false
	}
	if minReadySeconds == 0 {
		return true
	}
	return !c.LastTransitionTime.IsZero() && c.LastTransitionTime.Add(time.Duration(minReadySeconds)*time.Second).Before(now)
}
