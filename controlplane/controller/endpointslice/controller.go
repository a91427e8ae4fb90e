package endpointslice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"weir.dev/weir/controlplane/apiclient"
)

// EndpointsBatch is how long the controller gathers changes before it
// writes a Service's legacy Endpoints object (slices are written at
// once): readers of Endpoints see changes up to this much later, and a
// Service whose pods change often costs one Endpoints write per batch
// rather than one per change.
const EndpointsBatch = 50 * time.Millisecond

// Controller is the EndpointSlice controller. Run it on one server at a
// time (the elected leader). Run may be called again after it returned;
// each call starts from fresh caches.
type Controller struct {
	client      kubernetes.Interface
	rc          *rest.Config
	log         *slog.Logger
	metrics     *metrics
	workers     int
	maxPerSlice int
	// resync re-queues every Service now and then, a safety net under
	// the event handlers.
	resync time.Duration
	// endpointsBatch is how long a change waits before it is written to
	// Endpoints, so that the changes of that time are written at once:
	// the Endpoints object of a big Service is rewritten whole on every
	// write, and each write competes with the slices data planes read.
	endpointsBatch time.Duration
	now            func() time.Time
}

// New returns an EndpointSlice controller that talks JSON to the server
// through a client built from rc (or through c when rc is nil) and
// registers its metrics with reg (a private registry when nil). It does
// no I/O.
func New(c kubernetes.Interface, rc *rest.Config, log *slog.Logger, reg prometheus.Registerer) *Controller {
	if log == nil {
		log = slog.Default()
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	return &Controller{
		client: c, rc: rc, log: log, metrics: newMetrics(reg),
		workers: 4, maxPerSlice: MaxEndpointsPerSlice, resync: 5 * time.Minute, endpointsBatch: EndpointsBatch,
		now: time.Now,
	}
}

// Run watches Services, Pods, Nodes, managed EndpointSlices and
// Endpoints and keeps every selecting Service's slices and Endpoints in
// step until ctx ends; it returns nil then, or an error when it cannot
// start.
func (c *Controller) Run(ctx context.Context) error {
	kc, err := apiclient.Typed("endpointslice", c.client, c.rc)
	if err != nil {
		return err
	}

	factory := informers.NewSharedInformerFactoryWithOptions(kc, 0,
		informers.WithCustomResyncConfig(map[metav1.Object]time.Duration{&corev1.Service{}: c.resync}))
	// Only the slices this controller owns: the rest are none of its
	// business, and would cost memory.
	sliceFactory := informers.NewSharedInformerFactoryWithOptions(kc, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = discoveryv1.LabelManagedBy + "=" + ControllerName
	}))
	// Deferred first, so they run last: Shutdown waits for the informers,
	// which stop when ctx is cancelled below.
	defer factory.Shutdown()
	defer sliceFactory.Shutdown()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	r, err := c.newRun(kc, factory, sliceFactory)
	if err != nil {
		return err
	}
	defer r.slicesWork.queue.ShutDown()
	defer r.endpointsWork.queue.ShutDown()
	factory.Start(ctx.Done())
	sliceFactory.Start(ctx.Done())
	// A pass before the caches are full could delete slices of pods it
	// has not seen yet; WaitForCacheSync only fails when ctx ends.
	factory.WaitForCacheSync(ctx.Done())
	sliceFactory.WaitForCacheSync(ctx.Done())
	if ctx.Err() != nil {
		return nil
	}
	c.log.Info("endpointslice controller synced", slog.Int("services", r.slicesWork.queue.Len()))
	var wg sync.WaitGroup
	wg.Go(func() { r.slicesWork.run(ctx, c.workers, c.log) })
	wg.Go(func() { r.endpointsWork.run(ctx, max(c.workers/2, 1), c.log) })
	wg.Wait()
	return nil
}

