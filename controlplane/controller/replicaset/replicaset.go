package replicaset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"weir.dev/weir/controlplane/apiclient"
)

// Controller is the ReplicaSet controller. Run it on one server at a time
// (the elected leader). Run may be called again after it returned; each
// call starts from fresh caches and expectations.
type Controller struct {
	client  kubernetes.Interface
	rc      *rest.Config
	log     *slog.Logger
	workers int
	now     func() time.Time
}

// New returns a ReplicaSet controller that talks to the API through a
// JSON client built from rc (c is accepted for symmetry with the other
// loops and used only when rc is nil). It does no I/O.
func New(c kubernetes.Interface, rc *rest.Config, log *slog.Logger) *Controller {
	if log == nil {
		log = slog.Default()
	}
	return &Controller{client: c, rc: rc, log: log, workers: 4, now: time.Now}
}

// Run watches ReplicaSets and pods and reconciles every ReplicaSet until
// ctx ends; it returns nil then, or an error when it cannot start.
func (c *Controller) Run(ctx context.Context) error {
	kc, err := apiclient.Typed("replicaset", c.client, c.rc)
	if err != nil {
		return err
	}
	// A resync re-queues every ReplicaSet now and then: a safety net under
	// the events, for a status whose write was lost.
	factory := informers.NewSharedInformerFactoryWithOptions(kc, 0,
		informers.WithCustomResyncConfig(map[metav1.Object]time.Duration{&appsv1.ReplicaSet{}: 5 * time.Minute}))
	defer factory.Shutdown() // after cancel below: it waits for the informers to stop
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rsInf, podInf := factory.Apps().V1().ReplicaSets(), factory.Core().V1().Pods()
	r := &run{
		client: kc, rsLister: rsInf.Lister(), podLister: podInf.Lister(), log: c.log, now: c.now,
		exp: newExpectations(c.now),
		queue: workqueue.NewTypedRateLimitingQueue(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](5*time.Millisecond, 30*time.Second)),
	}
	defer r.queue.ShutDown()
	if _, err := rsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    r.enqueue,
		UpdateFunc: func(_, cur any) { r.enqueue(cur) },
		DeleteFunc: r.deleteReplicaSet,
	}); err != nil {
		return fmt.Errorf("watch replicasets: %w", err)
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    r.addPod,
		UpdateFunc: r.updatePod,
		DeleteFunc: r.deletePod,
	}); err != nil {
		return fmt.Errorf("watch pods: %w", err)
	}
	factory.Start(ctx.Done())
	// Deciding before the pod cache is full would create pods that exist.
	factory.WaitForCacheSync(ctx.Done())
	if ctx.Err() != nil {
		return nil
	}
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
	rsLister  appslisters.ReplicaSetLister
	podLister corelisters.PodLister
	exp       *expectations
	queue     workqueue.TypedRateLimitingInterface[string]
	log       *slog.Logger
	now       func() time.Time
}

func (r *run) enqueue(obj any) {
	if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
		r.queue.Add(key)
	}
}

func (r *run) deleteReplicaSet(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		return
	}
	r.exp.forget(key)
	r.queue.Add(key)
}

// owner is the ReplicaSet in the cache that ref names, or nil.
func (r *run) owner(ns string, ref *metav1.OwnerReference) *appsv1.ReplicaSet {
	if ref == nil || ref.Kind != "ReplicaSet" {
		return nil
	}
	rs, err := r.rsLister.ReplicaSets(ns).Get(ref.Name)
	if err != nil || rs.UID != ref.UID {
		return nil
	}
	return rs
}

// wakeMatching queues every ReplicaSet that could adopt the orphan p.
func (r *run) wakeMatching(p *corev1.Pod) {
	rss, err := r.rsLister.ReplicaSets(p.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, rs := range rss {
		sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(p.Labels)) {
			r.enqueue(rs)
		}
	}
}

func (r *run) addPod(obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if p.DeletionTimestamp != nil {
		// Seen for the first time already going (a restart, a relist):
		// it no longer counts, so it is a deletion as far as we care.
		r.deletePod(p)
		return
	}
	if ref := metav1.GetControllerOfNoCopy(p); ref != nil {
		if rs := r.owner(p.Namespace, ref); rs != nil {
			key := keyOf(rs)
			r.exp.creationObserved(key)
			r.queue.Add(key)
		}
		return
	}
	r.wakeMatching(p)
}

