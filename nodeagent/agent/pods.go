package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"weir.dev/weir/nodeagent/podnet"
	"weir.dev/weir/nodeagent/probe"
	"weir.dev/weir/nodeagent/runtime"
)

// podLoop is the kubelet's sync loop in miniature: it follows the pods
// bound to this node and makes the runtime match, one worker per pod at a
// time, reporting status back. A pod's key is its UID, so a pod deleted
// and recreated under the same name is two pods.
type podLoop struct {
	c    kubernetes.Interface
	rt   *runtime.Runtime
	nw   *podnet.Network
	node string
	log  *slog.Logger
	q    workqueue.TypedRateLimitingInterface[types.UID]
	// probes runs the pods' probes; a readiness change or a liveness
	// kill enqueues the pod.
	probes *probe.Manager
	// events writes the runtime's and the probes' events to the API.
	events *recorder

	// started is closed once the workers run on a synced pod cache: the
	// node may report Ready then.
	started chan struct{}

	mu   sync.Mutex
	pods map[types.UID]*corev1.Pod // latest seen, deleted ones removed

	// terminating are the pods whose containers are being stopped, each
	// by a goroutine of its own (terminateAsync): a stop waits up to the
	// pod's grace period, 30 s by default, and must hold up neither the
	// workers (the other pods' starts and status) nor the other stops.
	// With stops on the workers, deleting 100 pods whose containers
	// ignore SIGTERM took 100/8 × 30 s, and no pod started meanwhile.
	termMu      sync.Mutex
	terminating map[types.UID]*termination
	termWG      sync.WaitGroup
}

// newPodLoop returns a pod loop, its probe manager and event recorder; rt
// and nw are set before Run (the runtime takes the manager's readiness
// results and the recorder's Event, see runtimeHooks). dial, if set,
// connects the probes to pod addresses (default: from this process's
// network namespace).
func newPodLoop(c kubernetes.Interface, node string, log *slog.Logger, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *podLoop {
	l := &podLoop{c: c, node: node, log: log, pods: map[types.UID]*corev1.Pod{}, events: newRecorder(c, node, log), started: make(chan struct{}),
		terminating: map[types.UID]*termination{},
		q: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[types.UID](),
			workqueue.TypedRateLimitingQueueConfig[types.UID]{Name: "pods"})}
	l.probes = probe.New(probe.Config{Notify: func(uid types.UID) { l.q.Add(uid) }, Kill: l.killContainer,
		Exec: l.exec, Event: l.events.Event, Dial: dial, Logger: log})
	return l
}

// runtimeHooks sets what the runtime takes from the loop: probe
// readiness and startup results, the event recorder, and the dialer for httpGet lifecycle hooks.
func (l *podLoop) runtimeHooks(cfg *runtime.Config, dial func(ctx context.Context, network, addr string) (net.Conn, error)) {
	cfg.Readiness = l.probes.Ready
	cfg.Startup = l.probes.Started
	cfg.Recorder = l.events.Event
	cfg.Dial = dial
}

// exec runs an exec probe's command in the container, unless it has been
// replaced by another attempt meanwhile.
func (l *podLoop) exec(ctx context.Context, pod *corev1.Pod, container, containerID string, cmd []string, timeout time.Duration) ([]byte, int, error) {
	return l.rt.ExecSync(ctx, pod, container, cmd, timeout)
}

// killContainer kills a container whose liveness or startup probe failed,
// so that the next sync restarts it as the restart policy says.
func (l *podLoop) killContainer(pod *corev1.Pod, container, containerID, reason string, probeGrace *int64) {
	// The probe's terminationGracePeriodSeconds, if set, replaces the
	// pod's: a hung container need not get the long grace a clean
	// shutdown is given.
	grace := runtime.GracePeriod(pod)
	if probeGrace != nil {
		grace = time.Duration(*probeGrace) * time.Second
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), grace+30*time.Second)
		defer cancel()
		if err := l.rt.KillContainer(ctx, pod, container, containerID, reason, grace); err != nil {
			l.log.Warn("kill unhealthy container", slog.String("pod", pod.Namespace+"/"+pod.Name),
				slog.String("container", container), slog.Any("error", err))
		}
		l.q.Add(pod.UID)
	}()
}

func (l *podLoop) set(p *corev1.Pod) {
	if p.DeletionTimestamp != nil && l.rt != nil {
		// A sync waiting for an image must not hold up the delete.
		l.rt.CancelPull(p.UID)
	}
	if p.DeletionTimestamp != nil {
		// A second delete with a shorter grace period: the stop under
		// way starts over with it.
		l.cutTermination(p.UID, runtime.GracePeriod(p))
	}
	l.mu.Lock()
	l.pods[p.UID] = p
	l.mu.Unlock()
	l.q.Add(p.UID)
}

