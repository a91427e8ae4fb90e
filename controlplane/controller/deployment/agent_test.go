package deployment_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"weir.dev/weir/controlplane/controller/replicaset"
)

// agent plays the node agents for one namespace, since none runs in
// these tests: a pod turns Running and Ready as soon as it is seen,
// unless its first container's image is held; a pod bound to a node and
// being deleted is finished (grace 0) once it has lingered, as an agent
// does after its containers stop.
type agent struct {
	c      kubernetes.Interface
	lister corelisters.PodLister
	queue  workqueue.TypedRateLimitingInterface[string]
	linger time.Duration

	mu        sync.Mutex
	held      map[string]bool
	deleteSaw map[string]time.Time
}

func startAgent(t testing.TB, c kubernetes.Interface, ns string, held ...string) *agent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactoryWithOptions(c, 0, informers.WithNamespace(ns))
	inf := factory.Core().V1().Pods()
	a := &agent{
		c: c, lister: inf.Lister(), linger: 200 * time.Millisecond,
		queue: workqueue.NewTypedRateLimitingQueue(workqueue.NewTypedItemExponentialFailureRateLimiter[string](5*time.Millisecond, time.Second)),
		held:  map[string]bool{}, deleteSaw: map[string]time.Time{},
	}
	for _, h := range held {
		a.held[h] = true
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    a.enqueue,
		UpdateFunc: func(_, cur any) { a.enqueue(cur) },
	}); err != nil {
		t.Fatalf("agent: %v", err)
	}
	factory.Start(ctx.Done())
	var wg sync.WaitGroup
	wg.Go(func() {
		for a.step(ctx) {
		}
	})
	t.Cleanup(func() {
		cancel()
		a.queue.ShutDown()
		wg.Wait()
		factory.Shutdown()
	})
	return a
}

func (a *agent) enqueue(obj any) {
	if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
		a.queue.Add(key)
	}
}

// hold keeps pods of image from turning ready; release lets them.
func (a *agent) hold(image string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.held[image] = true
}

func (a *agent) release(image string) {
	a.mu.Lock()
	delete(a.held, image)
	a.mu.Unlock()
	pods, _ := a.lister.List(labels.Everything())
	for _, p := range pods {
		a.enqueue(p)
	}
}

func (a *agent) isHeld(p *corev1.Pod) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(p.Spec.Containers) > 0 && a.held[p.Spec.Containers[0].Image]
}

func (a *agent) step(ctx context.Context) bool {
	key, quit := a.queue.Get()
	if quit {
		return false
	}
	defer a.queue.Done(key)
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	p, err := a.lister.Pods(ns).Get(name)
	if err != nil {
		return true
	}
	switch {
	case p.DeletionTimestamp != nil && p.Spec.NodeName != "":
		a.mu.Lock()
		seen, ok := a.deleteSaw[key]
		if !ok {
			seen = time.Now()
			a.deleteSaw[key] = seen
		}
		a.mu.Unlock()
		if wait := a.linger - time.Since(seen); wait > 0 {
			a.queue.AddAfter(key, wait)
			return true
		}
		err = a.c.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: new(int64(0)),
			Preconditions: &metav1.Preconditions{UID: &p.UID}})
	case p.DeletionTimestamp == nil && !replicaset.PodReady(p) && !a.isHeld(p):
		w := p.DeepCopy()
		w.Status.Phase = corev1.PodRunning
		w.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
		_, err = a.c.CoreV1().Pods(ns).UpdateStatus(ctx, w, metav1.UpdateOptions{})
	}
	if err != nil && ctx.Err() == nil && !apierrors.IsNotFound(err) {
		a.queue.AddRateLimited(key)
		return true
	}
	a.queue.Forget(key)
	return true
}

// follower replays a watch of the pods labelled app=<app> and checks, at
// every event, that the pods not being deleted number at most maxTotal
// and the ready ones among them at least minReady. It also records which
// images ran side by side.
type follower struct {
	w        watch.Interface
	done     chan struct{}
	maxTotal int
	minReady int

	stopping atomic.Bool

	mu         sync.Mutex
	events     int
	violations []string
	// together is called on every event with the images of the pods that
	// exist (terminating ones included); nil for none.
	together func(images map[string]int) string
}

func follow(t *testing.T, c kubernetes.Interface, ns, app string, maxTotal, minReady int, together func(map[string]int) string) *follower {
	t.Helper()
	sel := metav1.ListOptions{LabelSelector: "app=" + app}
	list, err := c.CoreV1().Pods(ns).List(t.Context(), sel)
	if err != nil {
		t.Fatalf("list pods: %v", err)
	}
	sel.ResourceVersion = list.ResourceVersion
	w, err := c.CoreV1().Pods(ns).Watch(context.Background(), sel)
	if err != nil {
		t.Fatalf("watch pods: %v", err)
	}
	f := &follower{w: w, done: make(chan struct{}), maxTotal: maxTotal, minReady: minReady, together: together}
	state := map[string]*corev1.Pod{}
	for i := range list.Items {
		state[list.Items[i].Name] = &list.Items[i]
	}
	f.check(state, "start")
	go func() {
		defer close(f.done)
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			switch {
			case ev.Type == watch.Error && f.stopping.Load():
				// Stopping the watch closes the stream under the decoder.
				continue
			case ev.Type == watch.Error:
				f.violate(fmt.Sprintf("watch error: %v", apierrors.FromObject(ev.Object)))
				continue
			case !ok:
				continue
			case ev.Type == watch.Deleted:
				delete(state, p.Name)
			default:
				state[p.Name] = p
			}
			f.check(state, fmt.Sprintf("%s %s", ev.Type, p.Name))
		}
	}()
	t.Cleanup(f.stop)
	return f
}

func (f *follower) violate(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.violations = append(f.violations, s)
}

func (f *follower) check(state map[string]*corev1.Pod, what string) {
	total, ready := 0, 0
	images := map[string]int{}
	for _, p := range state {
		images[p.Spec.Containers[0].Image]++
		if p.DeletionTimestamp != nil {
			continue
		}
		total++
		if replicaset.PodReady(p) {
			ready++
		}
	}
	f.mu.Lock()
	f.events++
	f.mu.Unlock()
	if total > f.maxTotal || ready < f.minReady {
		f.violate(fmt.Sprintf("after %s: %d pods (max %d), %d ready (min %d)", what, total, f.maxTotal, ready, f.minReady))
	}
	if f.together != nil {
		if v := f.together(images); v != "" {
			f.violate(fmt.Sprintf("after %s: %s", what, v))
		}
	}
}

func (f *follower) stop() {
	f.stopping.Store(true)
	f.w.Stop()
	<-f.done
}

// finish stops following and fails the test on any violation; it
// returns how many events were checked.
func (f *follower) finish(t *testing.T) int {
	t.Helper()
	f.stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range f.violations {
		t.Error(v)
	}
	return f.events
}
