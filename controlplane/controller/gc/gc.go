package gc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"

	"weir.dev/weir/controlplane/apiclient"
)

// Controller is the garbage collector. Run it on one server at a time
// (the elected leader). Run may be called again after it returned; each
// call starts from a fresh discovery and graph.
type Controller struct {
	client  kubernetes.Interface
	rc      *rest.Config
	log     *slog.Logger
	workers int
}

// New returns a garbage collector that talks to the API through c (for
// discovery) and a dynamic client built from rc. It does no I/O.
func New(c kubernetes.Interface, rc *rest.Config, log *slog.Logger) *Controller {
	if log == nil {
		log = slog.Default()
	}
	return &Controller{client: c, rc: rc, log: log, workers: 4}
}

// Run discovers the served resources, watches them and collects garbage
// until ctx ends; it returns nil then, or an error when it cannot start.
func (c *Controller) Run(ctx context.Context) error {
	if c.client == nil || c.rc == nil {
		return errors.New("gc: a client and a rest config are required")
	}
	dyn, err := dynamic.NewForConfig(apiclient.JSONConfig(c.rc))
	if err != nil {
		return fmt.Errorf("build dynamic client: %w", err)
	}
	cat, err := discover(ctx, c.client.Discovery(), c.log)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	return newCollector(dyn, cat, c.log).run(ctx, c.workers)
}

// collector is one run of the garbage collector: an informer per
// resource feeds the graph, the graph feeds the queue, and workers
// reconcile one UID at a time.
type collector struct {
	dyn   dynamic.Interface
	cat   catalog
	graph *graph
	queue workqueue.TypedRateLimitingInterface[types.UID]
	log   *slog.Logger
}

func newCollector(dyn dynamic.Interface, cat catalog, log *slog.Logger) *collector {
	return &collector{
		dyn: dyn, cat: cat, graph: newGraph(), log: log,
		queue: workqueue.NewTypedRateLimitingQueue(
			workqueue.NewTypedItemExponentialFailureRateLimiter[types.UID](10*time.Millisecond, 30*time.Second)),
	}
}

func (c *collector) run(ctx context.Context, workers int) error {
	defer c.queue.ShutDown()
	factory := dynamicinformer.NewDynamicSharedInformerFactory(c.dyn, 0)
	defer factory.Shutdown() // after cancel below: it waits for the informers to stop
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, r := range c.cat.watch {
		inf := factory.ForResource(r.GVR).Informer()
		if err := inf.SetTransform(metadataOnly); err != nil {
			return fmt.Errorf("watch %s: %w", r.GVR, err)
		}
		if _, err := inf.AddEventHandler(c.handler(r.GVR)); err != nil {
			return fmt.Errorf("watch %s: %w", r.GVR, err)
		}
	}
	factory.Start(ctx.Done())
	// Deciding before every cache is full could find an owner's
	// dependents missing; WaitForCacheSync only fails when ctx ends.
	factory.WaitForCacheSync(ctx.Done())
	if ctx.Err() != nil {
		return nil
	}
	c.log.Info("garbage collector synced", slog.Int("resources", len(c.cat.watch)), slog.Int("objects", c.graph.len()))
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { c.work(ctx) })
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	return nil
}

func (c *collector) handler(gvr schema.GroupVersionResource) cache.ResourceEventHandler {
	observe := func(obj any) {
		if m, err := meta.Accessor(obj); err == nil {
			c.observe(toNode(gvr, m))
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    observe,
		UpdateFunc: func(_, obj any) { observe(obj) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if m, err := meta.Accessor(obj); err == nil {
				c.forget(m.GetUID())
			}
		},
	}
}

// metadataOnly is the informers' transform: it keeps what the collector
// reads (the metadata, minus labels, annotations and managed fields), so
// their caches hold metadata and not whole objects. weir's server does
// not serve the PartialObjectMetadata form a metadata informer asks for.
func metadataOnly(obj any) (any, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return obj, nil
	}
	md, _ := u.Object["metadata"].(map[string]any)
	keep := make(map[string]any, len(md))
	for k, v := range md {
		switch k {
		case "labels", "annotations", "managedFields":
		default:
			keep[k] = v
		}
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": u.GetAPIVersion(), "kind": u.GetKind(), "metadata": keep,
	}}, nil
}

