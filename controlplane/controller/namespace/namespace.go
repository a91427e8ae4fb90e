package namespace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"

	"weir.dev/weir/controlplane/apiclient"
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
	cfg := apiclient.JSONConfig(c.rc)
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
	// A resync re-queues every terminating namespace now and then, a
	// safety net under the per-namespace back-off.
	factory := informers.NewSharedInformerFactory(kc, 5*time.Minute)
	defer factory.Shutdown() // after cancel below: it waits for the informer to stop
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_, err = factory.Core().V1().Namespaces().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    r.enqueue,
		UpdateFunc: func(_, obj any) { r.enqueue(obj) },
	})
	if err != nil {
		return fmt.Errorf("watch namespaces: %w", err)
	}
	factory.Start(ctx.Done())
	var wg sync.WaitGroup
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

// enqueue queues a namespace that is being deleted.
func (r *run) enqueue(obj any) {
	if ns, ok := obj.(*corev1.Namespace); ok && ns.DeletionTimestamp != nil {
		r.queue.Add(ns.Name)
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
