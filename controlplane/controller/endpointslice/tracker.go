package endpointslice

import (
	"strconv"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// tracker remembers what the controller wrote (or deleted) until its own
// informer has seen it, so that the next pass over a Service reads its
// own writes: an informer cache lags the API by a watch round-trip, and
// a pass that decided from it could create a slice twice or update from
// a stale resourceVersion and conflict with itself. Objects are grouped
// by the Service they belong to. Safe for concurrent use.
//
// It compares resourceVersions as numbers, which weir's server
// guarantees (they are etcd revisions); a resourceVersion that is not a
// number reads as 0, and the tracker then trusts the cache.
type tracker[T metav1.Object] struct {
	// cached reads the informer's store by namespace/name.
	cached func(key string) (T, bool)
	// group names the Service an object belongs to ("" for none).
	group func(T) string

	mu sync.Mutex
	m  map[string]map[string]written[T] // group → object name → write
}

type written[T any] struct {
	rv      uint64
	obj     T // the object as written; zero for a delete
	deleted bool
}

func newTracker[T metav1.Object](cached func(string) (T, bool), group func(T) string) *tracker[T] {
	return &tracker[T]{cached: cached, group: group, m: map[string]map[string]written[T]{}}
}

func version(o metav1.Object) uint64 {
	v, _ := strconv.ParseUint(o.GetResourceVersion(), 10, 64)
	return v
}

func objectKey(o metav1.Object) string { return o.GetNamespace() + "/" + o.GetName() }

// wrote records obj as the API returned it after a create or update.
func (t *tracker[T]) wrote(obj T) {
	t.mu.Lock()
	defer t.mu.Unlock()
	// Checked under the lock that observe takes: the store is updated
	// before the handler runs, so either the store has it already or
	// observe will clear this record.
	if c, ok := t.cached(objectKey(obj)); ok && version(c) >= version(obj) {
		return
	}
	t.set(obj, written[T]{rv: version(obj), obj: obj})
}

// deleted records the deletion of obj (the version the controller
// deleted).
func (t *tracker[T]) deleted(obj T) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, cached := t.cached(objectKey(obj))
	_, wrote := t.m[t.group(obj)][obj.GetName()]
	if !cached && !wrote {
		return // nothing shows it any more
	}
	rv := version(obj)
	if cached {
		rv = max(rv, version(c))
	}
	var zero T
	t.set(obj, written[T]{rv: rv, obj: zero, deleted: true})
}

func (t *tracker[T]) set(obj T, w written[T]) {
	g := t.group(obj)
	if t.m[g] == nil {
		t.m[g] = map[string]written[T]{}
	}
	t.m[g][obj.GetName()] = w
}

func (t *tracker[T]) drop(g, name string) {
	delete(t.m[g], name)
	if len(t.m[g]) == 0 {
		delete(t.m, g)
	}
}

// observe is told of every add or update the informer sees; it reports
// whether the event carries nothing the controller does not know (its
// own write echoed back, or an older version), so no pass is needed.
func (t *tracker[T]) observe(obj T) (known bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	g := t.group(obj)
	w, ok := t.m[g][obj.GetName()]
	if !ok {
		return false
	}
	v := version(obj)
	switch {
	case w.deleted && v <= w.rv:
		return true
	case w.deleted:
		t.drop(g, obj.GetName())
		return false
	case v >= w.rv:
		t.drop(g, obj.GetName())
		return v == w.rv
	default:
		return true
	}
}

// observeDelete is told of every delete the informer sees; it reports
// whether the controller made it.
func (t *tracker[T]) observeDelete(obj T) (own bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	g := t.group(obj)
	w, ok := t.m[g][obj.GetName()]
	t.drop(g, obj.GetName())
	return ok && w.deleted
}

// overlay returns the objects of group g as the controller last knew
// them: cached, the informer's objects of that group, with the
// controller's newer writes in place of older cached versions, its
// creations the cache lacks added and its deletions removed. Records
// stay until the informer's event clears them, so that the event is
// known as the controller's own.
func (t *tracker[T]) overlay(g string, cached []T) []T {
	t.mu.Lock()
	defer t.mu.Unlock()
	ws := t.m[g]
	if len(ws) == 0 {
		return cached
	}
	out := make([]T, 0, len(cached)+len(ws))
	seen := make(map[string]bool, len(ws))
	for _, c := range cached {
		w, ok := ws[c.GetName()]
		if !ok {
			out = append(out, c)
			continue
		}
		seen[c.GetName()] = true
		v := version(c)
		switch {
		case w.deleted && v <= w.rv:
		case !w.deleted && v < w.rv:
			out = append(out, w.obj)
		default:
			// The cache has caught up, or moved past the controller.
			out = append(out, c)
		}
	}
	for name, w := range ws {
		if !seen[name] && !w.deleted {
			out = append(out, w.obj)
		}
	}
	return out
}
