package scheduler

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Attempt results, as kube-scheduler labels scheduler_schedule_attempts_total.
const (
	resultScheduled     = "scheduled"
	resultUnschedulable = "unschedulable"
	resultError         = "error"
)

// metrics are the scheduler's Prometheus series.
type metrics struct {
	// attempts counts scheduling attempts by result.
	attempts *prometheus.CounterVec
	// latency is an attempt's duration by result: from leaving the
	// queue to the binding's answer (scheduled, error) or to the
	// decision (unschedulable).
	latency *prometheus.HistogramVec
	// pending counts the pods waiting, by queue (active, backoff,
	// unschedulable).
	pending *prometheus.GaugeVec
	// The pending children, looked up once: the queue reports its
	// depth on every change.
	active, backoff, unschedulable prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_scheduler_schedule_attempts_total",
			Help: "Scheduling attempts by result (scheduled, unschedulable, error).",
		}, []string{"result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "weir_scheduler_scheduling_attempt_duration_seconds",
			Help:    "Scheduling attempt latency by result: decision plus binding.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}, []string{"result"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "weir_scheduler_pending_pods",
			Help: "Pods waiting to be scheduled by queue (active, backoff, unschedulable).",
		}, []string{"queue"}),
	}
	m.attempts = register(reg, m.attempts)
	m.latency = register(reg, m.latency)
	m.pending = register(reg, m.pending)
	m.active = m.pending.WithLabelValues("active")
	m.backoff = m.pending.WithLabelValues("backoff")
	m.unschedulable = m.pending.WithLabelValues("unschedulable")
	return m
}

// register registers c, or returns the collector already registered
// under its name: a leader that loses and regains leadership builds a
// new Scheduler against the same registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(C); ok {
				return old
			}
		}
		// Only a broken invariant (two different metrics under one
		// name) gets here: keep the unregistered collector working.
	}
	return c
}

func (m *metrics) setPending(active, backoff, unschedulable int) {
	m.active.Set(float64(active))
	m.backoff.Set(float64(backoff))
	m.unschedulable.Set(float64(unschedulable))
}