func (l *podLoop) forget(p *corev1.Pod) {
	if l.rt != nil {
		l.rt.CancelPull(p.UID)
	}
	// Gone from the API (a forced delete, say): what still runs is
	// killed at once by the next sync, not after the grace period.
	l.cutTermination(p.UID, 0)
	l.mu.Lock()
	delete(l.pods, p.UID)
	l.mu.Unlock()
	l.q.Add(p.UID)
}

func (l *podLoop) get(uid types.UID) *corev1.Pod {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pods[uid]
}

// Pod returns the pod namespace/name bound to this node (the agent
// server's view). Two objects of one name exist only briefly, while a
// deleted pod's containers stop; the one not being deleted wins.
func (l *podLoop) Pod(namespace, name string) (*corev1.Pod, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var found *corev1.Pod
	for _, p := range l.pods {
		if p.Namespace != namespace || p.Name != name {
			continue
		}
		if found == nil || found.DeletionTimestamp != nil {
			found = p
		}
	}
	return found, found != nil
}

// Run follows pods until ctx ends with workers workers.
func (l *podLoop) Run(ctx context.Context, workers int) error {
	defer l.q.ShutDown()
	defer l.probes.Stop()
	go l.events.Run(ctx)
	// The resync is the kubelet's syncFrequency (1 min): a safety net, not
	// the way changes arrive (watch, containerd exit events and requeues
	// do). Every resync syncs every pod, so a short one taxes a busy node.
	f := informers.NewSharedInformerFactoryWithOptions(l.c, time.Minute, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", l.node).String()
	}))
	inf := f.Core().V1().Pods().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { l.set(o.(*corev1.Pod)) },
		UpdateFunc: func(_, o any) { l.set(o.(*corev1.Pod)) },
		DeleteFunc: func(o any) {
			if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = t.Obj
			}
			if p, ok := o.(*corev1.Pod); ok {
				l.forget(p)
			}
		},
	}); err != nil {
		return err
	}
	f.Start(ctx.Done())
	defer f.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return ctx.Err()
	}
	// Pods the node still holds that the API no longer has (deleted while
	// the agent was down) are removed.
	if refs, err := l.rt.ListPods(ctx); err == nil {
		for _, r := range refs {
			if l.get(r.UID) == nil {
				l.q.Add(r.UID)
			}
		}
	}
	go func() {
		if err := l.rt.Watch(ctx, func(uid types.UID) { l.q.Add(uid) }); err != nil {
			l.log.Warn("containerd events stopped", slog.Any("error", err))
		}
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l.next(ctx) {
			}
		}()
	}
	close(l.started)
	<-ctx.Done()
	l.q.ShutDown()
	wg.Wait()
	l.termWG.Wait()
	return nil
}

func (l *podLoop) next(ctx context.Context) bool {
	uid, quit := l.q.Get()
	if quit {
		return false
	}
	defer l.q.Done(uid)
	after, err := l.sync(ctx, uid)
	switch {
	case err != nil && ctx.Err() == nil:
		l.log.Warn("sync pod", slog.String("uid", string(uid)), slog.Any("error", err))
		l.q.AddRateLimited(uid)
	case after > 0:
		l.q.Forget(uid)
		l.q.AddAfter(uid, after)
	default:
		l.q.Forget(uid)
	}
	return true
}

