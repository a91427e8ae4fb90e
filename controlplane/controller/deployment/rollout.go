package deployment

import (
	"math"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// podCounts are one ReplicaSet's pods as the Deployment's pod cache sees
// them.
type podCounts struct {
	// Active pods are neither finished nor being deleted.
	Active int32
	// Available pods are active and have been ready for minReadySeconds.
	Available int32
	// Terminating pods are being deleted and may still run.
	Terminating int32
}

// sizes are the new spec.replicas of the ReplicaSets a step changes (or,
// for scaleStep, re-stamps), by name.
type sizes map[string]int32

func replicas(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

func rsReplicas(rs *appsv1.ReplicaSet) int32 {
	if rs == nil || rs.Spec.Replicas == nil {
		return 0
	}
	return *rs.Spec.Replicas
}

func rolling(d *appsv1.Deployment) bool {
	return d.Spec.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType && d.Spec.Strategy.RollingUpdate != nil
}

// fenceposts resolves maxSurge (rounded up) and maxUnavailable (rounded
// down) against replicas; should both come to 0, maxUnavailable is 1, so
// a rollout can always move. Both are 0 for Recreate.
func fenceposts(d *appsv1.Deployment) (surge, unavailable int32) {
	if !rolling(d) {
		return 0, 0
	}
	n := int(replicas(d))
	zero := intstr.FromInt32(0)
	s, err := intstr.GetScaledValueFromIntOrPercent(intstr.ValueOrDefault(d.Spec.Strategy.RollingUpdate.MaxSurge, zero), n, true)
	if err != nil {
		s = 0 // the server validates these; a bad value means no surge
	}
	u, err := intstr.GetScaledValueFromIntOrPercent(intstr.ValueOrDefault(d.Spec.Strategy.RollingUpdate.MaxUnavailable, zero), n, false)
	if err != nil {
		u = 0
	}
	if s == 0 && u == 0 {
		u = 1
	}
	return int32(s), int32(u)
}

func maxSurge(d *appsv1.Deployment) int32 {
	s, _ := fenceposts(d)
	return s
}

// maxUnavailable is capped at replicas, and 0 for no replicas.
func maxUnavailable(d *appsv1.Deployment) int32 {
	if !rolling(d) || replicas(d) == 0 {
		return 0
	}
	_, u := fenceposts(d)
	return min(u, replicas(d))
}

// rollingStep is one step of a rolling update, as Kubernetes' deployment
// controller takes it, with one difference: it counts pods still present
// beyond a ReplicaSet's spec (a scale-down its ReplicaSet controller has
// not carried out yet) and counts available pods only up to spec (those
// beyond it are about to go), so the bounds hold however the ReplicaSet
// controllers' work interleaves:
//
//   - the new ReplicaSet grows by at most what keeps every ReplicaSet's
//     max(spec, active pods) summed under replicas + maxSurge, and never
//     past replicas (it shrinks to replicas if above);
//   - old ReplicaSets, oldest first, lose first their pods that are not
//     available, then available ones, never taking available pods below
//     replicas − maxUnavailable, and never taking old pods plus available
//     new ones below that either (an old pod not yet ready may still turn
//     ready).
//
// newRS is the ReplicaSet of the current template (spec 0 if it is yet
// to be made); pods are by ReplicaSet name. It returns the ReplicaSets
// whose size changes. Pure.
func rollingStep(d *appsv1.Deployment, newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet, pods map[string]podCounts) sizes {
	out := sizes{}
	want := replicas(d)
	surge := maxSurge(d)
	minAvailable := want - maxUnavailable(d)

	total := int32(0)
	for _, rs := range append([]*appsv1.ReplicaSet{newRS}, old...) {
		total += max(rsReplicas(rs), pods[rs.Name].Active)
	}
	n := rsReplicas(newRS)
	switch {
	case n > want:
		out[newRS.Name] = want
	case n < want && total < want+surge:
		out[newRS.Name] = n + min(want+surge-total, want-n)
	}

	oldTotal := int32(0)
	for _, rs := range old {
		oldTotal += rsReplicas(rs)
	}
	if oldTotal == 0 {
		return out
	}
	availableNew := min(pods[newRS.Name].Available, n, sizeIn(out, newRS))
	budget := oldTotal + availableNew - minAvailable
	if budget <= 0 {
		return out
	}
	old = slices.SortedStableFunc(slices.Values(old), byCreation)
	size := make([]int32, len(old))
	for i, rs := range old {
		size[i] = rsReplicas(rs)
	}
	// Pods that are not available cost nothing to remove, and would block
	// the rollout if they never become ready.
	for i, rs := range old {
		if budget == 0 {
			break
		}
		unhealthy := size[i] - min(pods[rs.Name].Available, size[i])
		k := min(unhealthy, budget)
		size[i] -= k
		budget -= k
	}
	available := availableNew
	for i, rs := range old {
		available += min(pods[rs.Name].Available, size[i])
	}
	excess := min(available-minAvailable, budget)
	for i := range old {
		if excess <= 0 {
			break
		}
		k := min(size[i], excess)
		size[i] -= k
		excess -= k
	}
	for i, rs := range old {
		if size[i] != rsReplicas(rs) {
			out[rs.Name] = size[i]
		}
	}
	return out
}

// sizeIn is rs's size after s.
func sizeIn(s sizes, rs *appsv1.ReplicaSet) int32 {
	if v, ok := s[rs.Name]; ok {
		return v
	}
	return rsReplicas(rs)
}

// recreateStep is one step of a Recreate rollout: scale every old
// ReplicaSet to zero; wait until none of their pods is left (terminating
// ones included); only then scale the new ReplicaSet to replicas. create
// says the new ReplicaSet may be made now (it is not made earlier, so it
// cannot start pods beside old ones). Pure.
func recreateStep(d *appsv1.Deployment, newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet, pods map[string]podCounts) (out sizes, create bool) {
	out = sizes{}
	for _, rs := range old {
		if rsReplicas(rs) > 0 {
			out[rs.Name] = 0
		}
	}
	if len(out) > 0 {
		return out, false
	}
	for _, rs := range old {
		if p := pods[rs.Name]; p.Active+p.Terminating > 0 || rs.Status.Replicas > 0 {
			return out, false
		}
	}
	if rsReplicas(newRS) != replicas(d) {
		out[newRS.Name] = replicas(d)
	}
	return out, true
}

// scalingEvent reports whether the Deployment's replicas changed since it
// last scaled one of its active ReplicaSets.
func scalingEvent(d *appsv1.Deployment, rss []*appsv1.ReplicaSet) bool {
	for _, rs := range rss {
		if rs == nil || rsReplicas(rs) == 0 {
			continue
		}
		if v, ok := intAnnotation(rs, DesiredReplicasAnnotation); ok && v != replicas(d) {
			return true
		}
	}
	return false
}

// saturated reports whether rs alone is the whole Deployment: at its
// size, scaled for it, and every pod available.
func saturated(d *appsv1.Deployment, rs *appsv1.ReplicaSet) bool {
	if rs == nil {
		return false
	}
	v, ok := intAnnotation(rs, DesiredReplicasAnnotation)
	return ok && v == replicas(d) && rsReplicas(rs) == replicas(d) && rs.Status.AvailableReplicas == replicas(d)
}

// scaleStep resizes a Deployment whose replicas changed, or that is
// paused, without moving its rollout, as Kubernetes does: a single active
// ReplicaSet (or, with none, the newest) takes replicas; with a saturated
// new ReplicaSet the old ones go to zero; otherwise, for a rolling update
// and only when replicas changed, the difference to replicas + maxSurge
// is shared among the active ReplicaSets in proportion to their size
// (read against the max-replicas they were last scaled for), larger ones
// first and the rounding left to the first. newRS may be nil. Every
// ReplicaSet it returns is re-stamped with the Deployment's size. Pure.
func scaleStep(d *appsv1.Deployment, newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet, event bool) sizes {
	out := sizes{}
	want := replicas(d)
	var active []*appsv1.ReplicaSet
	all := slices.Clone(old)
	if newRS != nil {
		all = append(all, newRS)
	}
	for _, rs := range all {
		if rsReplicas(rs) > 0 {
			active = append(active, rs)
		}
	}
	switch {
	case len(active) == 1:
		out[active[0].Name] = want
		return out
	case len(active) == 0:
		if newRS != nil {
			out[newRS.Name] = want
		} else if len(old) > 0 {
			newest := slices.MaxFunc(old, byCreation)
			out[newest.Name] = want
		}
		return out
	}
	if saturated(d, newRS) {
		for _, rs := range active {
			if rs != newRS {
				out[rs.Name] = 0
			}
		}
		return out
	}
	if !rolling(d) || !event {
		return out
	}
	allowed := int32(0)
	if want > 0 {
		allowed = want + maxSurge(d)
	}
	current := int32(0)
	for _, rs := range active {
		current += rsReplicas(rs)
	}
	toAdd := allowed - current
	// Larger first; among equals, newer first when growing and older
	// first when shrinking.
	slices.SortStableFunc(active, func(a, b *appsv1.ReplicaSet) int {
		if ra, rb := rsReplicas(a), rsReplicas(b); ra != rb {
			return int(rb - ra)
		}
		if toAdd > 0 {
			return -byCreation(a, b)
		}
		return byCreation(a, b)
	})
	added := int32(0)
	for _, rs := range active {
		p := proportion(d, rs, toAdd, added)
		out[rs.Name] = rsReplicas(rs) + p
		added += p
	}
	if toAdd != 0 {
		first := active[0].Name
		out[first] = max(out[first]+toAdd-added, 0)
	}
	return out
}

// proportion is rs's share of toAdd replicas (negative to remove), of
// which added are already handed out.
func proportion(d *appsv1.Deployment, rs *appsv1.ReplicaSet, toAdd, added int32) int32 {
	if rsReplicas(rs) == 0 || toAdd == 0 || toAdd == added {
		return 0
	}
	frac := fraction(d, rs)
	allowed := toAdd - added
	if toAdd > 0 {
		return min(frac, allowed)
	}
	return max(frac, allowed)
}

// fraction is how far rs should move to keep its share of the
// Deployment's maximum size.
func fraction(d *appsv1.Deployment, rs *appsv1.ReplicaSet) int32 {
	if replicas(d) == 0 {
		return -rsReplicas(rs)
	}
	maxNow := replicas(d) + maxSurge(d)
	maxBefore, ok := intAnnotation(rs, MaxReplicasAnnotation)
	if !ok || maxBefore == 0 {
		// Scaled by hand: fall back to the Deployment's current size.
		maxBefore = d.Status.Replicas
		if maxBefore == 0 {
			return 0
		}
	}
	scaled := float64(rsReplicas(rs)) * float64(maxNow) / float64(maxBefore)
	return int32(math.Round(scaled)) - rsReplicas(rs)
}
