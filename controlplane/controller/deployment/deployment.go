package deployment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	"weir.dev/weir/controlplane/controller/replicaset"
)

// Controller is the Deployment controller. Run it on one server at a
// time (the elected leader). Run may be called again after it returned;
// each call starts from fresh caches.
type Controller struct {
	client  kubernetes.Interface
	rc      *rest.Config
	log     *slog.Logger
	workers int
	now     func() time.Time
}

// New returns a Deployment controller that talks to the API through a
// JSON client built from rc (c is used only when rc is nil). It does no
// I/O.
func New(c kubernetes.Interface, rc *rest.Config, log *slog.Logger) *Controller {
	if log == nil {
		log = slog.Default()
	}
	return &Controller{client: c, rc: rc, log: log, workers: 2, now: time.Now}
}

// Run watches Deployments, ReplicaSets and pods and reconciles every
// Deployment until ctx ends; it returns nil then, or an error when it
// cannot start.
func (c *Controller) Run(ctx context.Context) error {
	kc, err := apiclient.Typed("deployment", c.client, c.rc)
	if err != nil {
		return err
	}
	// A resync re-queues every Deployment now and then: a safety net under
	// the events and the deadline re-checks.
	factory := informers.NewSharedInformerFactoryWithOptions(kc, 0,
		informers.WithCustomResyncConfig(map[metav1.Object]time.Duration{&appsv1.Deployment{}: 5 * time.Minute}))
	defer factory.Shutdown() // after cancel below: it waits for the informers to stop
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dInf, rsInf, podInf := factory.Apps().V1().Deployments(), factory.Apps().V1().ReplicaSets(), factory.Core().V1().Pods()
	r := &run{
		client: kc, dLister: dInf.Lister(), rsLister: rsInf.Lister(), podLister: podInf.Lister(), log: c.log, now: c.now,
		queue: workqueue.NewTypedRateLimitingQueue(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](5*time.Millisecond, 30*time.Second)),
	}
	defer r.queue.ShutDown()
	handlers := []struct {
		what string
		inf  cache.SharedIndexInformer
		h    cache.ResourceEventHandler
	}{
		{"deployments", dInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    r.enqueue,
			UpdateFunc: func(_, cur any) { r.enqueue(cur) },
			DeleteFunc: r.enqueue,
		}},
		{"replicasets", rsInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { r.replicaSetChanged(nil, obj) },
			UpdateFunc: r.replicaSetChanged,
			DeleteFunc: func(obj any) { r.replicaSetChanged(obj, nil) },
		}},
		{"pods", podInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    r.podChanged,
			UpdateFunc: func(old, cur any) { r.podChanged(old); r.podChanged(cur) },
			DeleteFunc: r.podChanged,
		}},
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			return fmt.Errorf("watch %s: %w", h.what, err)
		}
	}
	factory.Start(ctx.Done())
	// Deciding before the caches are full would make ReplicaSets that exist.
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
	dLister   appslisters.DeploymentLister
	rsLister  appslisters.ReplicaSetLister
	podLister corelisters.PodLister
	queue     workqueue.TypedRateLimitingInterface[string]
	log       *slog.Logger
	now       func() time.Time
}

func (r *run) enqueue(obj any) {
	if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
		r.queue.Add(key)
	}
}

// deploymentOf is the Deployment in the cache that controls obj, or nil.
func (r *run) deploymentOf(obj metav1.Object) *appsv1.Deployment {
	ref := metav1.GetControllerOfNoCopy(obj)
	if ref == nil || ref.Kind != "Deployment" {
		return nil
	}
	d, err := r.dLister.Deployments(obj.GetNamespace()).Get(ref.Name)
	if err != nil || d.UID != ref.UID {
		return nil
	}
	return d
}

