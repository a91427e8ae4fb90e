package apiserver

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type metrics struct {
	requests       *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	watchers       *prometheus.GaugeVec
	watchOverflows *prometheus.CounterVec
	handler        http.Handler
}

func newMetrics(reg prometheus.Registerer, gatherer prometheus.Gatherer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_apiserver_requests_total", Help: "API requests by verb, resource and HTTP code.",
		}, []string{"verb", "resource", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "weir_apiserver_request_duration_seconds", Help: "API request latency by verb and resource (watches excluded).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"verb", "resource"}),
		watchers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "weir_apiserver_registered_watchers", Help: "Open watch streams by resource.",
		}, []string{"resource"}),
		watchOverflows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_apiserver_watch_overflows_total", Help: "Watchers closed because they fell behind.",
		}, []string{"resource"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.watchers, m.watchOverflows} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	if gatherer != nil {
		m.handler = promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{})
	} else if g, ok := reg.(prometheus.Gatherer); ok {
		m.handler = promhttp.HandlerFor(g, promhttp.HandlerOpts{})
	} else {
		m.handler = promhttp.Handler()
	}
	return m, nil
}

func (s *Server) metricsHandler(w http.ResponseWriter, r *http.Request) {
	s.m.handler.ServeHTTP(w, r)
}
