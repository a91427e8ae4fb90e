package deployment

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/dump"
	"k8s.io/apimachinery/pkg/util/rand"
)

// Annotations a Deployment and its ReplicaSets carry, as in Kubernetes.
const (
	// RevisionAnnotation numbers a Deployment's ReplicaSets in rollout
	// order; on the Deployment it is the revision of its current template.
	RevisionAnnotation = "deployment.kubernetes.io/revision"
	// RevisionHistoryAnnotation lists, on a ReplicaSet rolled back to, the
	// revisions it served before.
	RevisionHistoryAnnotation = "deployment.kubernetes.io/revision-history"
	// DesiredReplicasAnnotation is the Deployment's replicas when it last
	// scaled the ReplicaSet; a difference tells a scale from a rollout.
	DesiredReplicasAnnotation = "deployment.kubernetes.io/desired-replicas"
	// MaxReplicasAnnotation is replicas + maxSurge when the Deployment last
	// scaled the ReplicaSet; proportional scaling reads it.
	MaxReplicasAnnotation = "deployment.kubernetes.io/max-replicas"
	// ChangeCauseAnnotation says why a revision was made; it is copied from
	// the Deployment to its new ReplicaSet and shown by rollout history.
	ChangeCauseAnnotation = "kubernetes.io/change-cause"
)

// maxRevisionHistoryChars bounds the revision-history annotation, as in
// Kubernetes.
const maxRevisionHistoryChars = 2000

// Errors of RollbackTo.
var (
	// ErrRevisionNotFound: no ReplicaSet of the Deployment has that revision.
	ErrRevisionNotFound = errors.New("deployment: revision not found")
	// ErrNoHistory: revision 0 asks for the previous revision and there is
	// none.
	ErrNoHistory = errors.New("deployment: no rollout history")
	// ErrPaused: a paused Deployment is not rolled back (resume it first).
	ErrPaused = errors.New("deployment: paused")
	// ErrSkipped: the Deployment's template already is that revision's.
	ErrSkipped = errors.New("deployment: skipped rollback")
)

// notCopied are the annotations that stay with the object they are on:
// the controller's bookkeeping, and kubectl's record of the last apply.
var notCopied = map[string]bool{
	corev1.LastAppliedConfigAnnotation: true,
	RevisionAnnotation:                 true,
	RevisionHistoryAnnotation:          true,
	DesiredReplicasAnnotation:          true,
	MaxReplicasAnnotation:              true,
	appsv1.DeprecatedRollbackTo:        true,
}

// templateHash is the pod-template-hash of a template: FNV-32a over
// Kubernetes' hashing dump of the template, then the collision count, so
// a Deployment's ReplicaSets get the names Kubernetes would give them.
// (The apimachinery wrapper of k8s.io/utils/dump is used because the
// module already depends on apimachinery directly.)
func templateHash(t *corev1.PodTemplateSpec, collisionCount *int32) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%v", dump.ForHash(*t))
	if collisionCount != nil {
		b := make([]byte, 8)
		binary.LittleEndian.PutUint32(b, uint32(*collisionCount))
		h.Write(b)
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// equalIgnoreHash reports whether two templates are the same apart from
// the pod-template-hash label, which a Deployment's template lacks.
func equalIgnoreHash(a, b *corev1.PodTemplateSpec) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	delete(a.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	delete(b.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	if len(a.Labels) == 0 {
		a.Labels = nil
	}
	if len(b.Labels) == 0 {
		b.Labels = nil
	}
	return apiequality.Semantic.DeepEqual(a, b)
}

// revision is the rs's revision annotation; ok is false when it has none
// or it is not a number.
func revision(rs *appsv1.ReplicaSet) (int64, bool) {
	v, err := strconv.ParseInt(rs.Annotations[RevisionAnnotation], 10, 64)
	return v, err == nil
}

func maxRevision(rss []*appsv1.ReplicaSet) int64 {
	var m int64
	for _, rs := range rss {
		if v, ok := revision(rs); ok {
			m = max(m, v)
		}
	}
	return m
}

// byCreation sorts oldest first, names breaking ties.
func byCreation(a, b *appsv1.ReplicaSet) int {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		if a.CreationTimestamp.Before(&b.CreationTimestamp) {
			return -1
		}
		return 1
	}
	return strings.Compare(a.Name, b.Name)
}

// splitReplicaSets finds the ReplicaSet whose template is the
// Deployment's (the oldest, should there be several) and the others,
// oldest first.
func splitReplicaSets(d *appsv1.Deployment, rss []*appsv1.ReplicaSet) (cur *appsv1.ReplicaSet, old []*appsv1.ReplicaSet) {
	sorted := slices.SortedStableFunc(slices.Values(rss), byCreation)
	for _, rs := range sorted {
		if cur == nil && equalIgnoreHash(&rs.Spec.Template, &d.Spec.Template) {
			cur = rs
			continue
		}
		old = append(old, rs)
	}
	return cur, old
}

// buildReplicaSet is the ReplicaSet a Deployment creates for its current
// template, at revision rev and with no replicas yet: named
// "<deployment>-<pod-template-hash>", the hash label added to its
// selector and template, the Deployment as controller.
func buildReplicaSet(d *appsv1.Deployment, rev int64) *appsv1.ReplicaSet {
	t := d.Spec.Template.DeepCopy()
	hash := templateHash(t, d.Status.CollisionCount)
	t.Labels = withLabel(t.Labels, appsv1.DefaultDeploymentUniqueLabelKey, hash)
	sel := d.Spec.Selector.DeepCopy()
	if sel == nil {
		sel = &metav1.LabelSelector{}
	}
	sel.MatchLabels = withLabel(sel.MatchLabels, appsv1.DefaultDeploymentUniqueLabelKey, hash)
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:            d.Name + "-" + hash,
			Namespace:       d.Namespace,
			Labels:          t.Labels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))},
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas:        new(int32(0)),
			MinReadySeconds: d.Spec.MinReadySeconds,
			Selector:        sel,
			Template:        *t,
		},
	}
	syncAnnotations(d, rs, rev)
	setReplicasAnnotations(rs, replicas(d), replicas(d)+maxSurge(d))
	return rs
}

