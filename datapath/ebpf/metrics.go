package ebpf

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports a Dataplane's counters as Prometheus metrics, read
// from the per-CPU maps at each scrape (nothing is cached).
type Collector struct {
	d   *Dataplane
	log *slog.Logger

	connects, datagrams, refused               *prometheus.Desc
	reasons                                    *prometheus.Desc
	mapEntries, mapCapacity                    *prometheus.Desc
	xdpMode                                    *prometheus.Desc
	upPackets, upBytes, upFlows, upRef, upDrop *prometheus.Desc
	beFlows, bePackets                         *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a collector for d. It is safe for concurrent
// scrapes; a scrape of a closed Dataplane yields nothing.
func NewCollector(d *Dataplane) *Collector {
	svc := []string{"service", "frontend"}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("weir_ebpf_"+name, help, labels, prometheus.Labels{"node": d.cfg.Node})
	}
	return &Collector{
		d: d, log: d.log,
		connects:    desc("socklb_connects_total", "connect() calls the socket LB sent to a backend.", svc...),
		datagrams:   desc("socklb_datagrams_total", "Unconnected UDP sends the socket LB translated.", svc...),
		refused:     desc("socklb_refused_total", "connect() and sendmsg() refused for want of a backend.", svc...),
		reasons:     desc("reasons_total", "Packets and calls refused, dropped or degraded, by reason.", "reason"),
		mapEntries:  desc("map_entries", "Entries in a map Apply owns.", "map"),
		mapCapacity: desc("map_capacity", "Capacity of a map Apply owns.", "map"),
		xdpMode:     desc("uplink_xdp_mode", "1 for the XDP mode of the uplink (off, native, generic).", "uplink", "mode"),
		upPackets:   desc("uplink_packets_total", "Packets the uplink programs translated, both directions.", svc...),
		upBytes:     desc("uplink_bytes_total", "Bytes the uplink programs translated, both directions.", svc...),
		upFlows:     desc("uplink_flows_total", "Flows from outside the node the uplink programs balanced.", svc...),
		upRef:       desc("uplink_refused_total", "Packets from outside refused with ICMP port unreachable: no backend.", svc...),
		upDrop:      desc("uplink_dropped_total", "Packets from outside dropped: no local backend, no SNAT port, no route.", svc...),
		beFlows:     desc("uplink_backend_flows_total", "Flows from outside sent to a backend.", "backend"),
		bePackets:   desc("uplink_backend_packets_total", "Packets from outside sent to a backend.", "backend"),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.connects, c.datagrams, c.refused, c.reasons, c.mapEntries, c.mapCapacity,
		c.xdpMode, c.upPackets, c.upBytes, c.upFlows, c.upRef, c.upDrop, c.beFlows, c.bePackets} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	n, err := c.d.Counters()
	if err != nil {
		c.log.Warn("read ebpf counters", slog.Any("error", err))
		return
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, s := range n.Services {
		counter(c.connects, s.Connects, s.Name, s.Frontend)
		counter(c.datagrams, s.Datagrams, s.Name, s.Frontend)
		counter(c.refused, s.Refused, s.Name, s.Frontend)
	}
	for r, v := range n.Reasons {
		counter(c.reasons, v, r)
	}
	for _, m := range n.Maps {
		ch <- prometheus.MustNewConstMetric(c.mapEntries, prometheus.GaugeValue, float64(m.Entries), m.Map)
		ch <- prometheus.MustNewConstMetric(c.mapCapacity, prometheus.GaugeValue, float64(m.Capacity), m.Map)
	}
	if n.Uplink == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.xdpMode, prometheus.GaugeValue, 1, n.Uplink.Uplink, string(n.Uplink.XDP))
	for _, s := range n.Uplink.Services {
		counter(c.upPackets, s.Packets, s.Name, s.Frontend)
		counter(c.upBytes, s.Bytes, s.Name, s.Frontend)
		counter(c.upFlows, s.Flows, s.Name, s.Frontend)
		counter(c.upRef, s.Refused, s.Name, s.Frontend)
		counter(c.upDrop, s.Dropped, s.Name, s.Frontend)
	}
	for _, b := range n.Uplink.Backends {
		counter(c.beFlows, b.Flows, b.Backend)
		counter(c.bePackets, b.Packets, b.Backend)
	}
}