// run is one Run's state.
type run struct {
	*Controller
	client    kubernetes.Interface
	services  corelisters.ServiceLister
	pods      corelisters.PodLister
	podIndex  cache.Indexer
	nodes     corelisters.NodeLister
	endpoints corelisters.EndpointsLister
	slices    cache.Indexer
	sliceW    *tracker[*discoveryv1.EndpointSlice]
	endpointW *tracker[*corev1.Endpoints]
	// slicesWork writes slices, endpointsWork legacy Endpoints.
	slicesWork, endpointsWork *work
	flips                     *flips
}

// Index names of the informers' indexers.
const (
	byNode    = "node"
	byService = "service"
)

// sliceService is the key of the Service a slice belongs to, "" if none.
func sliceService(s *discoveryv1.EndpointSlice) string {
	name := s.Labels[discoveryv1.LabelServiceName]
	if name == "" {
		return ""
	}
	return s.Namespace + "/" + name
}

func (c *Controller) newRun(kc kubernetes.Interface, factory, sliceFactory informers.SharedInformerFactory) (*run, error) {
	svcInf := factory.Core().V1().Services()
	podInf := factory.Core().V1().Pods()
	nodeInf := factory.Core().V1().Nodes()
	epInf := factory.Core().V1().Endpoints()
	sliceInf := sliceFactory.Discovery().V1().EndpointSlices()
	r := &run{
		Controller: c, client: kc,
		services: svcInf.Lister(), pods: podInf.Lister(), podIndex: podInf.Informer().GetIndexer(),
		nodes: nodeInf.Lister(), endpoints: epInf.Lister(), slices: sliceInf.Informer().GetIndexer(),
	}
	r.flips = newFlips(c.now)
	r.slicesWork = newWork("endpointslices", 0, r.syncSlices)
	r.endpointsWork = newWork("endpoints", c.endpointsBatch, r.syncEndpoints)
	r.sliceW = newTracker(storeGetter[*discoveryv1.EndpointSlice](r.slices), sliceService)
	r.endpointW = newTracker(storeGetter[*corev1.Endpoints](epInf.Informer().GetIndexer()), endpointsService)

	errs := []error{
		svcInf.Informer().SetTransform(strip),
		podInf.Informer().SetTransform(func(obj any) (any, error) {
			if p, ok := obj.(*corev1.Pod); ok {
				r.flips.see(p)
			}
			return strip(obj)
		}),
		epInf.Informer().SetTransform(strip),
		sliceInf.Informer().SetTransform(strip),
		// The controller reads a node's labels only; a node's status
		// (images, conditions) is most of its size and changes often.
		nodeInf.Informer().SetTransform(func(obj any) (any, error) {
			n, ok := obj.(*corev1.Node)
			if !ok {
				return obj, nil
			}
			meta := n.ObjectMeta
			meta.ManagedFields = nil
			return &corev1.Node{TypeMeta: n.TypeMeta, ObjectMeta: meta}, nil
		}),
		podInf.Informer().AddIndexers(cache.Indexers{byNode: func(obj any) ([]string, error) {
			if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
				return []string{p.Spec.NodeName}, nil
			}
			return nil, nil
		}}),
		sliceInf.Informer().AddIndexers(cache.Indexers{byService: func(obj any) ([]string, error) {
			if s, ok := obj.(*discoveryv1.EndpointSlice); ok && sliceService(s) != "" {
				return []string{sliceService(s)}, nil
			}
			return nil, nil
		}}),
	}
	_, err := svcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { r.serviceChanged(nil, obj) },
		UpdateFunc: r.serviceChanged,
		DeleteFunc: func(obj any) { r.serviceChanged(nil, obj) },
	})
	errs = append(errs, err)
	_, err = podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { r.podChanged(nil, asPod(obj)) },
		UpdateFunc: func(old, obj any) { r.podChanged(asPod(old), asPod(obj)) },
		DeleteFunc: func(obj any) {
			if p := asPod(obj); p != nil {
				r.flips.forget(p)
				r.podChanged(p, nil)
			}
		},
	})
	errs = append(errs, err)
	_, err = nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { r.nodeChanged(obj) },
		UpdateFunc: func(old, obj any) {
			o, n := old.(*corev1.Node), obj.(*corev1.Node)
			if o.Labels[corev1.LabelTopologyZone] != n.Labels[corev1.LabelTopologyZone] {
				r.nodeChanged(obj)
			}
		},
		DeleteFunc: r.nodeChanged,
	})
	errs = append(errs, err)
	_, err = sliceInf.Informer().AddEventHandler(watchOwn(r.sliceW, r.slicesWork.queue, sliceService))
	errs = append(errs, err)
	_, err = epInf.Informer().AddEventHandler(watchOwn(r.endpointW, r.endpointsWork.queue, endpointsService))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("set up informers: %w", err)
	}
	return r, nil
}

