// Package replicaset is weir's ReplicaSet controller: it keeps
// spec.replicas pods that match a ReplicaSet's selector, created from its
// template, and reports what it sees in the ReplicaSet's status, as
// Kubernetes' ReplicaSet controller does.
//
// Each ReplicaSet is reconciled level-triggered from informer caches of
// ReplicaSets and pods:
//
//   - Ownership: the ReplicaSet owns the active pods whose controller
//     reference is its UID. It adopts matching pods that have no
//     controller (after a fresh read confirms it is not being deleted),
//     and releases pods it controls whose labels stop matching; both are
//     strategic merge patches of ownerReferences carrying the pod's UID as
//     a precondition.
//   - Scale: too few pods, and it creates the difference (at most 500 per
//     pass, in slow-start batches of 1, 2, 4, … that stop at the first
//     failure), each named "<replicaset>-<random5>" through generateName
//     and controlled by the ReplicaSet. Too many, and it deletes the first
//     ones in the ranking rankForDeletion gives: unscheduled, then pending,
//     then not ready, then cheaper by pod-deletion-cost, then ready for
//     less time, then restarted more, then newest.
//   - Expectations: the creates and deletes of a pass are remembered until
//     the pod watch reports them (or five minutes pass), and no other scale
//     decision is made for that ReplicaSet meanwhile, so a burst is never
//     repeated because the cache has not caught up.
//   - Status: replicas, fullyLabeledReplicas, readyReplicas,
//     availableReplicas (ready for minReadySeconds), terminatingReplicas,
//     observedGeneration and the ReplicaFailure condition. A pod that will
//     turn available once minReadySeconds pass re-queues its ReplicaSet
//     for that moment.
//
// The decisions (ownership, the scale diff and its ranking, the status)
// are pure functions in decide.go and ownership.go; the deployment
// controller shares Claim, the patches and the pod readiness helpers.
//
// The package owns the pods it creates and the status of ReplicaSets. It
// never changes a ReplicaSet's spec (the Deployment controller and users
// do), never deletes a pod it does not control, and does not finish pod
// deletions: a pod bound to a node stays terminating until that node's
// agent is done with it. It runs on one server at a time (the elected
// leader) and talks to the server only through the API, in JSON.
package replicaset
