// Package gc is weir's garbage collector: it deletes objects whose owners
// are gone, and carries out the Foreground and Orphan propagation
// policies, with Kubernetes' semantics (simplified).
//
// It discovers the served resources (preferred versions; Events aside),
// watches each one with a dynamic informer whose cache keeps only
// metadata, and keeps an owner→dependents graph keyed by ownerReferences
// UID. Work is queued by UID and reconciled level-triggered:
//
//   - A dependent none of whose owners is alive (not found, or found with
//     another UID) is deleted with propagationPolicy Background (or the
//     policy its own finalizers ask for). A dependent with one live owner
//     stays, and loses its references to absent owners. The decision is
//     made from the cache and confirmed against the API (GETs of the
//     dependent and every owner) before anything is deleted; the delete
//     carries UID and resourceVersion preconditions.
//   - An owner with a deletionTimestamp and the "foregroundDeletion"
//     finalizer has its dependents deleted with propagationPolicy
//     Foreground, so the deletion cascades; once none remains the
//     finalizer is removed and the server deletes the owner.
//   - An owner with a deletionTimestamp and the "orphan" finalizer has its
//     reference removed from every dependent, then loses the finalizer.
//
// The package owns those two finalizers and the deletion of dependents.
// It does not own any other finalizer, never deletes an object without
// ownerReferences, does not watch Events (as in Kubernetes), and must run
// on one server at a time (the elected leader). It talks to the server
// only through the API, in JSON.
package gc
