package endpointslice

import (
	"context"
	"log/slog"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/workqueue"
)

// work is one kind of work over Service keys: a rate-limited queue, the
// changes noted for each key since its last pass, and the pass itself.
// The controller has two, slices and legacy Endpoints, so that a slow
// write of a big Endpoints object never holds up the slices data planes
// wait for, and Endpoints writes coalesce when changes come fast.
type work struct {
	what  string // "endpointslices" or "endpoints", for logs
	queue workqueue.TypedRateLimitingInterface[string]
	// batch delays a pass after a change, so that the changes of that
	// time are written at once; 0 for none.
	batch   time.Duration
	pending *pending
	// pass brings the key's objects in step; changes are those noted
	// before it started, which it may mark as written.
	pass func(ctx context.Context, key string, changes map[string]change) error
}

func newWork(what string, batch time.Duration, pass func(context.Context, string, map[string]change) error) *work {
	return &work{
		what: what, batch: batch, pending: newPending(), pass: pass,
		queue: workqueue.NewTypedRateLimitingQueue(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](10*time.Millisecond, 30*time.Second)),
	}
}

// add queues key after a change to pod ("" for the Service itself) seen
// at at; a zero at queues it without noting a change (a resync).
func (w *work) add(key, pod string, at time.Time) {
	if !at.IsZero() {
		w.pending.note(key, pod, at)
	}
	if w.batch > 0 {
		// A key waiting already keeps its earlier time: changes
		// coalesce into one pass.
		w.queue.AddAfter(key, w.batch)
		return
	}
	w.queue.Add(key)
}

// run processes the queue with n workers until ctx ends.
func (w *work) run(ctx context.Context, n int, log *slog.Logger) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for w.next(ctx, log) {
			}
		})
	}
	<-ctx.Done()
	w.queue.ShutDown()
	wg.Wait()
}

func (w *work) next(ctx context.Context, log *slog.Logger) bool {
	key, quit := w.queue.Get()
	if quit {
		return false
	}
	defer w.queue.Done(key)
	// Taken before the caches are read: a change noted is already in
	// them (an informer updates its store before it calls handlers).
	changes := w.pending.take(key)
	err := w.pass(ctx, key, changes)
	switch {
	case err == nil:
		w.queue.Forget(key)
		return true
	case ctx.Err() != nil:
		return true
	case apierrors.IsConflict(err), apierrors.IsAlreadyExists(err), apierrors.IsNotFound(err):
		// Someone else wrote, or the cache is behind; the informer
		// catches up before the retry.
		log.Debug("sync service; will retry", slog.String("service", key), slog.String("objects", w.what), slog.Any("error", err))
	default:
		log.Warn("sync service; will retry", slog.String("service", key), slog.String("objects", w.what), slog.Any("error", err))
	}
	w.pending.restore(key, changes)
	w.queue.AddRateLimited(key)
	return true
}
