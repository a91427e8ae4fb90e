// Package namespace is weir's namespace lifecycle controller: it empties
// a namespace that is being deleted and then finalizes it, as
// Kubernetes' namespace controller does.
//
// Deleting a Namespace only marks it (deletionTimestamp, phase
// Terminating); the server keeps it while spec.finalizers holds
// "kubernetes". For each such namespace the controller deletes every
// object in it, one deletecollection per namespaced resource that
// discovery lists (propagation Background; each pod with its grace
// period, so pods a node runs stay until that node's agent finishes
// them), then lists again. While anything remains it records the
// NamespaceDeletionContentFailure, NamespaceContentRemaining and
// NamespaceFinalizersRemaining conditions and tries again with back-off;
// once nothing remains it removes "kubernetes" through the finalize
// subresource, and the server removes the namespace.
//
// It owns the "kubernetes" namespace finalizer and the deletion
// conditions. It must not finalize a namespace that still has content,
// touch other finalizers (of the namespace or of its objects), or force
// anything: objects with finalizers and terminating pods are waited for.
// It watches namespaces with a client-go informer, runs on one server at
// a time (the elected leader) and talks to the server only through the
// API, in JSON.
package namespace
