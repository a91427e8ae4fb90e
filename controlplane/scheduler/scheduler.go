package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"

	"weir.dev/weir/controlplane/apiclient"
)

// SchedulerName is the spec.schedulerName of the pods this scheduler
// places (besides those that name none), and the source of its events.
const SchedulerName = corev1.DefaultSchedulerName

// Scheduler places pods on nodes. Run it on one server at a time (the
// elected leader); Run may be called again after it returned and starts
// from fresh informers.
type Scheduler struct {
	client  kubernetes.Interface
	rc      *rest.Config
	log     *slog.Logger
	metrics *metrics
	// binders is how many bindings (and unschedulable reports) may be in
	// flight at once. A binding is two etcd round trips on the server,
	// mostly waiting for the WAL's fsync, which etcd shares among the
	// writes in flight: on 2 cores 64 binders bound about twice as many
	// pods per second as 16, and four times as many as 4.
	binders int
	// flushEvery is how often pods whose back-off ended go back to the
	// active queue.
	flushEvery time.Duration
	now        func() time.Time
}

// New returns a scheduler that talks to the server through a JSON
// client built from rc (or through c as it is, when rc is nil) and
// registers its metrics with reg (a private registry when nil). It does
// no I/O.
func New(c kubernetes.Interface, rc *rest.Config, log *slog.Logger, reg prometheus.Registerer) *Scheduler {
	if log == nil {
		log = slog.Default()
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	return &Scheduler{
		client: c, rc: rc, log: log, metrics: newMetrics(reg),
		binders: 64, flushEvery: 100 * time.Millisecond, now: time.Now,
	}
}

// Run watches pods, nodes and Services and schedules every pod without a
// node until ctx ends; it returns nil then, or an error when it cannot
// start.
func (s *Scheduler) Run(ctx context.Context) error {
	client, err := apiclient.Typed("scheduler", s.client, s.rc)
	if err != nil {
		return err
	}
	r := &run{
		client: client, log: s.log, m: s.metrics, now: s.now,
		cache:  newCache(),
		work:   make(chan func(context.Context), s.binders),
		events: map[types.UID]*corev1.Event{},
	}
	r.queue = newQueue(s.now, s.metrics.setPending)
	return r.run(ctx, s.binders, s.flushEvery)
}

// run is one Run's state.
type run struct {
	client kubernetes.Interface
	log    *slog.Logger
	m      *metrics
	now    func() time.Time
	cache  *cache
	queue  *queue
	// work feeds the binders: bindings and unschedulable reports.
	work chan func(context.Context)
	// tieBreak advances per decision (Snapshot.TieBreak); only the
	// deciding goroutine touches it.
	tieBreak uint64

	mu sync.Mutex
	// events holds the last FailedScheduling event per pod, so a repeat
	// of the same message bumps its count instead of adding an event.
	events map[types.UID]*corev1.Event
}

func (r *run) run(ctx context.Context, binders int, flushEvery time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// One pod informer sees a pod both unbound and bound, so the binding
	// arrives as one ordered update rather than a delete on one watch
	// and an add on another. Finished pods hold nothing and are left to
	// the field selector.
	pods := coreinformers.NewFilteredPodInformer(r.client, metav1.NamespaceAll, 0, toolscache.Indexers{},
		func(o *metav1.ListOptions) {
			o.FieldSelector = "status.phase!=" + string(corev1.PodSucceeded) + ",status.phase!=" + string(corev1.PodFailed)
		})
	nodes := coreinformers.NewNodeInformer(r.client, 0, toolscache.Indexers{})
	services := coreinformers.NewServiceInformer(r.client, metav1.NamespaceAll, 0, toolscache.Indexers{})
	for _, inf := range []toolscache.SharedIndexInformer{pods, nodes, services} {
		if err := inf.SetTransform(dropManagedFields); err != nil {
			return fmt.Errorf("set informer transform: %w", err)
		}
	}
	var synced []toolscache.DoneChecker
	reg, err := pods.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { r.podAdded(obj.(*corev1.Pod)) },
		UpdateFunc: func(old, obj any) { r.podUpdated(old.(*corev1.Pod), obj.(*corev1.Pod)) },
		DeleteFunc: func(obj any) {
			if pod := podOf(obj); pod != nil {
				r.podDeleted(pod)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("watch pods: %w", err)
	}
	synced = append(synced, reg.HasSyncedChecker())
	reg, err = nodes.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			r.cache.setNode(obj.(*corev1.Node))
			r.queue.move()
		},
		UpdateFunc: func(old, obj any) {
			r.cache.setNode(obj.(*corev1.Node))
			if nodeChanged(old.(*corev1.Node), obj.(*corev1.Node)) {
				r.queue.move()
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if n, ok := obj.(*corev1.Node); ok {
				r.cache.deleteNode(n.Name)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("watch nodes: %w", err)
	}
	synced = append(synced, reg.HasSyncedChecker())
	reg, err = services.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { r.cache.setService(obj.(*corev1.Service), false) },
		UpdateFunc: func(_, obj any) { r.cache.setService(obj.(*corev1.Service), false) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if svc, ok := obj.(*corev1.Service); ok {
				r.cache.setService(svc, true)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("watch services: %w", err)
	}
	synced = append(synced, reg.HasSyncedChecker())

	var informers sync.WaitGroup
	defer func() {
		cancel()
		informers.Wait()
	}()
	for _, inf := range []toolscache.SharedIndexInformer{pods, nodes, services} {
		informers.Go(func() { inf.Run(ctx.Done()) })
	}
	// Deciding before the handlers have seen every listed object could
	// overcommit a node whose pods are not counted yet; this only fails
	// when ctx ends. (WaitFor wakes on the sync itself; WaitForCacheSync
	// would poll every 100 ms.)
	if !toolscache.WaitFor(ctx, "", synced...) {
		return nil
	}
	active, backoff, unsched := r.queue.lens()
	r.log.Info("scheduler synced", slog.Int("nodes", len(nodes.GetStore().ListKeys())),
		slog.Int("pending", active+backoff+unsched))

	var workers sync.WaitGroup
	for range binders {
		workers.Go(func() {
			for f := range r.work {
				f(ctx)
			}
		})
	}
	workers.Go(func() {
		t := time.NewTicker(flushEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				r.queue.flush()
			}
		}
	})
	decided := make(chan struct{})
	go func() {
		defer close(decided)
		for {
			qp, pod, ok := r.queue.pop()
			if !ok {
				return
			}
			r.scheduleOne(ctx, qp, pod)
		}
	}()
	<-ctx.Done()
	r.queue.close()
	<-decided
	close(r.work)
	workers.Wait()
	return nil
}

// dropManagedFields is the informers' transform: the scheduler never
// reads managed fields, so its caches need not hold them.
func dropManagedFields(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

func podOf(obj any) *corev1.Pod {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, _ := obj.(*corev1.Pod)
	return pod
}

// responsible reports whether pod is this scheduler's to place now: no
// node yet, its scheduler, not being deleted, no scheduling gates.
func responsible(pod *corev1.Pod) bool {
	return pod.Spec.NodeName == "" &&
		(pod.Spec.SchedulerName == "" || pod.Spec.SchedulerName == SchedulerName) &&
		pod.DeletionTimestamp == nil &&
		len(pod.Spec.SchedulingGates) == 0
}

func (r *run) podAdded(pod *corev1.Pod) {
	if pod.Spec.NodeName != "" {
		r.queue.delete(pod.UID)
		r.cache.setPod(pod)
		return
	}
	if responsible(pod) {
		r.queue.add(pod, true)
	}
}

func (r *run) podUpdated(old, pod *corev1.Pod) {
	if pod.Spec.NodeName != "" {
		if old.Spec.NodeName == "" {
			r.queue.delete(pod.UID)
			r.forgetEvents(pod.UID)
		}
		r.cache.setPod(pod)
		return
	}
	if !responsible(pod) {
		r.queue.delete(pod.UID)
		return
	}
	// Only a change to what the filters read may make the pod fit; its
	// own status (our PodScheduled=False among it) does not.
	changed := !maps.Equal(old.Labels, pod.Labels) || !equality.Semantic.DeepEqual(old.Spec, pod.Spec)
	r.queue.add(pod, changed)
}

func (r *run) podDeleted(pod *corev1.Pod) {
	r.queue.delete(pod.UID)
	r.forgetEvents(pod.UID)
	if r.cache.removePod(pod.UID) {
		// Room freed on a node: pods that fit nowhere may fit now.
		r.queue.move()
	}
}

// nodeChanged reports a change that may let a pod fit where it did not:
// labels, taints, spec.unschedulable, allocatable or readiness. Status
// heartbeats alone are not.
func nodeChanged(old, n *corev1.Node) bool {
	return !maps.Equal(old.Labels, n.Labels) ||
		!equality.Semantic.DeepEqual(old.Spec.Taints, n.Spec.Taints) ||
		old.Spec.Unschedulable != n.Spec.Unschedulable ||
		!equality.Semantic.DeepEqual(old.Status.Allocatable, n.Status.Allocatable) ||
		nodeReady(old) != nodeReady(n)
}

// scheduleOne decides for one pod and hands the binding (or the report
// of why it fits nowhere) to the binders.
func (r *run) scheduleOne(ctx context.Context, qp *queuedPod, pod *corev1.Pod) {
	start := r.now()
	r.tieBreak++
	node, placed, fe := r.cache.decide(pod, r.tieBreak)
	switch {
	case placed:
		// Seen bound (or assumed) while it waited: nothing to decide.
		r.queue.done(qp)
	case fe != nil:
		msg := fe.Error()
		r.m.attempts.WithLabelValues(resultUnschedulable).Inc()
		r.m.latency.WithLabelValues(resultUnschedulable).Observe(r.now().Sub(start).Seconds())
		r.queue.retry(qp, true)
		r.log.Debug("pod unschedulable", slog.String("pod", pod.Namespace+"/"+pod.Name), slog.String("message", msg))
		r.submit(ctx, func(ctx context.Context) { r.reportUnschedulable(ctx, pod, msg) })
	default:
		r.submit(ctx, func(ctx context.Context) { r.bind(ctx, qp, pod, node, start) })
	}
}

func (r *run) submit(ctx context.Context, f func(context.Context)) {
	select {
	case r.work <- f:
	case <-ctx.Done():
	}
}

// bind binds pod to node through pods/binding. On failure it takes back
// the assumption and, unless the pod is gone or bound by someone else,
// retries the pod after its back-off.
func (r *run) bind(ctx context.Context, qp *queuedPod, pod *corev1.Pod, node string, start time.Time) {
	err := r.client.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: node},
	}, metav1.CreateOptions{})
	if err == nil {
		r.m.attempts.WithLabelValues(resultScheduled).Inc()
		r.m.latency.WithLabelValues(resultScheduled).Observe(r.now().Sub(start).Seconds())
		r.queue.done(qp)
		r.log.Debug("pod bound", slog.String("pod", pod.Namespace+"/"+pod.Name), slog.String("node", node))
		return
	}
	if ctx.Err() != nil {
		return
	}
	r.m.attempts.WithLabelValues(resultError).Inc()
	r.m.latency.WithLabelValues(resultError).Observe(r.now().Sub(start).Seconds())
	if r.cache.forget(pod.UID) {
		r.queue.move()
	}
	switch {
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		// Gone, being deleted, or bound already: the informer says which.
		r.log.Debug("bind pod", slog.String("pod", pod.Namespace+"/"+pod.Name), slog.Any("error", err))
		r.queue.done(qp)
	default:
		r.log.Warn("bind pod; will retry", slog.String("pod", pod.Namespace+"/"+pod.Name),
			slog.String("node", node), slog.Any("error", err))
		r.queue.retry(qp, false)
	}
}

// reportUnschedulable records why the pod fits nowhere: PodScheduled=False
// with reason Unschedulable, and a FailedScheduling event. Best effort: a
// failed write is logged and made again on the next failed attempt.
func (r *run) reportUnschedulable(ctx context.Context, pod *corev1.Pod, msg string) {
	cur := pod
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		if cur == nil {
			got, err := r.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			cur = got
		}
		if cur.UID != pod.UID || cur.Spec.NodeName != "" || cur.DeletionTimestamp != nil {
			return nil
		}
		if c := scheduledCondition(cur); c != nil && c.Status == corev1.ConditionFalse &&
			c.Reason == corev1.PodReasonUnschedulable && c.Message == msg {
			return nil
		}
		upd := cur.DeepCopy()
		setScheduledCondition(upd, corev1.PodCondition{
			Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Reason: corev1.PodReasonUnschedulable, Message: msg,
			LastTransitionTime: metav1.NewTime(r.now()),
		})
		cur = nil // a conflict re-reads the pod
		_, err := r.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{})
		return err
	})
	switch {
	case apierrors.IsNotFound(err):
		return
	case err != nil && ctx.Err() == nil:
		r.log.Warn("record pod unschedulable", slog.String("pod", pod.Namespace+"/"+pod.Name), slog.Any("error", err))
	}
	if err := r.event(ctx, pod, msg); err != nil && ctx.Err() == nil {
		r.log.Warn("record FailedScheduling event", slog.String("pod", pod.Namespace+"/"+pod.Name), slog.Any("error", err))
	}
}