func (c *collector) observe(n *node) {
	for _, uid := range c.graph.observe(n) {
		c.queue.Add(uid)
	}
}

func (c *collector) forget(uid types.UID) {
	for _, dep := range c.graph.forget(uid) {
		c.queue.Add(dep)
	}
}

// toNode reads the collector's view of an object.
func toNode(gvr schema.GroupVersionResource, obj metav1.Object) *node {
	return &node{
		ref:        objectRef{Resource: gvr, Namespace: obj.GetNamespace(), Name: obj.GetName(), UID: obj.GetUID()},
		owners:     slices.Clone(obj.GetOwnerReferences()),
		deleting:   obj.GetDeletionTimestamp() != nil,
		finalizers: slices.Clone(obj.GetFinalizers()),
	}
}

func (c *collector) work(ctx context.Context) {
	for {
		uid, quit := c.queue.Get()
		if quit {
			return
		}
		err := c.sync(ctx, uid)
		switch {
		case err == nil:
			c.queue.Forget(uid)
		case ctx.Err() != nil:
		case apierrors.IsConflict(err):
			// The object changed under a precondition: decide again.
			c.log.Debug("collect garbage: conflict; will retry", slog.String("uid", string(uid)), slog.Any("error", err))
			c.queue.AddRateLimited(uid)
		default:
			c.log.Warn("collect garbage; will retry", slog.String("uid", string(uid)), slog.Any("error", err))
			c.queue.AddRateLimited(uid)
		}
		c.queue.Done(uid)
	}
}

// sync reconciles one object: as an owner being deleted (orphan or
// foreground) or as a dependent whose owners may be gone.
func (c *collector) sync(ctx context.Context, uid types.UID) error {
	n, ok := c.graph.get(uid)
	if !ok {
		return nil
	}
	if n.deleting {
		return c.syncDeleting(ctx, n)
	}
	if len(n.owners) == 0 {
		return nil
	}
	return c.syncDependent(ctx, n)
}

func (c *collector) syncDeleting(ctx context.Context, n node) error {
	plan := decideDeleting(n, c.graph.dependentsOf(n.ref.UID))
	for _, d := range plan.Orphan {
		if err := c.dropOwners(ctx, d, []types.UID{n.ref.UID}); err != nil {
			return fmt.Errorf("orphan dependent %s: %w", d, err)
		}
		c.log.Debug("orphaned dependent", slog.String("object", d.String()), slog.String("owner", n.ref.String()))
	}
	for _, uid := range plan.Recheck {
		c.queue.Add(uid)
	}
	if plan.RemoveFinalizer == "" {
		return nil
	}
	removed, err := c.removeFinalizer(ctx, n.ref, plan.RemoveFinalizer)
	if err != nil {
		return fmt.Errorf("remove finalizer %s from %s: %w", plan.RemoveFinalizer, n.ref, err)
	}
	if removed {
		c.log.Info("removed finalizer", slog.String("object", n.ref.String()), slog.String("finalizer", plan.RemoveFinalizer))
	}
	return nil
}

// syncDependent decides from the cache first, which costs nothing when
// an owner is alive, and acts only after checking the dependent and its
// owners against the API: a lagging cache must never delete anything.
func (c *collector) syncDependent(ctx context.Context, n node) error {
	owners := make([]owner, 0, len(n.owners))
	for _, o := range n.owners {
		owners = append(owners, owner{UID: o.UID, State: c.cachedOwner(n.ref.Namespace, o)})
	}
	if decideDependent(n.finalizers, owners).none() {
		return nil
	}
	ri := c.dyn.Resource(n.ref.Resource).Namespace(n.ref.Namespace)
	live, err := ri.Get(ctx, n.ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get dependent %s: %w", n.ref, err)
	}
	if live.GetUID() != n.ref.UID || live.GetDeletionTimestamp() != nil {
		return nil // another incarnation, or already going
	}
	owners = owners[:0]
	for _, o := range live.GetOwnerReferences() {
		st, err := c.liveOwner(ctx, n.ref.Namespace, o)
		if err != nil {
			return err
		}
		owners = append(owners, owner{UID: o.UID, State: st})
	}
	v := decideDependent(live.GetFinalizers(), owners)
	switch {
	case v.Delete:
		uid, rv := live.GetUID(), live.GetResourceVersion()
		err := ri.Delete(ctx, n.ref.Name, metav1.DeleteOptions{
			PropagationPolicy: &v.Policy,
			Preconditions:     &metav1.Preconditions{UID: &uid, ResourceVersion: &rv},
		})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("delete dependent %s: %w", n.ref, err)
		}
		c.log.Info("deleted dependent", slog.String("object", n.ref.String()), slog.String("policy", string(v.Policy)))
	case len(v.DropOwners) > 0:
		if err := c.dropOwners(ctx, n.ref, v.DropOwners); err != nil {
			return fmt.Errorf("drop owner references of %s: %w", n.ref, err)
		}
		c.log.Info("dropped owner references", slog.String("object", n.ref.String()), slog.Any("owners", v.DropOwners))
	}
	return nil
}

