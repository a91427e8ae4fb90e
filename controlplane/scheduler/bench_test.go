package scheduler_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"weir.dev/weir/controlplane/scheduler"
	"weir.dev/weir/test/cluster"
)

// BenchmarkBindRate measures pods bound per second for 1,000 pending
// pods on 3 and on 100 fake nodes: the pods are created first, then a
// scheduler starts and the clock runs until its 1,000th binding is
// answered. pods/s counts from the scheduler's start (informer sync
// included); bind-pods/s from its first binding. Each round's pods are
// removed before the next, so every round starts from 1,000 pending
// pods and nothing else.
//
//	WEIR_BENCH=1 go test -run '^$' -bench BindRate -benchtime 5x ./controlplane/scheduler/
//
// WEIR_BENCH_BINDERS=n runs the scheduler with n binders instead of its
// default, to compare.
func BenchmarkBindRate(b *testing.B) {
	if os.Getenv("WEIR_BENCH") != "1" {
		b.Skip("set WEIR_BENCH=1 to run the scheduler benchmark")
	}
	const pending = 1000
	for _, nodeCount := range []int{3, 100} {
		b.Run(fmt.Sprintf("nodes=%d", nodeCount), func(b *testing.B) {
			s := cluster.Start(b, cluster.WithLoops(loops())) // no scheduler: the benchmark starts its own
			c := s.Client(b)
			ctx := b.Context()
			var nodes []fakeNode
			for i := range nodeCount {
				nodes = append(nodes, fakeNode{name: fmt.Sprintf("node-%03d", i), cpu: "1000", mem: "4Ti", pods: 100000})
			}
			fakeNodes(b, ctx, c, nodes...)
			var total, binding time.Duration
			b.ResetTimer()
			for round := range b.N {
				b.StopTimer()
				ns := fmt.Sprintf("bench-%d", round)
				createNamespace(b, ctx, c, ns)
				createPods(b, ctx, c, ns, "p", pending, testPod("", "10m", "16Mi"))
				reg := prometheus.NewRegistry()
				sched := scheduler.New(c, s.RESTConfig("application/json"), slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
				if n, err := strconv.Atoi(os.Getenv("WEIR_BENCH_BINDERS")); err == nil {
					scheduler.SetBinders(sched, n)
				}
				rctx, cancel := context.WithCancel(ctx)
				done := make(chan error, 1)
				b.StartTimer()
				start := time.Now()
				go func() { done <- sched.Run(rctx) }()
				var first time.Time
				deadline := start.Add(5 * time.Minute)
				for {
					n := scheduled(b, reg)
					if n > 0 && first.IsZero() {
						first = time.Now()
					}
					if n >= pending {
						break
					}
					if time.Now().After(deadline) {
						b.Fatalf("round %d: %v of %d pods bound in 5 min", round, n, pending)
					}
					time.Sleep(2 * time.Millisecond)
				}
				end := time.Now()
				b.StopTimer()
				cancel()
				if err := <-done; err != nil {
					b.Fatalf("scheduler: %v", err)
				}
				total += end.Sub(start)
				binding += end.Sub(first)
				b.Logf("round %d: %d pods bound in %v, the first after %v", round, pending,
					end.Sub(start).Round(time.Millisecond), first.Sub(start).Round(time.Millisecond))
				removePods(b, ctx, c, ns)
			}
			b.ReportMetric(float64(pending*b.N)/total.Seconds(), "pods/s")
			b.ReportMetric(float64(pending*b.N)/binding.Seconds(), "bind-pods/s")
		})
	}
}

func scheduled(b *testing.B, reg *prometheus.Registry) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "weir_scheduler_schedule_attempts_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "result" && lp.GetValue() == "scheduled" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// removePods deletes a namespace's pods at once (as their agent would
// once stopped) and waits until they are gone.
func removePods(b *testing.B, ctx context.Context, c kubernetes.Interface, ns string) {
	b.Helper()
	err := c.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))}, metav1.ListOptions{})
	if err != nil {
		b.Fatalf("delete pods of %s: %v", ns, err)
	}
	cluster.Eventually(b, time.Minute, "pods of "+ns+" gone", func() (bool, error) {
		left, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		return len(left.Items) == 0, fmt.Errorf("%d left", len(left.Items))
	})
}