func withLabel(m map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for a, b := range m {
		out[a] = b
	}
	out[k] = v
	return out
}

// syncedReplicaSet is a copy of the Deployment's current ReplicaSet with
// what the Deployment dictates: its annotations (change-cause and the
// like), revision rev when that is higher than its own (a rollback makes
// an old ReplicaSet the newest revision), and minReadySeconds.
func syncedReplicaSet(d *appsv1.Deployment, rs *appsv1.ReplicaSet, rev int64) *appsv1.ReplicaSet {
	rs = rs.DeepCopy()
	syncAnnotations(d, rs, rev)
	rs.Spec.MinReadySeconds = d.Spec.MinReadySeconds
	return rs
}

// syncAnnotations copies the Deployment's annotations to rs (never
// removing any) and raises rs's revision to rev, remembering the revision
// it had in the revision history.
func syncAnnotations(d *appsv1.Deployment, rs *appsv1.ReplicaSet, rev int64) {
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	for k, v := range d.Annotations {
		if !notCopied[k] {
			rs.Annotations[k] = v
		}
	}
	had, exists := rs.Annotations[RevisionAnnotation]
	old, err := strconv.ParseInt(had, 10, 64)
	if exists && err != nil {
		return // not ours to fix
	}
	if old >= rev {
		return
	}
	rs.Annotations[RevisionAnnotation] = strconv.FormatInt(rev, 10)
	if !exists {
		return
	}
	hist := rs.Annotations[RevisionHistoryAnnotation]
	if hist == "" {
		rs.Annotations[RevisionHistoryAnnotation] = had
		return
	}
	// Drop the oldest entries to stay under the length limit.
	parts := strings.Split(hist, ",")
	for len(parts) > 0 && len(strings.Join(parts, ","))+1+len(had) > maxRevisionHistoryChars {
		parts = parts[1:]
	}
	rs.Annotations[RevisionHistoryAnnotation] = strings.Join(append(parts, had), ",")
}

// setReplicasAnnotations records the Deployment's size on rs when it
// scales it; it reports whether anything changed.
func setReplicasAnnotations(rs *appsv1.ReplicaSet, desired, maxReplicas int32) bool {
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	d, m := strconv.Itoa(int(desired)), strconv.Itoa(int(maxReplicas))
	changed := rs.Annotations[DesiredReplicasAnnotation] != d || rs.Annotations[MaxReplicasAnnotation] != m
	rs.Annotations[DesiredReplicasAnnotation] = d
	rs.Annotations[MaxReplicasAnnotation] = m
	return changed
}