// replicaSetChanged queues the Deployments an event about a ReplicaSet
// concerns: its controller before and after, or, for an orphan, every
// Deployment that could adopt it. old or cur is nil for an add or a
// delete.
func (r *run) replicaSetChanged(old, cur any) {
	for _, obj := range []any{old, cur} {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		rs, ok := obj.(*appsv1.ReplicaSet)
		if !ok {
			continue
		}
		if d := r.deploymentOf(rs); d != nil {
			r.enqueue(d)
			continue
		}
		if metav1.GetControllerOfNoCopy(rs) != nil || rs.DeletionTimestamp != nil {
			continue
		}
		ds, err := r.dLister.Deployments(rs.Namespace).List(labels.Everything())
		if err != nil {
			continue
		}
		for _, d := range ds {
			sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
			if err == nil && !sel.Empty() && sel.Matches(labels.Set(rs.Labels)) {
				r.enqueue(d)
			}
		}
	}
}

// podChanged queues the Deployment whose ReplicaSet controls the pod: a
// rollout step counts pods, not only ReplicaSet statuses.
func (r *run) podChanged(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	ref := metav1.GetControllerOfNoCopy(p)
	if ref == nil || ref.Kind != "ReplicaSet" {
		return
	}
	rs, err := r.rsLister.ReplicaSets(p.Namespace).Get(ref.Name)
	if err != nil || rs.UID != ref.UID {
		return
	}
	if d := r.deploymentOf(rs); d != nil {
		r.enqueue(d)
	}
}

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
		case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err):
			// Something changed under us; its event follows.
			r.log.Debug("sync deployment: conflict; will retry", slog.String("deployment", key), slog.Any("error", err))
			r.queue.AddRateLimited(key)
		default:
			r.log.Warn("sync deployment; will retry", slog.String("deployment", key), slog.Any("error", err))
			r.queue.AddRateLimited(key)
		}
		r.queue.Done(key)
	}
}

// sync reconciles one Deployment: claim its ReplicaSets, count their pods,
// decide, and carry the plan out.
func (r *run) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	d, err := r.dLister.Deployments(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get deployment %s: %w", key, err)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() {
		// The server refuses both; nothing a retry would change.
		r.log.Warn("deployment selector is invalid or empty", slog.String("deployment", key), slog.Any("error", err))
		return nil
	}
	all, err := r.rsLister.ReplicaSets(ns).List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list replicasets of %s: %w", key, err)
	}
	rss, err := r.claim(ctx, d, sel, all)
	if err != nil {
		return err
	}
	pods, err := r.podLister.Pods(ns).List(sel)
	if err != nil {
		return fmt.Errorf("list pods of %s: %w", key, err)
	}
	now := r.now()
	p := decide(snapshot{d: d, rss: rss, pods: countPods(rss, pods, now), now: now})
	if err := r.apply(ctx, d, p); err != nil {
		return err
	}
	if p.recheck > 0 {
		r.queue.AddAfter(key, p.recheck)
	}
	return nil
}

// claim adopts and releases ReplicaSets as replicaset.Claim decides and
// returns those d controls afterwards.
func (r *run) claim(ctx context.Context, d *appsv1.Deployment, sel labels.Selector, rss []*appsv1.ReplicaSet) ([]*appsv1.ReplicaSet, error) {
	owned, adopt, release := replicaset.Claim(d, sel, rss)
	var errs []error
	api := r.client.AppsV1().ReplicaSets(d.Namespace)
	if len(adopt) > 0 {
		// The cache may still show a Deployment being deleted or replaced;
		// adopting into it would hand ReplicaSets to the collector.
		fresh, err := r.client.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
		switch {
		case err != nil:
			errs, adopt = append(errs, fmt.Errorf("recheck deployment %s before adopting: %w", keyOf(d), err)), nil
		case fresh.UID != d.UID || fresh.DeletionTimestamp != nil:
			adopt = nil
		}
	}
	ref := *metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))
	for _, rs := range adopt {
		out, err := api.Patch(ctx, rs.Name, types.StrategicMergePatchType, replicaset.AdoptPatch(ref, rs.UID), metav1.PatchOptions{})
		switch {
		case err == nil:
			owned = append(owned, out)
			r.log.Info("adopted replicaset", slog.String("deployment", keyOf(d)), slog.String("replicaset", rs.Name))
		case apierrors.IsNotFound(err):
		default:
			errs = append(errs, fmt.Errorf("adopt replicaset %s: %w", keyOf(rs), err))
		}
	}
	for _, rs := range release {
		_, err := api.Patch(ctx, rs.Name, types.StrategicMergePatchType, replicaset.ReleasePatch(d.UID, rs.UID), metav1.PatchOptions{})
		switch {
		case err == nil:
			r.log.Info("released replicaset", slog.String("deployment", keyOf(d)), slog.String("replicaset", rs.Name))
		case apierrors.IsNotFound(err):
		default:
			errs = append(errs, fmt.Errorf("release replicaset %s: %w", keyOf(rs), err))
		}
	}
	return owned, errors.Join(errs...)
}

