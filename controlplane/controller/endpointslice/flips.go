package endpointslice

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// flips remembers, for every pod, when the controller first saw its
// Ready condition take the value it has now, until a slice showing that
// value is written: the start and the end of the time the
// ready-to-write histogram measures. Safe for concurrent use.
//
// It is told of pods by the pod informer's transform, which sees every
// version in order and before the informer's store holds it. A pass that
// reads a pod from the store therefore always finds the pod's flip
// already recorded, however its pass and the informer's handlers
// interleave; a record kept from the event handler (which runs after the
// store is updated) could be taken by a pass too early or too late and
// the change go unmeasured.
type flips struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]flip // by pod key
}

type flip struct {
	uid   types.UID
	ready bool
	// at is when Ready was seen to change to ready; zero if it was not
	// seen changing (a pod seen first, or a flip already written).
	at time.Time
}

func newFlips(now func() time.Time) *flips { return &flips{now: now, m: map[string]flip{}} }

// see records a version of pod.
func (f *flips) see(pod *corev1.Pod) {
	k, ready := podKey(pod.Namespace, pod.Name), podReady(pod)
	f.mu.Lock()
	defer f.mu.Unlock()
	prev, ok := f.m[k]
	switch {
	case !ok || prev.uid != pod.UID:
		f.m[k] = flip{uid: pod.UID, ready: ready}
	case prev.ready != ready:
		f.m[k] = flip{uid: pod.UID, ready: ready, at: f.now()}
	}
}

// forget drops a deleted pod (unless a pod of the same name has been
// seen since).
func (f *flips) forget(pod *corev1.Pod) {
	k := podKey(pod.Namespace, pod.Name)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m[k].uid == pod.UID {
		delete(f.m, k)
	}
}

// pending returns when the pod's Ready condition changed to serving, if
// that change has not been written yet.
func (f *flips) pending(pod string, serving bool) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.m[pod]
	if !ok || r.at.IsZero() || r.ready != serving {
		return time.Time{}, false
	}
	return r.at, true
}

// written is told that the pod's endpoint was written with serving; it
// returns when the change that shows was seen, once per change.
func (f *flips) written(pod string, serving bool) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.m[pod]
	if !ok || r.at.IsZero() || r.ready != serving {
		return time.Time{}, false
	}
	at := r.at
	r.at = time.Time{}
	f.m[pod] = r
	return at, true
}
