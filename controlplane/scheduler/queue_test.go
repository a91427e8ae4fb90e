package scheduler

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// fakeClock is a settable clock for the queue.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time       { return c.t }
func (c *fakeClock) step(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock            { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }
func qpod(name string, prio int32, created time.Time) *corev1.Pod {
	p := pod(name, "", "")
	p.Spec.Priority = &prio
	p.CreationTimestamp = metav1.NewTime(created)
	return p
}

// popNow pops without blocking: the test fails if nothing is active.
func popNow(t *testing.T, q *queue) (*queuedPod, *corev1.Pod) {
	t.Helper()
	if a, _, _ := q.lens(); a == 0 {
		t.Fatal("no active pod to pop")
	}
	qp, p, ok := q.pop()
	if !ok {
		t.Fatal("queue closed")
	}
	return qp, p
}

func TestQueueOrder(t *testing.T) {
	clk := newFakeClock()
	q := newQueue(clk.now, nil)
	t0 := clk.t
	q.add(qpod("low-old", 0, t0), true)
	q.add(qpod("high-new", 100, t0.Add(time.Minute)), true)
	q.add(qpod("low-new", 0, t0.Add(time.Minute)), true)
	q.add(qpod("high-old", 100, t0), true)
	q.add(qpod("low-new-2", 0, t0.Add(time.Minute)), true) // same second as low-new, queued later
	var got []string
	for range 5 {
		_, p := popNow(t, q)
		got = append(got, p.Name)
	}
	want := []string{"high-old", "high-new", "low-old", "low-new", "low-new-2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("pop order (-want +got):\n%s", diff)
	}
}

func TestQueueUnschedulableWaitsForMove(t *testing.T) {
	clk := newFakeClock()
	var depth [3]int
	q := newQueue(clk.now, func(a, b, u int) { depth = [3]int{a, b, u} })
	q.add(qpod("big", 0, clk.t), true)
	qp, _ := popNow(t, q)
	q.retry(qp, true)
	if depth != [3]int{0, 0, 1} {
		t.Fatalf("after an unschedulable attempt: depth %v, want [0 0 1]", depth)
	}
	// Time alone (short of maxUnschedulable) does not retry it.
	clk.step(time.Minute)
	q.flush()
	if depth != [3]int{0, 0, 1} {
		t.Fatalf("after a minute: depth %v, want [0 0 1]", depth)
	}
	// A change retries it at once: its 1 s back-off is long over.
	q.move()
	if depth != [3]int{1, 0, 0} {
		t.Fatalf("after a move: depth %v, want [1 0 0]", depth)
	}
	qp, _ = popNow(t, q)
	q.retry(qp, true)
	// A change within the back-off (2 s after a second failure) waits
	// in the backoff heap until it ends.
	clk.step(500 * time.Millisecond)
	q.move()
	if depth != [3]int{0, 1, 0} {
		t.Fatalf("move during back-off: depth %v, want [0 1 0]", depth)
	}
	clk.step(time.Second)
	q.flush()
	if depth != [3]int{0, 1, 0} {
		t.Fatalf("1.5 s into a 2 s back-off: depth %v, want [0 1 0]", depth)
	}
	clk.step(600 * time.Millisecond)
	q.flush()
	if depth != [3]int{1, 0, 0} {
		t.Fatalf("after the back-off: depth %v, want [1 0 0]", depth)
	}
}

// TestQueueMoveDuringAttempt: a change that lands while the pod is being
// decided may be what it needed, so the pod backs off instead of
// waiting for another change.
func TestQueueMoveDuringAttempt(t *testing.T) {
	clk := newFakeClock()
	q := newQueue(clk.now, nil)
	q.add(qpod("p", 0, clk.t), true)
	qp, _ := popNow(t, q)
	q.move()
	q.retry(qp, true)
	if _, b, u := q.lens(); b != 1 || u != 0 {
		t.Fatalf("backoff %d unschedulable %d, want 1 and 0", b, u)
	}
	clk.step(time.Second)
	q.flush()
	if a, _, _ := q.lens(); a != 1 {
		t.Fatal("pod not active after its back-off")
	}
}

func TestQueueUpdates(t *testing.T) {
	clk := newFakeClock()
	q := newQueue(clk.now, nil)
	p := qpod("p", 0, clk.t)
	q.add(p, true)
	qp, _ := popNow(t, q)
	q.retry(qp, true)

	// A status-only update (our own PodScheduled=False) keeps it waiting
	// but keeps the newer object.
	st := p.DeepCopy()
	st.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse}}
	q.add(st, false)
	if _, _, u := q.lens(); u != 1 {
		t.Fatal("a status update moved an unschedulable pod")
	}
	// A spec change retries it after its back-off.
	sp := st.DeepCopy()
	sp.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
	q.add(sp, true)
	if _, b, u := q.lens(); b != 1 || u != 0 {
		t.Fatalf("after a spec change: backoff %d unschedulable %d, want 1 and 0", b, u)
	}
	clk.step(time.Second)
	q.flush()
	_, got := popNow(t, q)
	if len(got.Spec.Tolerations) != 1 || len(got.Status.Conditions) != 1 {
		t.Fatalf("popped an old object: %+v", got)
	}
}