// storeGetter reads an informer's store by key.
func storeGetter[T any](s cache.Store) func(string) (T, bool) {
	return func(key string) (T, bool) {
		obj, ok, err := s.GetByKey(key)
		t, isT := obj.(T)
		return t, ok && err == nil && isT
	}
}

// watchOwn queues the Service of an object the controller writes when
// someone else changed it (a user's edit, a deletion), so it is repaired;
// echoes of the controller's own writes queue nothing.
func watchOwn[T metav1.Object](t *tracker[T], q workqueue.TypedInterface[string], service func(T) string) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if o, ok := obj.(T); ok && !t.observe(o) && service(o) != "" {
				q.Add(service(o))
			}
		},
		UpdateFunc: func(_, obj any) {
			if o, ok := obj.(T); ok && !t.observe(o) && service(o) != "" {
				q.Add(service(o))
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if o, ok := obj.(T); ok && !t.observeDelete(o) && service(o) != "" {
				q.Add(service(o))
			}
		},
	}
}

// endpointsService is the key of the Service an Endpoints object
// belongs to: the one of the same name.
func endpointsService(ep *corev1.Endpoints) string { return objectKey(ep) }

// strip drops managedFields from what an informer keeps: the controller
// never reads them, and they are a good part of an object's size.
func strip(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

func asPod(obj any) *corev1.Pod {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	p, _ := obj.(*corev1.Pod)
	return p
}

func (r *run) serviceChanged(old, obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return
	}
	key := objectKey(svc)
	var at time.Time
	if o, ok := old.(*corev1.Service); !ok || o.ResourceVersion != svc.ResourceVersion {
		// A change, not a resync: it dates the writes it causes.
		at = r.now()
	}
	r.slicesWork.add(key, "", at)
	r.endpointsWork.add(key, "", at)
}

// podChanged queues the Services that select old or pod (nil for none)
// when the pod changed in a way their endpoints show.
func (r *run) podChanged(old, pod *corev1.Pod) {
	r.podChangedFor(old, pod, r.slicesWork, r.endpointsWork)
}

func (r *run) podChangedFor(old, pod *corev1.Pod, works ...*work) {
	if old == nil && pod == nil {
		return
	}
	if old != nil && pod != nil && !labelsChanged(old, pod) && endpointView(old) == endpointView(pod) {
		return
	}
	now := r.now()
	seen := map[string]bool{}
	for _, p := range []*corev1.Pod{old, pod} {
		if p == nil {
			continue
		}
		svcs, err := r.services.Services(p.Namespace).List(labels.Everything())
		if err != nil {
			continue
		}
		for _, svc := range svcs {
			key := objectKey(svc)
			if seen[key] || !selects(svc, p.Labels) {
				continue
			}
			seen[key] = true
			for _, w := range works {
				w.add(key, podKey(p.Namespace, p.Name), now)
			}
		}
	}
}

func labelsChanged(a, b *corev1.Pod) bool {
	if len(a.Labels) != len(b.Labels) {
		return true
	}
	for k, v := range a.Labels {
		if w, ok := b.Labels[k]; !ok || w != v {
			return true
		}
	}
	return false
}

// view is what of a pod its endpoints show.
type view struct {
	ip, node, hostname, subdomain string
	uid                           string
	ready, terminating, finished  bool
}