// ownerResource resolves an owner reference of a dependent in namespace
// ns to the resource and namespace to look the owner up in; false when
// the reference cannot be resolved (an unknown kind, or a namespaced
// owner of a cluster-scoped dependent, which Kubernetes never collects).
func (c *collector) ownerResource(ns string, ref metav1.OwnerReference) (resource, string, bool) {
	r, ok := c.cat.resolve(ref.APIVersion, ref.Kind)
	if !ok || (r.Namespaced && ns == "") {
		return resource{}, "", false
	}
	if !r.Namespaced {
		ns = ""
	}
	return r, ns, true
}

// cachedOwner classifies an owner from the graph alone.
func (c *collector) cachedOwner(ns string, ref metav1.OwnerReference) ownerState {
	_, ons, ok := c.ownerResource(ns, ref)
	if !ok {
		return ownerAlive
	}
	on, ok := c.graph.get(ref.UID)
	if !ok || on.ref.Namespace != ons || on.ref.Name != ref.Name {
		return ownerAbsent
	}
	if on.waitingForDependents() {
		return ownerDeleting
	}
	return ownerAlive
}

// liveOwner classifies an owner by reading it from the API.
func (c *collector) liveOwner(ctx context.Context, ns string, ref metav1.OwnerReference) (ownerState, error) {
	r, ons, ok := c.ownerResource(ns, ref)
	if !ok {
		return ownerAlive, nil
	}
	o, err := c.dyn.Resource(r.GVR).Namespace(ons).Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return ownerAbsent, nil
	}
	if err != nil {
		return 0, fmt.Errorf("get owner %s %s: %w", r.GVR.GroupResource(), ref.Name, err)
	}
	switch {
	case o.GetUID() != ref.UID:
		return ownerAbsent, nil
	case o.GetDeletionTimestamp() != nil && slices.Contains(o.GetFinalizers(), FinalizerForeground):
		return ownerDeleting, nil
	}
	return ownerAlive, nil
}

// dropOwners removes the owner references with the given UIDs from an
// object, the way Kubernetes does it: a strategic merge patch deleting by
// the merge key (uid), with the object's own UID as a precondition.
func (c *collector) dropOwners(ctx context.Context, ref objectRef, owners []types.UID) error {
	dels := make([]map[string]any, 0, len(owners))
	for _, u := range owners {
		dels = append(dels, map[string]any{"$patch": "delete", "uid": u})
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"uid": ref.UID, "ownerReferences": dels}})
	if err != nil {
		return err
	}
	_, err = c.dyn.Resource(ref.Resource).Namespace(ref.Namespace).Patch(ctx, ref.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// removeFinalizer takes one finalizer off an object with a merge patch
// conditional on the resourceVersion it was read at, retrying on
// conflict; removed is false when there was nothing to remove. Removing
// the last finalizer of an object being deleted lets the server delete it.
func (c *collector) removeFinalizer(ctx context.Context, ref objectRef, finalizer string) (removed bool, err error) {
	ri := c.dyn.Resource(ref.Resource).Namespace(ref.Namespace)
	err = retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		removed = false
		o, err := ri.Get(ctx, ref.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		fins := o.GetFinalizers()
		if o.GetUID() != ref.UID || !slices.Contains(fins, finalizer) {
			return nil
		}
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
			"finalizers": without(fins, finalizer), "resourceVersion": o.GetResourceVersion(),
		}})
		if err != nil {
			return err
		}
		_, err = ri.Patch(ctx, ref.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		removed = err == nil
		return err
	})
	return removed, err
}
