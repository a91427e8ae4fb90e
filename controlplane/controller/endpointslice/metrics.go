package endpointslice

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the controller's Prometheus metrics.
type metrics struct {
	// readyToWrite is the time from the controller seeing a pod's Ready
	// condition change to the slice carrying the change being written.
	readyToWrite prometheus.Histogram
	// writes counts the objects written, by resource and operation.
	writes *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		readyToWrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "weir_endpointslice_ready_to_write_seconds",
			Help: "Time from the EndpointSlice controller seeing a pod's Ready condition change to the EndpointSlice carrying the change being written.",
			// 0.25 ms to ~16 s, ratio 1.5: fine enough to read a p99
			// of a few milliseconds.
			Buckets: prometheus.ExponentialBuckets(0.00025, 1.5, 28),
		}),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_endpointslice_writes_total",
			Help: "Objects the EndpointSlice controller wrote, by resource (endpointslices, endpoints) and operation (create, update, delete).",
		}, []string{"resource", "op"}),
	}
	m.readyToWrite = register(reg, m.readyToWrite)
	m.writes = register(reg, m.writes)
	return m
}

// register registers c, or returns the collector already registered
// under its name: a controller made again (a loop restarted) with the
// same registry keeps counting where it was.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	return c
}
