package namespace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
)

// errContentRemaining asks for another pass later: the namespace still
// holds objects that are terminating.
var errContentRemaining = errors.New("namespace: content remaining")

// Controller is the namespace lifecycle controller. Run it on one server
// at a time (the elected leader). Run may be called again after it
// returned; each call starts from a fresh discovery.
type Controller struct {
	client  kubernetes.Interface
	rc      *rest.Config
	log     *slog.Logger
	workers int
	// backoffBase and backoffMax bound the wait between passes over a
	// namespace whose content is still going (doubling per pass).
	backoffBase, backoffMax time.Duration
}

// New returns a namespace controller that discovers resources through c
// and reads, empties and finalizes namespaces with JSON clients built
// from rc. It does no I/O.
func New(c kubernetes.Interface, rc *rest.Config, log *slog.Logger) *Controller {
	if log == nil {
		log = slog.Default()
	}
	return &Controller{client: c, rc: rc, log: log, workers: 2,
		backoffBase: 50 * time.Millisecond, backoffMax: 5 * time.Second}
}

// Run discovers the namespaced resources, watches namespaces and empties
// and finalizes each one being deleted, until ctx ends; it returns nil
// then, or an error when it cannot start.
func (c *Controller) Run(ctx context.Context) error {
	if c.client == nil || c.rc == nil {
		return errors.New("namespace: a client and a rest config are required")
	}
	cfg := rest.CopyConfig(c.rc)
	cfg.ContentType = "application/json"
	cfg.AcceptContentTypes = "application/json"
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("build dynamic client: %w", err)
	}
	// The typed clients of built-in kinds prefer protobuf unless told
	// otherwise; this one is told.
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("build client: %w", err)
	}
	rs, err := discover(ctx, c.client.Discovery(), c.log)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	r := &run{
		client: kc, dyn: dyn, resources: rs, log: c.log,
		queue: workqueue.NewTypedRateLimitingQueue(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](c.backoffBase, c.backoffMax)),
	}
	defer r.queue.ShutDown()
	var wg sync.WaitGroup
	wg.Go(func() { r.watch(ctx) })
	for range c.workers {
		wg.Go(func() { r.work(ctx) })
	}
	<-ctx.Done()
	r.queue.ShutDown()
	wg.Wait()
	return nil
}

// run is one Run's state.
type run struct {
	client    kubernetes.Interface
	dyn       dynamic.Interface
	resources []resource
	queue     workqueue.TypedRateLimitingInterface[string]
	log       *slog.Logger
}

func (r *run) enqueue(ns *corev1.Namespace) {
	if ns.DeletionTimestamp != nil {
		r.queue.Add(ns.Name)
	}
}

// watch lists and watches namespaces and queues the ones being deleted,
// until ctx ends; it re-lists whenever a watch cannot be resumed.
func (r *run) watch(ctx context.Context) {
	const initialWait = 100 * time.Millisecond
	wait := initialWait
	api := r.client.CoreV1().Namespaces()
	for ctx.Err() == nil {
		err := func() error {
			list, err := api.List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			for i := range list.Items {
				r.enqueue(&list.Items[i])
			}
			wait = initialWait
			rv := list.ResourceVersion
			for {
				timeout := int64(300 + rand.IntN(300))
				w, err := api.Watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true, TimeoutSeconds: &timeout})
				if err != nil {
					return err
				}
				rv, err = r.drain(ctx, w, rv)
				w.Stop()
				if err != nil || ctx.Err() != nil {
					return err
				}
			}
		}()
		if ctx.Err() != nil {
			return
		}
		if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
			continue
		}
		r.log.Warn("list and watch namespaces; retrying", slog.Any("error", err), slog.Duration("retry_in", wait))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// drain handles one watch's events and returns the last resourceVersion
// seen; a nil error means the watch may be resumed from it.
func (r *run) drain(ctx context.Context, w watch.Interface, rv string) (string, error) {
	events := 0
	for {
		select {
		case <-ctx.Done():
			return rv, nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				if events == 0 {
					return rv, errors.New("watch closed without events")
				}
				return rv, nil
			}
			events++
			switch ev.Type {
			case watch.Error:
				return rv, apierrors.FromObject(ev.Object)
			case watch.Added, watch.Modified, watch.Bookmark:
				ns, ok := ev.Object.(*corev1.Namespace)
				if !ok {
					continue
				}
				if ns.ResourceVersion != "" {
					rv = ns.ResourceVersion
				}
				if ev.Type != watch.Bookmark {
					r.enqueue(ns)
				}
			case watch.Deleted:
				if ns, ok := ev.Object.(*corev1.Namespace); ok && ns.ResourceVersion != "" {
					rv = ns.ResourceVersion
				}
			}
		}
	}
}

func (r *run) work(ctx context.Context) {
	for {
		name, quit := r.queue.Get()
		if quit {
			return
		}
		err := r.sync(ctx, name)
		switch {
		case err == nil:
			r.queue.Forget(name)
		case ctx.Err() != nil:
		case errors.Is(err, errContentRemaining):
			r.log.Debug("namespace content remaining", slog.String("namespace", name))
			r.queue.AddRateLimited(name)
		default:
			r.log.Warn("delete namespace content; will retry", slog.String("namespace", name), slog.Any("error", err))
			r.queue.AddRateLimited(name)
		}
		r.queue.Done(name)
	}
}

// sync makes one pass over a namespace being deleted: delete its content,
// and finalize it once nothing is left.
func (r *run) sync(ctx context.Context, name string) error {
	ns, err := r.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get namespace %s: %w", name, err)
	}
	if ns.DeletionTimestamp == nil || !slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes) {
		return nil
	}
	left, err := deleteContent(ctx, r.dyn, r.resources, name)
	if err != nil || !left.empty() {
		r.report(ctx, ns, err, left)
		if err != nil {
			return err
		}
		return errContentRemaining
	}
	if err := r.finalize(ctx, name); err != nil {
		return fmt.Errorf("finalize namespace %s: %w", name, err)
	}
	r.log.Info("namespace finalized", slog.String("namespace", name))
	return nil
}

// report writes the namespace's deletion conditions when they changed.
// Best effort: a failed write is retried by the next pass.
func (r *run) report(ctx context.Context, ns *corev1.Namespace, failure error, left content) {
	conds := conditions(ns.Status.Conditions, metav1.Now(), failure, left)
	if sameConditions(conds, ns.Status.Conditions) {
		return
	}
	ns = ns.DeepCopy()
	ns.Status.Conditions = conds
	if _, err := r.client.CoreV1().Namespaces().UpdateStatus(ctx, ns, metav1.UpdateOptions{}); err != nil {
		r.log.Debug("update namespace conditions", slog.String("namespace", ns.Name), slog.Any("error", err))
	}
}

// finalize removes the "kubernetes" finalizer from spec.finalizers
// through the finalize subresource; the server removes the namespace
// once no finalizer is left.
func (r *run) finalize(ctx context.Context, name string) error {
	api := r.client.CoreV1().Namespaces()
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ns, err := api.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if !slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes) {
			return nil
		}
		ns.Spec.Finalizers = withoutFinalizer(ns.Spec.Finalizers, corev1.FinalizerKubernetes)
		_, err = api.Finalize(ctx, ns, metav1.UpdateOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
}