func endpointView(p *corev1.Pod) view {
	return view{
		ip: podIPv4(p), node: p.Spec.NodeName, hostname: p.Spec.Hostname, subdomain: p.Spec.Subdomain,
		uid: string(p.UID), ready: podReady(p), terminating: p.DeletionTimestamp != nil,
		finished: p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed,
	}
}

// nodeChanged queues the Services of the pods on a node that came, went
// or changed zone.
func (r *run) nodeChanged(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	n, ok := obj.(*corev1.Node)
	if !ok {
		return
	}
	pods, err := r.podIndex.ByIndex(byNode, n.Name)
	if err != nil {
		return
	}
	for _, o := range pods {
		if p, ok := o.(*corev1.Pod); ok {
			// Endpoints carry no zone: slices only.
			r.podChangedFor(nil, p, r.slicesWork)
		}
	}
}

// service reads the Service key for a pass: nil (and no error) when the
// controller is to remove what it wrote for it, as it is gone or has no
// selector; done when there is nothing to do (it is being deleted, and
// the garbage collector removes its slices).
func (r *run) service(key string) (svc *corev1.Service, done bool, err error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil, true, nil // not a key this controller queued
	}
	svc, err = r.services.Services(ns).Get(name)
	switch {
	case apierrors.IsNotFound(err):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("get service %s: %w", key, err)
	case svc.DeletionTimestamp != nil:
		return nil, true, nil
	case !managesSlices(svc):
		return nil, false, nil
	}
	return svc, false, nil
}

func (r *run) podsOf(svc *corev1.Service) ([]*corev1.Pod, error) {
	pods, err := r.pods.Pods(svc.Namespace).List(labels.SelectorFromValidatedSet(svc.Spec.Selector))
	if err != nil {
		return nil, fmt.Errorf("list pods of %s: %w", objectKey(svc), err)
	}
	return pods, nil
}

// syncSlices makes one Service's slices say what its pods are.
func (r *run) syncSlices(ctx context.Context, key string, changes map[string]change) error {
	svc, done, err := r.service(key)
	switch {
	case err != nil || done:
		return err
	case svc == nil:
		return r.removeSlices(ctx, key)
	}
	pods, err := r.podsOf(svc)
	if err != nil {
		return err
	}
	nodes := map[string]*corev1.Node{}
	for _, p := range pods {
		if p.Spec.NodeName == "" || nodes[p.Spec.NodeName] != nil {
			continue
		}
		if n, err := r.nodes.Get(p.Spec.NodeName); err == nil {
			nodes[p.Spec.NodeName] = n
		}
	}
	existing, err := r.cachedSlices(key)
	if err != nil {
		return err
	}
	p := reconcile(svc, pods, nodes, existing, r.maxPerSlice)
	if err := r.applySlices(ctx, p, earliest(changes), servingOf(existing)); err != nil {
		return err
	}
	if p.writes() > 0 {
		r.log.Debug("endpoint slices written", slog.String("service", key),
			slog.Int("created", len(p.create)), slog.Int("updated", len(p.update)), slog.Int("deleted", len(p.delete)))
	}
	return nil
}

// syncEndpoints makes one Service's legacy Endpoints object say what its
// pods are.
func (r *run) syncEndpoints(ctx context.Context, key string, changes map[string]change) error {
	svc, done, err := r.service(key)
	switch {
	case err != nil || done:
		return err
	case svc == nil:
		return r.removeEndpoints(ctx, key)
	}
	pods, err := r.podsOf(svc)
	if err != nil {
		return err
	}
	return r.applyEndpoints(ctx, key, desiredEndpoints(svc, pods), earliest(changes))
}

// cachedSlices are the slices of the Service key as the controller last
// knew them.
func (r *run) cachedSlices(key string) ([]*discoveryv1.EndpointSlice, error) {
	objs, err := r.slices.ByIndex(byService, key)
	if err != nil {
		return nil, fmt.Errorf("list slices of %s: %w", key, err)
	}
	cached := make([]*discoveryv1.EndpointSlice, 0, len(objs))
	for _, o := range objs {
		if s, ok := o.(*discoveryv1.EndpointSlice); ok {
			cached = append(cached, s)
		}
	}
	return r.sliceW.overlay(key, cached), nil
}

