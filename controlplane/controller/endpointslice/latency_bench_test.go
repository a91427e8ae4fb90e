package endpointslice_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"weir.dev/weir/test/cluster"
)

// TestReadyToWriteLatency is acceptance 4, a measurement rather than a
// check (run with WEIR_BENCH=1): one Service with 1,000 ready pods in 10
// slices; 1,000 times, one pod picked at random flips its Ready condition
// (the test writes its status, as a node agent would) and the test waits
// on its own watch for the slice that shows it. It reports, per flip:
//
//   - end to end: status write sent → slice change received by a watcher
//     (what a node's data plane sees);
//   - the controller's part, from weir_endpointslice_ready_to_write_seconds:
//     change seen by its informer → slice write answered;
//   - the split at the controller: status write sent → change seen (the
//     slice's last-change-trigger-time annotation), and change seen →
//     slice change received.
func TestReadyToWriteLatency(t *testing.T) {
	if os.Getenv("WEIR_BENCH") != "1" {
		t.Skip("a measurement: set WEIR_BENCH=1 to run it")
	}
	const pods, flips = 1000, 1000
	c, reg := start(t)
	ns := namespace(t, c, "latency")
	createReadyPods(t, c, ns, pods)
	createService(t, c, ns, "web", web)
	want := map[string]string{}
	for i := range pods {
		want[fmt.Sprintf("p%d", i)] = "RS-"
	}
	ss := waitEndpoints(t, c, ns, "web", want)
	cur := map[string]*corev1.Pod{}
	list, err := c.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list pods: %v", err)
	}
	for i := range list.Items {
		cur[list.Items[i].Name] = &list.Items[i]
	}
	sl, err := c.DiscoveryV1().EndpointSlices(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list slices: %v", err)
	}
	rv := sl.ResourceVersion
	opts := metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"}
	watchFrom := func(rv string) watch.Interface {
		o := opts
		o.ResourceVersion = rv
		w, err := c.DiscoveryV1().EndpointSlices(ns).Watch(t.Context(), o)
		if err != nil {
			t.Fatalf("watch slices: %v", err)
		}
		return w
	}
	w := watchFrom(rv)
	defer func() { w.Stop() }()

	ready := map[string]bool{}
	for name := range want {
		ready[name] = true
	}
	rng := rand.New(rand.NewPCG(6, 1000))
	var e2e, toController, fromController []time.Duration
	for range flips {
		i := rng.IntN(pods)
		name := fmt.Sprintf("p%d", i)
		ready[name] = !ready[name]
		sent := time.Now()
		p, err := c.CoreV1().Pods(ns).UpdateStatus(t.Context(), withStatus(cur[name], podIP(i), ready[name]), metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("update status of %s: %v", name, err)
		}
		cur[name] = p
		seen, trigger := waitFlip(t, &w, watchFrom, name, ready[name])
		e2e = append(e2e, seen.Sub(sent))
		toController = append(toController, trigger.Sub(sent))
		fromController = append(fromController, seen.Sub(trigger))
	}

	t.Logf("%d Ready flips, %d pods in %d slices of one Service", flips, pods, len(ss))
	t.Logf("end to end, status write sent → slice change watched: %s", summary(e2e))
	t.Logf("  status write sent → controller saw it:              %s", summary(toController))
	t.Logf("  controller saw it → slice change watched:           %s", summary(fromController))
	// The last flip is measured once its write is answered, which may
	// come after the watch event.
	var h *dto.Histogram
	cluster.Eventually(t, wait, "every flip measured", func() (bool, error) {
		h = family(t, reg, "weir_endpointslice_ready_to_write_seconds").Metric[0].GetHistogram()
		return h.GetSampleCount() >= flips, nil
	})
	t.Logf("controller histogram, change seen → slice written: n=%d mean=%s p50≈%s p99≈%s",
		h.GetSampleCount(), seconds(h.GetSampleSum()/float64(h.GetSampleCount())),
		seconds(quantile(h, 0.5)), seconds(quantile(h, 0.99)))
	t.Logf("writes: %v slice updates, %v Endpoints updates", counter(t, reg, "weir_endpointslice_writes_total", "endpointslices", "update"),
		counter(t, reg, "weir_endpointslice_writes_total", "endpoints", "update"))
	if h.GetSampleCount() != flips {
		t.Errorf("histogram has %d samples for %d flips, want one each", h.GetSampleCount(), flips)
	}
}

// waitFlip reads slice events until one shows pod with the wanted
// readiness; it returns when that event arrived and the slice's trigger
// time.
func waitFlip(t *testing.T, w *watch.Interface, watchFrom func(string) watch.Interface, pod string, ready bool) (time.Time, time.Time) {
	t.Helper()
	deadline := time.After(wait)
	last := ""
	for {
		select {
		case ev, ok := <-(*w).ResultChan():
			if !ok {
				// The server ended the watch; resume where it stopped.
				*w = watchFrom(last)
				continue
			}
			s, isSlice := ev.Object.(*discoveryv1.EndpointSlice)
			if !isSlice {
				t.Fatalf("watch event %s %T", ev.Type, ev.Object)
			}
			last = s.ResourceVersion
			now := time.Now()
			for _, e := range s.Endpoints {
				if e.TargetRef.Name == pod && e.Conditions.Ready != nil && *e.Conditions.Ready == ready {
					trigger, err := time.Parse(time.RFC3339Nano, s.Annotations[corev1.EndpointsLastChangeTriggerTime])
					if err != nil {
						t.Fatalf("slice %s trigger time: %v", s.Name, err)
					}
					return now, trigger
				}
			}
		case <-deadline:
			t.Fatalf("%s ready=%t not watched within %s", pod, ready, wait)
		}
	}
}

func summary(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	q := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return fmt.Sprintf("p50=%s p90=%s p99=%s max=%s mean=%s",
		round(q(0.5)), round(q(0.9)), round(q(0.99)), round(s[len(s)-1]), round(sum/time.Duration(len(s))))
}

func round(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }

func seconds(s float64) time.Duration { return round(time.Duration(s * float64(time.Second))) }

// quantile estimates a quantile from a histogram's buckets by linear
// interpolation, as Prometheus' histogram_quantile does.
func quantile(h *dto.Histogram, q float64) float64 {
	rank := q * float64(h.GetSampleCount())
	lower, below := 0.0, 0.0
	for _, b := range h.GetBucket() {
		n := float64(b.GetCumulativeCount())
		if n >= rank {
			if n == below {
				return b.GetUpperBound()
			}
			return lower + (b.GetUpperBound()-lower)*(rank-below)/(n-below)
		}
		lower, below = b.GetUpperBound(), n
	}
	return lower
}