func (r *run) updatePod(old, cur any) {
	o, ok1 := old.(*corev1.Pod)
	p, ok2 := cur.(*corev1.Pod)
	if !ok1 || !ok2 || o.ResourceVersion == p.ResourceVersion {
		return
	}
	labelsChanged := !apiequality.Semantic.DeepEqual(o.Labels, p.Labels)
	if p.DeletionTimestamp != nil {
		r.deletePod(p)
		if labelsChanged {
			r.deletePod(o)
		}
		return
	}
	oref, cref := metav1.GetControllerOfNoCopy(o), metav1.GetControllerOfNoCopy(p)
	refChanged := !apiequality.Semantic.DeepEqual(oref, cref)
	if refChanged && oref != nil {
		if rs := r.owner(o.Namespace, oref); rs != nil {
			r.enqueue(rs)
		}
	}
	if cref != nil {
		if rs := r.owner(p.Namespace, cref); rs != nil {
			r.enqueue(rs)
		}
		return
	}
	if labelsChanged || refChanged {
		r.wakeMatching(p)
	}
}

func (r *run) deletePod(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	rs := r.owner(p.Namespace, metav1.GetControllerOfNoCopy(p))
	if rs == nil {
		return
	}
	key := keyOf(rs)
	r.exp.deletionObserved(key, keyOf(p))
	r.queue.Add(key)
}

func keyOf(o metav1.Object) string { return o.GetNamespace() + "/" + o.GetName() }

func (r *run) work(ctx context.Context) {
	for {
		key, quit := r.queue.Get()
		if quit {
			return
		}
		err := r.sync(ctx, key)
		switch {
		case err == nil:
			r.queue.Forget(key)
		case ctx.Err() != nil:
		case apierrors.IsConflict(err):
			// The ReplicaSet or a pod changed under us; its event follows.
			r.log.Debug("sync replicaset: conflict; will retry", slog.String("replicaset", key), slog.Any("error", err))
			r.queue.AddRateLimited(key)
		default:
			r.log.Warn("sync replicaset; will retry", slog.String("replicaset", key), slog.Any("error", err))
			r.queue.AddRateLimited(key)
		}
		r.queue.Done(key)
	}
}

// sync reconciles one ReplicaSet: claim its pods, create or delete to its
// scale when no earlier pass is still awaited, and write its status.
func (r *run) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	rs, err := r.rsLister.ReplicaSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		r.exp.forget(key)
		return nil
	}
	if err != nil {
		return fmt.Errorf("get replicaset %s: %w", key, err)
	}
	sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil {
		// The server validates selectors; nothing a retry would change.
		r.log.Warn("replicaset selector is invalid", slog.String("replicaset", key), slog.Any("error", err))
		return nil
	}
	// Read expectations before the pods: a pod observed in between is in
	// the list, so the decision cannot miss it.
	needsScale := r.exp.satisfied(key) && rs.DeletionTimestamp == nil
	all, err := r.podLister.Pods(ns).List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list pods of %s: %w", key, err)
	}
	var active []*corev1.Pod
	var terminating int32
	for _, p := range all {
		switch {
		case PodActive(p):
			active = append(active, p)
		case podTerminating(p) && metav1.IsControlledBy(p, rs):
			terminating++
		}
	}
	owned, err := r.claim(ctx, rs, sel, active)
	if err != nil {
		return err
	}
	var failure error
	if needsScale {
		failure = r.scale(ctx, rs, key, owned)
	}
	now := r.now()
	st := status(rs, owned, terminating, failure, now)
	if !apiequality.Semantic.DeepEqual(rs.Status, st) {
		cp := rs.DeepCopy()
		cp.Status = st
		if _, err := r.client.AppsV1().ReplicaSets(ns).UpdateStatus(ctx, cp, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return errors.Join(failure, fmt.Errorf("update status of replicaset %s: %w", key, err))
		}
	}
	if failure == nil {
		if wait, ok := nextAvailable(owned, rs.Spec.MinReadySeconds, now); ok {
			r.queue.AddAfter(key, wait)
		}
	}
	return failure
}