// cachedEndpoints is the Endpoints object of the Service key as the
// controller last knew it, nil if none.
func (r *run) cachedEndpoints(key string) (*corev1.Endpoints, error) {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	var cached []*corev1.Endpoints
	ep, err := r.endpoints.Endpoints(ns).Get(name)
	switch {
	case err == nil:
		cached = append(cached, ep)
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("get endpoints %s: %w", key, err)
	}
	if got := r.endpointW.overlay(key, cached); len(got) > 0 {
		return got[0], nil
	}
	return nil, nil
}

// applySlices writes a plan: creates and updates first, deletes only once
// those succeeded, so readers never see endpoints missing that are only
// moving. trigger is when the earliest change the plan carries was seen
// (zero if unknown); each slice is stamped with it or with the earliest
// Ready change among its own endpoints. was is what the slices said of
// each pod's serving before.
func (r *run) applySlices(ctx context.Context, p plan, trigger time.Time, was map[string]bool) error {
	api := r.client.DiscoveryV1().EndpointSlices
	var errs []error
	for _, s := range p.create {
		stamp(&s.ObjectMeta, r.sliceTrigger(s, trigger, was))
		got, err := api(s.Namespace).Create(ctx, s, metav1.CreateOptions{})
		if err != nil {
			errs = append(errs, fmt.Errorf("create endpoint slice for %s/%s: %w", s.Namespace, s.Labels[discoveryv1.LabelServiceName], err))
			continue
		}
		r.sliceW.wrote(got)
		r.metrics.writes.WithLabelValues("endpointslices", "create").Inc()
		r.observeWritten(got, was)
	}
	for _, s := range p.update {
		stamp(&s.ObjectMeta, r.sliceTrigger(s, trigger, was))
		got, err := api(s.Namespace).Update(ctx, s, metav1.UpdateOptions{})
		if err != nil {
			errs = append(errs, fmt.Errorf("update endpoint slice %s/%s: %w", s.Namespace, s.Name, err))
			continue
		}
		r.sliceW.wrote(got)
		r.metrics.writes.WithLabelValues("endpointslices", "update").Inc()
		r.observeWritten(got, was)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, s := range p.delete {
		if err := r.deleteSlice(ctx, s); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// servingOf is what slices say of each pod's serving.
func servingOf(slices []*discoveryv1.EndpointSlice) map[string]bool {
	out := map[string]bool{}
	for _, s := range slices {
		for i := range s.Endpoints {
			out[endpointKey(&s.Endpoints[i])] = deref(s.Endpoints[i].Conditions.Serving)
		}
	}
	return out
}

// readyChange says whether an endpoint about to be written, or written,
// shows its pod's Ready change: it was in the slices before, serving
// otherwise. A pod that only now becomes an endpoint (its Service is new,
// it just got an address) shows no change of the slices, and the time
// since its pod last changed readiness is no measure of this
// controller.
func readyChange(e *discoveryv1.Endpoint, was map[string]bool) bool {
	before, ok := was[endpointKey(e)]
	return ok && before != deref(e.Conditions.Serving)
}

// sliceTrigger is the earlier of trigger and the first unwritten Ready
// change among s's endpoints.
func (r *run) sliceTrigger(s *discoveryv1.EndpointSlice, trigger time.Time, was map[string]bool) time.Time {
	for i := range s.Endpoints {
		e := &s.Endpoints[i]
		if !readyChange(e, was) {
			continue
		}
		if at, ok := r.flips.pending(endpointKey(e), deref(e.Conditions.Serving)); ok {
			trigger = earlier(trigger, at)
		}
	}
	return trigger
}

// observeWritten records, for each endpoint of a written slice that
// shows its pod's Ready change, how long the change took to be written.
// Every flip the slice shows is done with, measured or not.
func (r *run) observeWritten(s *discoveryv1.EndpointSlice, was map[string]bool) {
	now := r.now()
	for i := range s.Endpoints {
		e := &s.Endpoints[i]
		if at, ok := r.flips.written(endpointKey(e), deref(e.Conditions.Serving)); ok && readyChange(e, was) {
			r.metrics.readyToWrite.Observe(now.Sub(at).Seconds())
		}
	}
}

func (r *run) deleteSlice(ctx context.Context, s *discoveryv1.EndpointSlice) error {
	err := r.client.DiscoveryV1().EndpointSlices(s.Namespace).Delete(ctx, s.Name,
		metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &s.UID}})
	switch {
	case err == nil:
		r.metrics.writes.WithLabelValues("endpointslices", "delete").Inc()
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("delete endpoint slice %s/%s: %w", s.Namespace, s.Name, err)
	}
	r.sliceW.deleted(s)
	return nil
}

// applyEndpoints writes want unless the Endpoints object says it already.
func (r *run) applyEndpoints(ctx context.Context, key string, want *corev1.Endpoints, trigger time.Time) error {
	api := r.client.CoreV1().Endpoints(want.Namespace)
	have, err := r.cachedEndpoints(key)
	if err != nil {
		return err
	}
	if have == nil {
		stamp(&want.ObjectMeta, trigger)
		got, err := api.Create(ctx, want, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create endpoints %s: %w", key, err)
		}
		r.endpointW.wrote(got)
		r.metrics.writes.WithLabelValues("endpoints", "create").Inc()
		return nil
	}
	if !endpointsDiffer(have, want) {
		return nil
	}
	u := have.DeepCopy()
	u.Labels, u.OwnerReferences, u.Subsets = want.Labels, want.OwnerReferences, want.Subsets
	if over := want.Annotations[corev1.EndpointsOverCapacity]; over != "" {
		setAnnotation(&u.ObjectMeta, corev1.EndpointsOverCapacity, over)
	} else {
		delete(u.Annotations, corev1.EndpointsOverCapacity)
	}
	stamp(&u.ObjectMeta, trigger)
	got, err := api.Update(ctx, u, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("update endpoints %s: %w", key, err)
	}
	r.endpointW.wrote(got)
	r.metrics.writes.WithLabelValues("endpoints", "update").Inc()
	return nil
}

// removeSlices deletes the slices the controller wrote for the Service
// key, which is gone or no longer has the controller manage it. Slices
// written by hand are left alone.
func (r *run) removeSlices(ctx context.Context, key string) error {
	existing, err := r.cachedSlices(key)
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range existing {
		if s.Labels[discoveryv1.LabelManagedBy] != ControllerName {
			continue
		}
		if err := r.deleteSlice(ctx, s); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeEndpoints deletes the Endpoints object of the Service key if the
// controller wrote it; one written by hand is left alone.
func (r *run) removeEndpoints(ctx context.Context, key string) error {
	ep, err := r.cachedEndpoints(key)
	if err != nil || ep == nil || ep.Labels[discoveryv1.LabelManagedBy] != ControllerName {
		return err
	}
	err = r.client.CoreV1().Endpoints(ep.Namespace).Delete(ctx, ep.Name,
		metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &ep.UID}})
	switch {
	case err == nil:
		r.metrics.writes.WithLabelValues("endpoints", "delete").Inc()
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("delete endpoints %s: %w", key, err)
	}
	r.endpointW.deleted(ep)
	return nil
}

// stamp sets the last-change-trigger-time annotation, as Kubernetes
// does: when the change this write carries was first seen (cleared when
// no change is known, as after a resync).
func stamp(m *metav1.ObjectMeta, trigger time.Time) {
	if trigger.IsZero() {
		delete(m.Annotations, corev1.EndpointsLastChangeTriggerTime)
		return
	}
	setAnnotation(m, corev1.EndpointsLastChangeTriggerTime, trigger.UTC().Format(time.RFC3339Nano))
}

func setAnnotation(m *metav1.ObjectMeta, k, v string) {
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Annotations[k] = v
}