func TestQueueDelete(t *testing.T) {
	clk := newFakeClock()
	q := newQueue(clk.now, nil)
	for _, n := range []string{"active", "backoff", "unsched", "inflight"} {
		q.add(qpod(n, 0, clk.t), true)
	}
	byName := map[string]*queuedPod{}
	for range 4 {
		qp, p := popNow(t, q)
		byName[p.Name] = qp
	}
	q.retry(byName["active"], false)
	clk.step(time.Second)
	q.flush() // its back-off over: active
	q.retry(byName["backoff"], false)
	q.retry(byName["unsched"], true)
	if a, b, u := q.lens(); a != 1 || b != 1 || u != 1 {
		t.Fatalf("setup: active %d backoff %d unschedulable %d, want one each", a, b, u)
	}
	for _, qp := range byName {
		q.delete(qp.pod.UID)
	}
	if a, b, u := q.lens(); a+b+u != 0 || len(q.pods) != 0 {
		t.Fatalf("after deleting all: active %d backoff %d unschedulable %d known %d", a, b, u, len(q.pods))
	}
	// A late answer for a deleted pod is ignored.
	q.retry(byName["inflight"], true)
	if _, _, u := q.lens(); u != 0 {
		t.Fatal("retry brought a deleted pod back")
	}
}

func TestQueueBackoffGrows(t *testing.T) {
	q := newQueue(time.Now, nil)
	var got []time.Duration
	for a := 1; a <= 6; a++ {
		got = append(got, q.backoffFor(a))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("back-off (-want +got):\n%s", diff)
	}
}

func TestQueueUnschedulableSafetyNet(t *testing.T) {
	clk := newFakeClock()
	q := newQueue(clk.now, nil)
	q.add(qpod("p", 0, clk.t), true)
	qp, _ := popNow(t, q)
	q.retry(qp, true)
	clk.step(q.maxUnschedulable)
	q.flush()
	if a, _, u := q.lens(); a != 1 || u != 0 {
		t.Fatalf("after maxUnschedulable: active %d unschedulable %d, want 1 and 0", a, u)
	}
}

func TestQueuePopWaitsAndClose(t *testing.T) {
	q := newQueue(time.Now, nil)
	got := make(chan string, 1)
	go func() {
		_, p, ok := q.pop()
		if ok {
			got <- p.Name
		}
		_, _, ok = q.pop()
		if !ok {
			got <- "closed"
		}
	}()
	q.add(qpod("p", 0, time.Now()), true)
	for _, want := range []string{"p", "closed"} {
		if want == "closed" {
			q.close()
		}
		select {
		case n := <-got:
			if n != want {
				t.Fatalf("got %q, want %q", n, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("pop did not return %q", want)
		}
	}
}
