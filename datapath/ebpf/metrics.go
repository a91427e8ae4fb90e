package ebpf

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exposes a Dataplane's counters to Prometheus. It reads the
// maps at scrape time (Counters), so it costs nothing between scrapes and
// a scrape costs one per-CPU lookup per service port.
type Collector struct {
	d *Dataplane

	connects, datagrams, refused *prometheus.Desc
	drops                        *prometheus.Desc
	entries, capacity, mapFull   *prometheus.Desc
	up                           *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a collector over d; register it once.
func NewCollector(d *Dataplane) *Collector {
	svc := []string{"namespace", "name", "port", "frontend"}
	return &Collector{
		d: d,
		connects: prometheus.NewDesc("weir_dataplane_service_connects_total",
			"connect() calls to a service port sent to a backend by the socket LB (TCP and connected UDP).", svc, nil),
		datagrams: prometheus.NewDesc("weir_dataplane_service_datagrams_total",
			"Unconnected UDP sends to a service port sent to a backend by the socket LB.", svc, nil),
		refused: prometheus.NewDesc("weir_dataplane_service_refused_total",
			"connect() calls and sends to a service port refused because it had no usable backend.", svc, nil),
		drops: prometheus.NewDesc("weir_dataplane_drops_total",
			"Translations refused or degraded, by reason (no_backend, service_missing, slot_missing, revnat_update, affinity_update).", []string{"reason"}, nil),
		entries: prometheus.NewDesc("weir_dataplane_map_entries",
			"Entries in a service map.", []string{"map"}, nil),
		capacity: prometheus.NewDesc("weir_dataplane_map_capacity",
			"Capacity of a service map, in entries.", []string{"map"}, nil),
		mapFull: prometheus.NewDesc("weir_dataplane_map_full_errors_total",
			"Writes a sync could not make because the map was full.", []string{"map"}, nil),
		up: prometheus.NewDesc("weir_dataplane_counters_up",
			"1 when the last scrape read the data plane's counters, 0 when it failed.", nil, nil),
	}
}

// Describe sends the descriptors of every metric Collect sends.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.connects, c.datagrams, c.refused, c.drops, c.entries, c.capacity, c.mapFull, c.up} {
		ch <- d
	}
}

// Collect reads the counters. A read that fails reports
// weir_dataplane_counters_up 0 and what it had read.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	cs, err := c.d.Counters()
	up := 1.0
	if err != nil {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
	for _, s := range cs.Services {
		l := []string{s.Namespace, s.Service, s.Port, s.Frontend}
		ch <- prometheus.MustNewConstMetric(c.connects, prometheus.CounterValue, float64(s.Connects), l...)
		ch <- prometheus.MustNewConstMetric(c.datagrams, prometheus.CounterValue, float64(s.Datagrams), l...)
		ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(s.Refused), l...)
	}
	for r, n := range cs.Reasons {
		ch <- prometheus.MustNewConstMetric(c.drops, prometheus.CounterValue, float64(n), r)
	}
	for _, m := range cs.Maps {
		ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(m.Entries), m.Map)
		ch <- prometheus.MustNewConstMetric(c.capacity, prometheus.GaugeValue, float64(m.Capacity), m.Map)
		// Every map Apply fills is reported, at 0 until it first fills.
		ch <- prometheus.MustNewConstMetric(c.mapFull, prometheus.CounterValue, float64(cs.MapFull[m.Map]), m.Map)
	}
}
