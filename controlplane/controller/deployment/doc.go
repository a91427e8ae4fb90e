// Package deployment is weir's Deployment controller: it rolls a
// Deployment's pod template out through ReplicaSets, as Kubernetes'
// deployment controller does, and holds the pure pieces kubectl's
// rollout verbs need (History, RollbackTo).
//
// Each Deployment is reconciled level-triggered from informer caches of
// Deployments, ReplicaSets and pods. One sync (decide, in plan.go) reads
// a snapshot — the Deployment, the ReplicaSets it controls, their pods
// counted per ReplicaSet — and returns what to write:
//
//   - ReplicaSets are named "<deployment>-<pod-template-hash>", with the
//     pod-template-hash label added to their selector and template; the
//     hash is Kubernetes' (FNV-32a of the template and collisionCount),
//     so names match. A name taken by another template bumps
//     status.collisionCount.
//   - RollingUpdate (rollingStep): maxSurge rounded up, maxUnavailable
//     rounded down, 1 unavailable if both come to 0. At every instant the
//     pods (not being deleted) number at most replicas + maxSurge and the
//     available ones at least replicas − maxUnavailable: unlike
//     Kubernetes, the step counts pods its ReplicaSets have not deleted
//     yet and ignores available pods beyond a ReplicaSet's spec, so the
//     bounds hold whatever the ReplicaSet controller's timing.
//   - Recreate (recreateStep): old ReplicaSets to zero, wait until none of
//     their pods is left (terminating ones included), then the new one.
//   - A change of replicas during a rollout, and a paused Deployment, only
//     scale (scaleStep: proportionally across ReplicaSets, by the
//     desired-replicas and max-replicas annotations). spec.paused stops
//     the rollout where it is; resuming continues it.
//   - Revisions: the new ReplicaSet gets the highest revision + 1 and the
//     Deployment's annotations (kubernetes.io/change-cause among them);
//     the Deployment carries its revision. Rolling back is writing an old
//     revision's template into the Deployment (RollbackTo, as kubectl
//     rollout undo does): the existing ReplicaSet with that template
//     becomes current and is renumbered, its former number kept in
//     revision-history. Past revisionHistoryLimit, old ReplicaSets without
//     pods are deleted once a rollout is complete.
//   - Status: replicas, updatedReplicas, readyReplicas, availableReplicas,
//     unavailableReplicas, terminatingReplicas, observedGeneration; the
//     Available condition; the Progressing condition with Kubernetes'
//     reasons (NewReplicaSetCreated, ReplicaSetUpdated,
//     NewReplicaSetAvailable, DeploymentPaused/Resumed,
//     ProgressDeadlineExceeded once progressDeadlineSeconds pass without
//     progress; the rollout is not undone); ReplicaFailure copied from the
//     ReplicaSets.
//
// The package owns the ReplicaSets a Deployment controls and the status
// of Deployments; of a Deployment's own object it writes only the
// revision annotation. It never touches pods (the ReplicaSet controller
// does), never adopts a ReplicaSet another controller owns, runs on one
// server at a time (the elected leader) and talks to the server only
// through the API, in JSON.
package deployment