// sync makes one pod's containers match its spec and reports its status.
func (l *podLoop) sync(ctx context.Context, uid types.UID) (time.Duration, error) {
	pod := l.get(uid)
	switch l.terminationState(uid) {
	case termRunning, termCut:
		// Its terminator enqueues it again when done.
		return 0, nil
	case termDone:
		if pod != nil && pod.DeletionTimestamp != nil {
			// Stopped, removed and deleted: the informer has yet to
			// say the pod is gone.
			return 0, nil
		}
		l.termMu.Lock()
		delete(l.terminating, uid)
		l.termMu.Unlock()
	}
	if pod == nil {
		// Gone from the API: nothing may run for it any more.
		l.probes.Remove(uid)
		l.events.forget(uid)
		return 0, l.rt.RemovePod(ctx, uid)
	}
	if pod.DeletionTimestamp != nil {
		l.probes.Remove(uid)
		l.terminateAsync(ctx, pod)
		return 0, nil
	}
	res, err := l.rt.SyncPod(ctx, pod)
	if err != nil {
		return 0, fmt.Errorf("sync pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	// The probes follow the containers just observed (pod IP, container
	// IDs); a restarted container's readiness starts over, which enqueues
	// the pod again if it was ready.
	cur := pod.DeepCopy()
	cur.Status = res.Status
	if l.probes.Sync(cur) {
		// A readiness result was just reset: report it now rather than a
		// stale Ready.
		if st, err := l.rt.PodStatus(ctx, pod); err == nil {
			res.Status = st
		}
	}
	if err := l.report(ctx, pod, res.Status); err != nil {
		return 0, err
	}
	return res.RequeueAfter, nil
}

// termState is where a pod's termination is.
type termState int

const (
	termNone    termState = iota
	termRunning           // its terminator runs
	termCut               // its terminator runs, told to give up (cutTermination)
	termDone              // terminated; waiting for the API to forget the pod
)

// termination is one pod's termination.
type termination struct {
	state  termState
	grace  time.Duration // the grace period it stops the containers with
	cancel context.CancelFunc
}

func (l *podLoop) terminationState(uid types.UID) termState {
	l.termMu.Lock()
	defer l.termMu.Unlock()
	if t := l.terminating[uid]; t != nil {
		return t.state
	}
	return termNone
}

// cutTermination stops the termination of pod uid under way if it uses a
// grace period longer than grace; its terminator then syncs the pod at
// once, which stops it again with the pod's new grace period, or kills
// what is left if the API has forgotten the pod.
func (l *podLoop) cutTermination(uid types.UID, grace time.Duration) {
	l.termMu.Lock()
	defer l.termMu.Unlock()
	if t := l.terminating[uid]; t != nil && t.state == termRunning && grace < t.grace {
		t.state = termCut
		t.cancel()
	}
}

// terminateAsync starts terminating pod on a goroutine of its own. While
// it runs, syncs of the pod do nothing; when it ends the pod is synced
// again: a failed stop is retried; after a finished one syncs wait for
// the API to forget the pod, then drop its probes and events.
func (l *podLoop) terminateAsync(ctx context.Context, pod *corev1.Pod) {
	l.termMu.Lock()
	defer l.termMu.Unlock()
	if l.terminating[pod.UID] != nil {
		return
	}
	tctx, cancel := context.WithCancel(ctx)
	t := &termination{state: termRunning, grace: runtime.GracePeriod(pod), cancel: cancel}
	l.terminating[pod.UID] = t
	l.termWG.Add(1)
	go func() {
		defer l.termWG.Done()
		defer cancel()
		err := l.terminate(tctx, pod)
		l.termMu.Lock()
		cut := t.state == termCut
		if err != nil || cut {
			delete(l.terminating, pod.UID)
		} else {
			t.state = termDone
		}
		l.termMu.Unlock()
		switch {
		case ctx.Err() != nil:
		case cut:
			l.log.Debug("termination cut short", slog.String("uid", string(pod.UID)))
			l.q.Add(pod.UID)
		case err != nil:
			l.log.Warn("terminate pod", slog.String("uid", string(pod.UID)), slog.Any("error", err))
			l.q.AddRateLimited(pod.UID)
		default:
			l.q.Add(pod.UID)
		}
	}()
}

// terminate stops a pod that is being deleted, reports its final status,
// frees what it held, and finishes the delete with grace 0.
func (l *podLoop) terminate(ctx context.Context, pod *corev1.Pod) error {
	if err := l.rt.KillPod(ctx, pod, runtime.GracePeriod(pod)); err != nil {
		return fmt.Errorf("stop pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	if st, err := l.rt.PodStatus(ctx, pod); err == nil {
		_ = l.report(ctx, pod, st)
	}
	if err := l.rt.RemovePod(ctx, pod.UID); err != nil {
		return fmt.Errorf("remove pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	zero := int64(0)
	err := l.c.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("finish delete of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// report writes status when it changed.
func (l *podLoop) report(ctx context.Context, pod *corev1.Pod, st corev1.PodStatus) error {
	if apiequality.Semantic.DeepEqual(pod.Status, st) {
		return nil
	}
	p := pod.DeepCopy()
	p.Status = st
	out, err := l.c.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	switch {
	case apierrors.IsConflict(err):
		// A newer pod is on its way through the informer, which will sync again.
		return nil
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("report status of pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	l.mu.Lock()
	if cur, ok := l.pods[out.UID]; ok && cur.ResourceVersion == pod.ResourceVersion {
		l.pods[out.UID] = out
	}
	l.mu.Unlock()
	return nil
}

// syncRoutes keeps a route to every other node's pod CIDR via its address.
func syncRoutes(ctx context.Context, c kubernetes.Interface, nw *podnet.Network, self string, log *slog.Logger) {
	f := informers.NewSharedInformerFactory(c, 30*time.Second)
	inf := f.Core().V1().Nodes().Informer()
	kick := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: poke, UpdateFunc: func(_, o any) { poke(o) }, DeleteFunc: poke})
	f.Start(ctx.Done())
	defer f.Shutdown()
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		}
		var routes []podnet.Route
		for _, o := range inf.GetStore().List() {
			n := o.(*corev1.Node)
			if n.Name == self || n.Spec.PodCIDR == "" {
				continue
			}
			dst, err1 := netip.ParsePrefix(n.Spec.PodCIDR)
			var via netip.Addr
			for _, a := range n.Status.Addresses {
				if a.Type == corev1.NodeInternalIP {
					via, _ = netip.ParseAddr(a.Address)
				}
			}
			if err1 == nil && via.IsValid() {
				routes = append(routes, podnet.Route{Dst: dst, Via: via})
			}
		}
		if err := nw.SyncRoutes(ctx, routes); err != nil && !errors.Is(err, context.Canceled) {
			log.Warn("sync pod routes", slog.Any("error", err))
		}
	}
}