func keyOf(o metav1.Object) string { return o.GetNamespace() + "/" + o.GetName() }

// apply writes a plan: create, resize, annotate, trim history, status.
// It stops at the first failure; the next sync decides again from what
// was written.
func (r *run) apply(ctx context.Context, d *appsv1.Deployment, p plan) error {
	rsAPI, dAPI := r.client.AppsV1().ReplicaSets(d.Namespace), r.client.AppsV1().Deployments(d.Namespace)
	if p.create != nil {
		_, err := rsAPI.Create(ctx, p.create, metav1.CreateOptions{})
		switch {
		case err == nil:
			r.log.Info("created replicaset", slog.String("deployment", keyOf(d)), slog.String("replicaset", p.create.Name),
				slog.Int("replicas", int(rsReplicas(p.create))))
		case apierrors.IsAlreadyExists(err):
			return r.collided(ctx, d, p.create.Name, err)
		default:
			return fmt.Errorf("create replicaset %s: %w", keyOf(p.create), err)
		}
	}
	for _, rs := range p.update {
		prev := "?"
		if cached, err := r.rsLister.ReplicaSets(rs.Namespace).Get(rs.Name); err == nil {
			prev = fmt.Sprint(rsReplicas(cached))
		}
		if _, err := rsAPI.Update(ctx, rs, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update replicaset %s: %w", keyOf(rs), err)
		}
		r.log.Info("updated replicaset", slog.String("deployment", keyOf(d)), slog.String("replicaset", rs.Name),
			slog.String("from", prev), slog.Int("replicas", int(rsReplicas(rs))))
	}
	if p.annotations != nil {
		w := d.DeepCopy()
		w.Annotations = p.annotations
		out, err := dAPI.Update(ctx, w, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("update revision of deployment %s: %w", keyOf(d), err)
		}
		d = out
	}
	for _, rs := range p.delete {
		err := rsAPI.Delete(ctx, rs.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &rs.UID, ResourceVersion: &rs.ResourceVersion}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete old replicaset %s: %w", keyOf(rs), err)
		}
		r.log.Info("deleted old replicaset", slog.String("deployment", keyOf(d)), slog.String("replicaset", rs.Name))
	}
	if apiequality.Semantic.DeepEqual(d.Status, p.status) {
		return nil
	}
	w := d.DeepCopy()
	w.Status = p.status
	if _, err := dAPI.UpdateStatus(ctx, w, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("update status of deployment %s: %w", keyOf(d), err)
	}
	return nil
}

// collided handles a create of the current ReplicaSet refused because
// the name exists. If it is ours with our template, the cache is behind
// and its event will bring it. Otherwise another template hashed to the
// same name: bump collisionCount so the next sync hashes differently.
func (r *run) collided(ctx context.Context, d *appsv1.Deployment, name string, createErr error) error {
	existing, err := r.client.AppsV1().ReplicaSets(d.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("create replicaset %s/%s: %w", d.Namespace, name, createErr)
	}
	if metav1.IsControlledBy(existing, d) && equalIgnoreHash(&existing.Spec.Template, &d.Spec.Template) {
		return createErr
	}
	w := d.DeepCopy()
	w.Status.CollisionCount = new(valueOr(w.Status.CollisionCount) + 1)
	if _, err := r.client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, w, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("record hash collision of deployment %s: %w", keyOf(d), err)
	}
	r.log.Info("replicaset name collision; hashing again", slog.String("deployment", keyOf(d)), slog.String("replicaset", name),
		slog.Int("collision_count", int(*w.Status.CollisionCount)))
	return createErr
}
