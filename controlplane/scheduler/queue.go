package scheduler

import (
	"container/heap"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Where a pod waits in the queue.
const (
	stateActive        = iota // ready to be tried, in the active heap
	stateBackoff              // failed; waits out its back-off in the backoff heap
	stateUnschedulable        // fit nowhere; waits for a change that may help
	stateInFlight             // popped, being decided or bound
)

// queuedPod is one pod the queue holds.
type queuedPod struct {
	pod      *corev1.Pod
	state    int
	attempts int
	// seq orders pods created in the same second: first queued, first.
	seq int64
	// backoffUntil is when a pod that failed may be tried again.
	backoffUntil time.Time
	// since is when the pod became unschedulable.
	since time.Time
	// popMoves is the queue's move count when the pod was popped: a move
	// after it means the failure may be stale, so the pod backs off
	// instead of waiting for another move.
	popMoves int64
	// changed: the pod's spec or labels changed while it was in flight.
	changed bool
	index   int // in its heap
}

// queue orders the pods waiting for a node: an active heap by priority
// then age, a backoff heap by the end of each pod's back-off, and the
// unschedulable pods, which wait until move says something changed (or
// maxUnschedulable passes, a safety net for changes no event names).
// Safe for concurrent use.
type queue struct {
	mu            sync.Mutex
	ready         *sync.Cond
	active        podHeap
	backoff       podHeap
	unschedulable map[types.UID]*queuedPod
	pods          map[types.UID]*queuedPod
	moves, seq    int64
	closed        bool

	now                        func() time.Time
	initialBackoff, maxBackoff time.Duration
	maxUnschedulable           time.Duration
	depth                      func(active, backoff, unschedulable int)
}

func newQueue(now func() time.Time, depth func(active, backoff, unschedulable int)) *queue {
	q := &queue{
		active:         podHeap{less: byPriorityThenAge},
		backoff:        podHeap{less: byBackoffEnd},
		unschedulable:  map[types.UID]*queuedPod{},
		pods:           map[types.UID]*queuedPod{},
		now:            now,
		initialBackoff: time.Second, maxBackoff: 10 * time.Second,
		maxUnschedulable: 5 * time.Minute,
		depth:            depth,
	}
	q.ready = sync.NewCond(&q.mu)
	return q
}

func priority(p *corev1.Pod) int32 {
	if p.Spec.Priority != nil {
		return *p.Spec.Priority
	}
	return 0
}

func byPriorityThenAge(a, b *queuedPod) bool {
	if pa, pb := priority(a.pod), priority(b.pod); pa != pb {
		return pa > pb
	}
	if ta, tb := a.pod.CreationTimestamp.Time, b.pod.CreationTimestamp.Time; !ta.Equal(tb) {
		return ta.Before(tb)
	}
	return a.seq < b.seq
}

func byBackoffEnd(a, b *queuedPod) bool {
	if !a.backoffUntil.Equal(b.backoffUntil) {
		return a.backoffUntil.Before(b.backoffUntil)
	}
	return a.seq < b.seq
}

// add queues a new pod, or takes the newer object of a known one. With
// changed (its spec or labels differ, not just its status), a waiting
// pod is tried again once its back-off is over.
func (q *queue) add(pod *corev1.Pod, changed bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	defer q.report()
	qp := q.pods[pod.UID]
	if qp == nil {
		q.seq++
		qp = &queuedPod{pod: pod, seq: q.seq}
		q.pods[pod.UID] = qp
		q.toActive(qp)
		return
	}
	qp.pod = pod
	if !changed {
		return
	}
	switch qp.state {
	case stateInFlight:
		qp.changed = true
	case stateUnschedulable:
		delete(q.unschedulable, pod.UID)
		q.afterWait(qp)
	}
}

// delete drops a pod: deleted, bound, or no longer the scheduler's.
func (q *queue) delete(uid types.UID) {
	q.mu.Lock()
	defer q.mu.Unlock()
	defer q.report()
	qp := q.pods[uid]
	if qp == nil {
		return
	}
	delete(q.pods, uid)
	switch qp.state {
	case stateActive:
		heap.Remove(&q.active, qp.index)
	case stateBackoff:
		heap.Remove(&q.backoff, qp.index)
	case stateUnschedulable:
		delete(q.unschedulable, uid)
	}
}

// pop waits for the best active pod, marks it in flight and returns it
// with its pod object as of now (add may replace qp.pod later); false
// once the queue is closed.
func (q *queue) pop() (*queuedPod, *corev1.Pod, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.active.Len() == 0 && !q.closed {
		q.ready.Wait()
	}
	if q.closed {
		return nil, nil, false
	}
	qp := heap.Pop(&q.active).(*queuedPod)
	qp.state = stateInFlight
	qp.popMoves = q.moves
	qp.changed = false
	q.report()
	return qp, qp.pod, true
}

// done forgets a pod that was bound.
func (q *queue) done(qp *queuedPod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.pods[qp.pod.UID] == qp && qp.state == stateInFlight {
		delete(q.pods, qp.pod.UID)
	}
}

// retry takes back a pod whose attempt failed: unschedulable ones wait
// for a change (unless one came while they were in flight), others (an
// error) back off. Either way the pod's back-off grows.
func (q *queue) retry(qp *queuedPod, unschedulable bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	defer q.report()
	if q.pods[qp.pod.UID] != qp || qp.state != stateInFlight {
		return // deleted or bound meanwhile
	}
	qp.attempts++
	now := q.now()
	qp.backoffUntil = now.Add(q.backoffFor(qp.attempts))
	if unschedulable && !qp.changed && qp.popMoves == q.moves {
		qp.state = stateUnschedulable
		qp.since = now
		q.unschedulable[qp.pod.UID] = qp
		return
	}
	qp.state = stateBackoff
	heap.Push(&q.backoff, qp)
}

func (q *queue) backoffFor(attempts int) time.Duration {
	d := q.initialBackoff
	for i := 1; i < attempts && d < q.maxBackoff; i++ {
		d *= 2
	}
	return min(d, q.maxBackoff)
}

// move says something changed that may let unschedulable pods fit (a
// node came or changed, a bound pod went): they are tried again once
// their back-off is over.
func (q *queue) move() {
	q.mu.Lock()
	defer q.mu.Unlock()
	defer q.report()
	q.moves++
	for uid, qp := range q.unschedulable {
		delete(q.unschedulable, uid)
		q.afterWait(qp)
	}
}

// flush moves pods whose back-off is over to the active heap, and pods
// unschedulable for longer than maxUnschedulable to the back-off path.
func (q *queue) flush() {
	q.mu.Lock()
	defer q.mu.Unlock()
	defer q.report()
	now := q.now()
	for q.backoff.Len() > 0 && !q.backoff.items[0].backoffUntil.After(now) {
		q.toActive(heap.Pop(&q.backoff).(*queuedPod))
	}
	for uid, qp := range q.unschedulable {
		if now.Sub(qp.since) >= q.maxUnschedulable {
			delete(q.unschedulable, uid)
			q.afterWait(qp)
		}
	}
}

// afterWait sends a waiting pod to the backoff heap, or straight to the
// active one when its back-off is already over.
func (q *queue) afterWait(qp *queuedPod) {
	if qp.backoffUntil.After(q.now()) {
		qp.state = stateBackoff
		heap.Push(&q.backoff, qp)
		return
	}
	q.toActive(qp)
}

func (q *queue) toActive(qp *queuedPod) {
	qp.state = stateActive
	heap.Push(&q.active, qp)
	q.ready.Signal()
}

// close wakes pop for good.
func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.ready.Broadcast()
}

// lens reports how many pods wait where.
func (q *queue) lens() (active, backoff, unschedulable int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.active.Len(), q.backoff.Len(), len(q.unschedulable)
}

func (q *queue) report() {
	if q.depth != nil {
		q.depth(q.active.Len(), q.backoff.Len(), len(q.unschedulable))
	}
}

// podHeap is a container/heap of queued pods that keeps each pod's
// index, so a deleted pod can leave from the middle.
type podHeap struct {
	items []*queuedPod
	less  func(a, b *queuedPod) bool
}

func (h *podHeap) Len() int           { return len(h.items) }
func (h *podHeap) Less(i, j int) bool { return h.less(h.items[i], h.items[j]) }
func (h *podHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].index, h.items[j].index = i, j
}
func (h *podHeap) Push(x any) {
	qp := x.(*queuedPod)
	qp.index = len(h.items)
	h.items = append(h.items, qp)
}
func (h *podHeap) Pop() any {
	n := len(h.items)
	qp := h.items[n-1]
	h.items[n-1] = nil
	h.items = h.items[:n-1]
	return qp
}