// claim adopts and releases pods as Claim decides and returns the pods
// rs owns afterwards.
func (r *run) claim(ctx context.Context, rs *appsv1.ReplicaSet, sel labels.Selector, pods []*corev1.Pod) ([]*corev1.Pod, error) {
	owned, adopt, release := Claim(rs, sel, pods)
	var errs []error
	api := r.client.CoreV1().Pods(rs.Namespace)
	if len(adopt) > 0 {
		// The cache may still show a ReplicaSet that is being deleted or
		// was replaced; adopting into it would hand pods to the collector.
		if err := r.canAdopt(ctx, rs); err != nil {
			adopt = nil
			errs = append(errs, err)
		}
	}
	ref := *metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))
	for _, p := range adopt {
		_, err := api.Patch(ctx, p.Name, types.StrategicMergePatchType, AdoptPatch(ref, p.UID), metav1.PatchOptions{})
		switch {
		case err == nil:
			owned = append(owned, p)
			r.log.Debug("adopted pod", slog.String("replicaset", keyOf(rs)), slog.String("pod", p.Name))
		case apierrors.IsNotFound(err):
		default:
			errs = append(errs, fmt.Errorf("adopt pod %s: %w", keyOf(p), err))
		}
	}
	for _, p := range release {
		_, err := api.Patch(ctx, p.Name, types.StrategicMergePatchType, ReleasePatch(rs.UID, p.UID), metav1.PatchOptions{})
		switch {
		case err == nil:
			r.log.Debug("released pod", slog.String("replicaset", keyOf(rs)), slog.String("pod", p.Name))
		case apierrors.IsNotFound(err):
		default:
			errs = append(errs, fmt.Errorf("release pod %s: %w", keyOf(p), err))
		}
	}
	return owned, errors.Join(errs...)
}

func (r *run) canAdopt(ctx context.Context, rs *appsv1.ReplicaSet) error {
	fresh, err := r.client.AppsV1().ReplicaSets(rs.Namespace).Get(ctx, rs.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("recheck replicaset %s before adopting: %w", keyOf(rs), err)
	}
	if fresh.UID != rs.UID {
		return fmt.Errorf("replicaset %s was replaced (uid %s, cached %s); not adopting", keyOf(rs), fresh.UID, rs.UID)
	}
	if fresh.DeletionTimestamp != nil {
		return fmt.Errorf("replicaset %s is being deleted; not adopting", keyOf(rs))
	}
	return nil
}

// scale creates or deletes pods so rs has spec.replicas active pods,
// recording expectations first so the watch can settle them.
func (r *run) scale(ctx context.Context, rs *appsv1.ReplicaSet, key string, owned []*corev1.Pod) error {
	ch := diff(replicas(rs), owned)
	api := r.client.CoreV1().Pods(rs.Namespace)
	if ch.Create > 0 {
		r.exp.expectCreations(key, ch.Create)
		created, err := slowStart(ch.Create, func() error {
			_, err := api.Create(ctx, newPod(rs), metav1.CreateOptions{})
			if namespaceTerminating(err) {
				return nil // the namespace's deletion will take the ReplicaSet too
			}
			return err
		})
		// Creates never attempted, or refused, will never be observed.
		for range ch.Create - created {
			r.exp.creationObserved(key)
		}
		r.log.Debug("created pods", slog.String("replicaset", key), slog.Int("created", created), slog.Int("wanted", ch.Create))
		if err != nil {
			return fmt.Errorf("create pods for replicaset %s: %w", key, err)
		}
		return nil
	}
	if len(ch.Delete) == 0 {
		return nil
	}
	keys := make([]string, len(ch.Delete))
	for i, p := range ch.Delete {
		keys[i] = keyOf(p)
	}
	r.exp.expectDeletions(key, keys)
	errs := make([]error, len(ch.Delete))
	var wg sync.WaitGroup
	for i, p := range ch.Delete {
		wg.Go(func() {
			err := api.Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &p.UID}})
			if err == nil {
				return
			}
			// Not observed through the watch as our deletion: stop waiting.
			r.exp.deletionObserved(key, keys[i])
			if !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				errs[i] = fmt.Errorf("delete pod %s: %w", keys[i], err)
			}
		})
	}
	wg.Wait()
	r.log.Debug("deleted pods", slog.String("replicaset", key), slog.Int("deleted", len(ch.Delete)))
	return errors.Join(errs...)
}

// slowStart calls fn n times in batches of 1, 2, 4, … run in parallel,
// stopping after the first batch with a failure, so a create that cannot
// succeed (a quota, a bad template) fails once rather than n times. It
// returns how many calls succeeded and the first error.
func slowStart(n int, fn func() error) (int, error) {
	done := 0
	for batch := 1; done < n; batch *= 2 {
		batch = min(batch, n-done)
		errs := make(chan error, batch)
		var wg sync.WaitGroup
		for range batch {
			wg.Go(func() { errs <- fn() })
		}
		wg.Wait()
		close(errs)
		var first error
		for err := range errs {
			if err == nil {
				done++
			} else if first == nil {
				first = err
			}
		}
		if first != nil {
			return done, first
		}
	}
	return done, nil
}

// namespaceTerminating reports a create refused because its namespace is
// being deleted. Kubernetes marks it with a status cause; weir's server
// says it only in the message.
func namespaceTerminating(err error) bool {
	if err == nil || !apierrors.IsForbidden(err) {
		return false
	}
	return apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) || strings.Contains(err.Error(), "is being terminated")
}