func scheduledCondition(pod *corev1.Pod) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodScheduled {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// setScheduledCondition replaces the PodScheduled condition, keeping its
// transition time when the status stays.
func setScheduledCondition(pod *corev1.Pod, c corev1.PodCondition) {
	if old := scheduledCondition(pod); old != nil {
		if old.Status == c.Status {
			c.LastTransitionTime = old.LastTransitionTime
		}
		*old = c
		return
	}
	pod.Status.Conditions = append(pod.Status.Conditions, c)
}

// event writes a FailedScheduling Warning for pod, as kube-scheduler's
// recorder does: the same message again bumps the last event's count.
func (r *run) event(ctx context.Context, pod *corev1.Pod, msg string) error {
	now := metav1.NewTime(r.now())
	events := r.client.CoreV1().Events(pod.Namespace)
	r.mu.Lock()
	last := r.events[pod.UID]
	r.mu.Unlock()
	if last != nil && last.Message == msg {
		ev := last.DeepCopy()
		ev.Count++
		ev.LastTimestamp = now
		if out, err := events.Update(ctx, ev, metav1.UpdateOptions{}); err == nil {
			r.remember(pod.UID, out)
			return nil
		}
		// Gone or changed under us: start a new event.
	}
	out, err := events.Create(ctx, &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", pod.Name, now.UnixNano()), Namespace: pod.Namespace},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name,
			UID: pod.UID, ResourceVersion: pod.ResourceVersion,
		},
		Reason: "FailedScheduling", Message: msg, Type: corev1.EventTypeWarning,
		Source:         corev1.EventSource{Component: SchedulerName},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: SchedulerName,
	}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	r.remember(pod.UID, out)
	return nil
}

func (r *run) remember(uid types.UID, ev *corev1.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events[uid] = ev
}

func (r *run) forgetEvents(uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.events, uid)
}
