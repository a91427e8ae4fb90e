package agent

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// eventSource names the agent in the events it writes, as "kubelet" does
// for the kubelet's.
const eventSource = "kubelet"

// recorder writes the events of the pods the agent runs (Created,
// Started, Killing, Unhealthy, BackOff, Failed…Hook) to the API, off the
// callers' goroutines (the runtime calls it under its pod locks): Event
// never blocks; past 1024 queued events new ones are dropped and logged.
// The same event again (pod, type, reason, message) within the correlation
// window bumps the count of the one already written, as client-go's
// recorder does, so a probe failing every second makes one event.
type recorder struct {
	c    kubernetes.Interface
	node string
	log  *slog.Logger
	now  func() time.Time
	ch   chan pendingEvent

	mu   sync.Mutex
	last map[eventKey]*corev1.Event
}

type pendingEvent struct {
	obj                  corev1.ObjectReference
	typ, reason, message string
	at                   time.Time
}

type eventKey struct {
	uid                  types.UID
	typ, reason, message string
}

// eventWindow is how long a repeated event bumps the last one's count.
const eventWindow = 10 * time.Minute

func newRecorder(c kubernetes.Interface, node string, log *slog.Logger) *recorder {
	return &recorder{c: c, node: node, log: log, now: time.Now, ch: make(chan pendingEvent, 1024), last: map[eventKey]*corev1.Event{}}
}

// Event queues an event about pod.
func (r *recorder) Event(pod *corev1.Pod, typ, reason, message string) {
	ev := pendingEvent{obj: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name,
		UID: pod.UID, ResourceVersion: pod.ResourceVersion}, typ: typ, reason: reason, message: message, at: r.now()}
	select {
	case r.ch <- ev:
	default:
		r.log.Warn("event queue full, event dropped", slog.String("pod", pod.Namespace+"/"+pod.Name), slog.String("reason", reason))
	}
}

// Run writes queued events until ctx ends.
func (r *recorder) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-r.ch:
			if err := r.write(ctx, ev); err != nil && ctx.Err() == nil {
				r.log.Warn("write event", slog.String("pod", ev.obj.Namespace+"/"+ev.obj.Name), slog.String("reason", ev.reason),
					slog.Any("error", err))
			}
		}
	}
}

// forget drops what the recorder remembers of pod uid (it is gone).
func (r *recorder) forget(uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.last {
		if k.uid == uid {
			delete(r.last, k)
		}
	}
}

func (r *recorder) write(ctx context.Context, ev pendingEvent) error {
	events := r.c.CoreV1().Events(ev.obj.Namespace)
	at := metav1.NewTime(ev.at)
	k := eventKey{ev.obj.UID, ev.typ, ev.reason, ev.message}
	r.mu.Lock()
	last := r.last[k]
	r.mu.Unlock()
	if last != nil && ev.at.Sub(last.LastTimestamp.Time) < eventWindow {
		upd := last.DeepCopy()
		upd.Count++
		upd.LastTimestamp = at
		if out, err := events.Update(ctx, upd, metav1.UpdateOptions{}); err == nil {
			r.remember(k, out)
			return nil
		}
		// Gone or changed under us: write a new one.
	}
	out, err := events.Create(ctx, &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", ev.obj.Name, ev.at.UnixNano()), Namespace: ev.obj.Namespace},
		InvolvedObject: ev.obj, Reason: ev.reason, Message: ev.message, Type: ev.typ,
		Source:         corev1.EventSource{Component: eventSource, Host: r.node},
		FirstTimestamp: at, LastTimestamp: at, Count: 1,
		ReportingController: eventSource, ReportingInstance: r.node,
	}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	r.remember(k, out)
	return nil
}

func (r *recorder) remember(k eventKey, ev *corev1.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last[k] = ev
}
