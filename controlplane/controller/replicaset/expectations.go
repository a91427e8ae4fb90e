package replicaset

import (
	"sync"
	"time"
)

// expectationsTTL bounds how long a ReplicaSet waits for the watch to
// report its own creates and deletes; past it the controller decides
// again from its cache, so a lost event cannot stall a ReplicaSet.
const expectationsTTL = 5 * time.Minute

// expectations remembers, per ReplicaSet key, the creates and deletes a
// pass made that the pod watch has not reported yet, as Kubernetes'
// UIDTrackingControllerExpectations does. Deletes are tracked by pod key,
// so seeing a deletion twice (deletionTimestamp set, then gone) counts
// once. Safe for concurrent use.
type expectations struct {
	mu  sync.Mutex
	m   map[string]*expectation
	ttl time.Duration
	now func() time.Time
}

type expectation struct {
	adds    int
	deletes map[string]bool
	set     time.Time
}

func newExpectations(now func() time.Time) *expectations {
	return &expectations{m: map[string]*expectation{}, ttl: expectationsTTL, now: now}
}

// satisfied reports whether the ReplicaSet key may decide its scale
// again: it expects nothing, or has waited longer than the TTL.
func (e *expectations) satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	if !ok {
		return true
	}
	return (x.adds <= 0 && len(x.deletes) == 0) || e.now().Sub(x.set) > e.ttl
}

// expectCreations records that key is about to create n pods; it
// replaces what key expected before.
func (e *expectations) expectCreations(key string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[key] = &expectation{adds: n, deletes: map[string]bool{}, set: e.now()}
}

// expectDeletions records that key is about to delete the given pods; it
// replaces what key expected before.
func (e *expectations) expectDeletions(key string, pods []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := &expectation{deletes: make(map[string]bool, len(pods)), set: e.now()}
	for _, p := range pods {
		x.deletes[p] = true
	}
	e.m[key] = x
}

// creationObserved counts one create of key as seen (or as never coming,
// when it failed).
func (e *expectations) creationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		x.adds--
	}
}

// deletionObserved counts the deletion of pod by key as seen (or as never
// coming, when it failed).
func (e *expectations) deletionObserved(key, pod string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		delete(x.deletes, pod)
	}
}

// forget drops what key expected (the ReplicaSet is gone).
func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}