func intAnnotation(rs *appsv1.ReplicaSet, key string) (int32, bool) {
	v, err := strconv.ParseInt(rs.Annotations[key], 10, 32)
	return int32(v), err == nil
}

// Revision is one entry of a Deployment's rollout history.
type Revision struct {
	// Number is the revision (deployment.kubernetes.io/revision).
	Number int64
	// ChangeCause is the kubernetes.io/change-cause recorded for it, or "".
	ChangeCause string
	// ReplicaSet names the ReplicaSet that holds the revision.
	ReplicaSet string
	// Template is the revision's pod template, without the
	// pod-template-hash label.
	Template corev1.PodTemplateSpec
}

// History returns the revisions of a Deployment's ReplicaSets in
// ascending order, for `rollout history`: rss should be the ReplicaSets
// the Deployment controls (those it does not are not checked for here).
// ReplicaSets without a revision are left out; of two with the same
// revision, the later in rss wins, as in kubectl. Pure.
func History(rss []*appsv1.ReplicaSet) []Revision {
	byRev := map[int64]Revision{}
	for _, rs := range rss {
		v, ok := revision(rs)
		if !ok {
			continue
		}
		t := rs.Spec.Template.DeepCopy()
		delete(t.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
		byRev[v] = Revision{Number: v, ChangeCause: rs.Annotations[ChangeCauseAnnotation], ReplicaSet: rs.Name, Template: *t}
	}
	out := make([]Revision, 0, len(byRev))
	for _, r := range byRev {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Revision) int { return cmp.Compare(a.Number, b.Number) })
	return out
}

// RollbackTo returns a copy of d whose pod template (and annotations,
// change-cause included) are those of the given revision, as kubectl's
// `rollout undo --to-revision` writes them; revision 0 means the one
// before the current. Writing it back (an Update, which keeps d's
// resourceVersion as a precondition) starts a rollout to that template,
// and the controller makes the revision's ReplicaSet the newest revision.
// Only the ReplicaSets in rss that d controls are considered. Errors:
// ErrRevisionNotFound, ErrNoHistory, ErrPaused, or ErrSkipped when d
// already has that template. Pure; d and rss are not changed.
func RollbackTo(d *appsv1.Deployment, rss []*appsv1.ReplicaSet, toRevision int64) (*appsv1.Deployment, error) {
	if toRevision < 0 {
		return nil, fmt.Errorf("%w: %d", ErrRevisionNotFound, toRevision)
	}
	var owned []*appsv1.ReplicaSet
	for _, rs := range rss {
		if metav1.IsControlledBy(rs, d) {
			owned = append(owned, rs)
		}
	}
	target, err := findRevision(owned, toRevision)
	if err != nil {
		return nil, err
	}
	if d.Spec.Paused {
		return nil, fmt.Errorf("%w: resume it before rolling back", ErrPaused)
	}
	if equalIgnoreHash(&target.Spec.Template, &d.Spec.Template) {
		v, _ := revision(target)
		return nil, fmt.Errorf("%w (current template already matches revision %d)", ErrSkipped, v)
	}
	out := d.DeepCopy()
	out.Spec.Template = *target.Spec.Template.DeepCopy()
	delete(out.Spec.Template.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	ann := map[string]string{}
	for k := range notCopied {
		if v, ok := d.Annotations[k]; ok {
			ann[k] = v
		}
	}
	for k, v := range target.Annotations {
		if !notCopied[k] {
			ann[k] = v
		}
	}
	out.Annotations = ann
	return out, nil
}

// findRevision picks the ReplicaSet holding revision, or for 0 the one
// with the second highest revision.
func findRevision(rss []*appsv1.ReplicaSet, want int64) (*appsv1.ReplicaSet, error) {
	var latest, previous *appsv1.ReplicaSet
	latestRev, previousRev := int64(-1), int64(-1)
	for _, rs := range rss {
		v, ok := revision(rs)
		if !ok {
			continue
		}
		if want > 0 {
			if v == want {
				return rs, nil
			}
			continue
		}
		switch {
		case v > latestRev:
			previous, previousRev = latest, latestRev
			latest, latestRev = rs, v
		case v > previousRev:
			previous, previousRev = rs, v
		}
	}
	if want > 0 {
		return nil, fmt.Errorf("%w: %d", ErrRevisionNotFound, want)
	}
	if previous == nil {
		return nil, ErrNoHistory
	}
	return previous, nil
}
