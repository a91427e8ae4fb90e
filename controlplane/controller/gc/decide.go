package gc

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ownerState is what became of one owner a dependent names.
type ownerState int

const (
	// ownerAlive: the owner exists with the referenced UID and is not
	// waiting for its dependents. An owner whose kind cannot be resolved
	// counts as alive, so an unknown reference never causes a deletion.
	ownerAlive ownerState = iota + 1
	// ownerAbsent: no object of that name, or one with another UID.
	ownerAbsent
	// ownerDeleting: the owner is being deleted in the foreground and
	// waits for its dependents.
	ownerDeleting
)

func (s ownerState) String() string {
	switch s {
	case ownerAlive:
		return "alive"
	case ownerAbsent:
		return "absent"
	case ownerDeleting:
		return "deleting"
	}
	return "unknown"
}

// owner is one owner reference of a dependent with what became of it.
type owner struct {
	UID   types.UID
	State ownerState
}

// verdict is what to do with a dependent that is not itself being
// deleted: nothing (the zero value), drop some owner references, or
// delete it with a propagation policy.
type verdict struct {
	Delete     bool
	Policy     metav1.DeletionPropagation
	DropOwners []types.UID
}

func (v verdict) none() bool { return !v.Delete && len(v.DropOwners) == 0 }

// decideDependent applies Kubernetes' rules to a dependent with the given
// finalizers and owners:
//   - an object without owner references is never collected;
//   - with at least one live owner it stays, and the references to absent
//     owners and to owners waiting for their dependents are dropped (the
//     latter would otherwise wait for it forever);
//   - otherwise, when some owner waits for its dependents, it is deleted
//     in the foreground so the deletion cascades before the owner goes;
//   - otherwise (every owner absent) it is deleted with the policy its own
//     finalizers ask for, Background by default.
func decideDependent(finalizers []string, owners []owner) verdict {
	if len(owners) == 0 {
		return verdict{}
	}
	var alive bool
	var drop []types.UID
	var waiting bool
	for _, o := range owners {
		switch o.State {
		case ownerAlive:
			alive = true
		case ownerDeleting:
			waiting = true
			drop = append(drop, o.UID)
		default:
			drop = append(drop, o.UID)
		}
	}
	switch {
	case alive:
		return verdict{DropOwners: drop}
	case waiting:
		return verdict{Delete: true, Policy: metav1.DeletePropagationForeground}
	case slices.Contains(finalizers, FinalizerOrphan):
		return verdict{Delete: true, Policy: metav1.DeletePropagationOrphan}
	case slices.Contains(finalizers, FinalizerForeground):
		return verdict{Delete: true, Policy: metav1.DeletePropagationForeground}
	}
	return verdict{Delete: true, Policy: metav1.DeletePropagationBackground}
}

// ownerPlan is what to do for an owner that is being deleted.
type ownerPlan struct {
	// Orphan lists the dependents to drop the owner's reference from.
	Orphan []objectRef
	// Recheck lists the dependents to reconcile (they decide for
	// themselves whether to go or to drop the reference).
	Recheck []types.UID
	// RemoveFinalizer is the finalizer to take off the owner, "" for none.
	RemoveFinalizer string
}

// decideDeleting plans for an object with a deletionTimestamp given its
// observed dependents. Orphaning comes first: the owner's reference is
// dropped from every dependent, then the "orphan" finalizer goes. A
// foreground deletion waits while any dependent remains (including one
// that is itself terminating), and drops "foregroundDeletion" once none
// does. Other finalizers are not the collector's.
func decideDeleting(n node, dependents []node) ownerPlan {
	if !n.deleting {
		return ownerPlan{}
	}
	switch {
	case n.has(FinalizerOrphan):
		p := ownerPlan{RemoveFinalizer: FinalizerOrphan}
		for _, d := range dependents {
			p.Orphan = append(p.Orphan, d.ref)
		}
		return p
	case n.has(FinalizerForeground):
		if len(dependents) == 0 {
			return ownerPlan{RemoveFinalizer: FinalizerForeground}
		}
		var p ownerPlan
		for _, d := range dependents {
			p.Recheck = append(p.Recheck, d.ref.UID)
		}
		return p
	}
	return ownerPlan{}
}

// without returns list minus every s, never nil.
func without(list []string, s string) []string {
	out := make([]string, 0, len(list))
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}
