package gc

import (
	"slices"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Finalizers the collector acts on; the API server adds them when an
// object is deleted with the Foreground or Orphan propagation policy.
const (
	FinalizerForeground = metav1.FinalizerDeleteDependents // "foregroundDeletion"
	FinalizerOrphan     = metav1.FinalizerOrphanDependents // "orphan"
)

// objectRef names one object: where it is served and which incarnation.
type objectRef struct {
	Resource  schema.GroupVersionResource
	Namespace string
	Name      string
	UID       types.UID
}

func (r objectRef) String() string {
	gr := r.Resource.GroupResource().String()
	if r.Namespace == "" {
		return gr + " " + r.Name
	}
	return gr + " " + r.Namespace + "/" + r.Name
}

// node is what the graph knows of one object: the metadata that decides
// garbage collection, nothing else.
type node struct {
	ref        objectRef
	owners     []metav1.OwnerReference
	deleting   bool // deletionTimestamp is set
	finalizers []string
}

func (n *node) has(finalizer string) bool { return slices.Contains(n.finalizers, finalizer) }

// waitingForDependents reports an owner deleted in the foreground: it
// stays until its dependents are gone.
func (n *node) waitingForDependents() bool { return n.deleting && n.has(FinalizerForeground) }

// sameState reports whether a and b agree on everything the collector
// decides on, so an update that changed only spec or status is ignored.
func sameState(a, b *node) bool {
	return a.ref == b.ref && a.deleting == b.deleting &&
		slices.Equal(a.finalizers, b.finalizers) &&
		slices.EqualFunc(a.owners, b.owners, sameOwnerRef)
}

func sameOwnerRef(a, b metav1.OwnerReference) bool {
	return a.UID == b.UID && a.APIVersion == b.APIVersion && a.Kind == b.Kind && a.Name == b.Name &&
		boolValue(a.Controller) == boolValue(b.Controller) &&
		boolValue(a.BlockOwnerDeletion) == boolValue(b.BlockOwnerDeletion)
}

func boolValue(b *bool) bool { return b != nil && *b }

// graph is the owner→dependents graph built from the informers, keyed by
// UID. Owners are indexed whether or not they have been observed, so a
// dependent of an owner that never existed is still found. Safe for
// concurrent use.
type graph struct {
	mu         sync.Mutex
	nodes      map[types.UID]*node
	dependents map[types.UID]map[types.UID]struct{} // owner UID -> dependent UIDs
}

func newGraph() *graph {
	return &graph{nodes: map[types.UID]*node{}, dependents: map[types.UID]map[types.UID]struct{}{}}
}

// observe records the current state of an object (added or updated) and
// returns the UIDs whose reconciliation the change may affect: the object
// itself when anything the collector decides on changed, and any of its
// old or new owners that are being deleted (they wait on, or orphan,
// their dependents).
func (g *graph) observe(n *node) []types.UID {
	g.mu.Lock()
	defer g.mu.Unlock()
	uid := n.ref.UID
	old := g.nodes[uid]
	if old != nil && sameState(old, n) {
		g.nodes[uid] = n
		return nil
	}
	if old != nil {
		g.unindex(old)
	}
	g.nodes[uid] = n
	for _, o := range n.owners {
		deps := g.dependents[o.UID]
		if deps == nil {
			deps = map[types.UID]struct{}{}
			g.dependents[o.UID] = deps
		}
		deps[uid] = struct{}{}
	}
	out := []types.UID{uid}
	if old != nil {
		out = g.deletingOwners(out, old.owners)
	}
	return g.deletingOwners(out, n.owners)
}

// forget removes a deleted object and returns the UIDs the removal may
// affect: every dependent (its owner is gone) and its owners that are
// being deleted (one dependent fewer to wait for).
func (g *graph) forget(uid types.UID) []types.UID {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.nodes[uid]
	if old == nil {
		return nil
	}
	delete(g.nodes, uid)
	g.unindex(old)
	var out []types.UID
	for d := range g.dependents[uid] {
		out = append(out, d)
	}
	slices.Sort(out)
	return g.deletingOwners(out, old.owners)
}

// unindex drops n from the dependents index of each of its owners.
func (g *graph) unindex(n *node) {
	for _, o := range n.owners {
		deps := g.dependents[o.UID]
		delete(deps, n.ref.UID)
		if len(deps) == 0 {
			delete(g.dependents, o.UID)
		}
	}
}

// deletingOwners appends the UIDs of owners that are known and being
// deleted, each once.
func (g *graph) deletingOwners(out []types.UID, owners []metav1.OwnerReference) []types.UID {
	for _, o := range owners {
		if on := g.nodes[o.UID]; on != nil && on.deleting && !slices.Contains(out, o.UID) {
			out = append(out, o.UID)
		}
	}
	return out
}

// get returns a copy of the node with uid.
func (g *graph) get(uid types.UID) (node, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.nodes[uid]
	if n == nil {
		return node{}, false
	}
	return *n, true
}

// dependentsOf returns copies of the observed dependents of owner, in UID
// order.
func (g *graph) dependentsOf(owner types.UID) []node {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []node
	for d := range g.dependents[owner] {
		if n := g.nodes[d]; n != nil {
			out = append(out, *n)
		}
	}
	slices.SortFunc(out, func(a, b node) int {
		switch {
		case a.ref.UID < b.ref.UID:
			return -1
		case a.ref.UID > b.ref.UID:
			return 1
		}
		return 0
	})
	return out
}

// len is the number of observed objects.
func (g *graph) len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.nodes)
}
