package ebpf

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exposes a Dataplane's counters to Prometheus. It reads the
// maps at scrape time (Counters), so it costs nothing between scrapes and
// a scrape costs one per-CPU lookup per service port.
type Collector struct {
	d *Dataplane

	connects, datagrams, refused               *prometheus.Desc
	drops                                      *prometheus.Desc
	entries, capacity, mapFull                 *prometheus.Desc
	up                                         *prometheus.Desc
	xdpMode                                    *prometheus.Desc
	upPackets, upBytes, upFlows, upRef, upDrop *prometheus.Desc
	beFlows, bePackets                         *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a collector over d; register it once.
func NewCollector(d *Dataplane) *Collector {
	svc := []string{"namespace", "name", "port", "frontend"}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("weir_dataplane_"+name, help, labels, nil)
	}
	return &Collector{
		d:         d,
		connects:  desc("service_connects_total", "connect() calls to a service port sent to a backend by the socket LB (TCP and connected UDP).", svc...),
		datagrams: desc("service_datagrams_total", "Unconnected UDP sends to a service port sent to a backend by the socket LB.", svc...),
		refused:   desc("service_refused_total", "connect() calls and sends to a service port refused because it had no usable backend.", svc...),
		drops: desc("drops_total", "Translations and packets refused, dropped or degraded, by reason "+
			"(socket LB: no_backend, service_missing, slot_missing, revnat_update, affinity_update; uplink: no_local_backend and others).", "reason"),
		entries:   desc("map_entries", "Entries in a service map.", "map"),
		capacity:  desc("map_capacity", "Capacity of a service map, in entries.", "map"),
		mapFull:   desc("map_full_errors_total", "Writes a sync could not make because the map was full.", "map"),
		up:        desc("counters_up", "1 when the last scrape read the data plane's counters, 0 when it failed."),
		xdpMode:   desc("uplink_xdp_mode", "1 for the XDP mode of the uplink (off, native, generic).", "uplink", "mode"),
		upPackets: desc("uplink_packets_total", "Packets the uplink programs translated for a service port, both directions.", svc...),
		upBytes:   desc("uplink_bytes_total", "Bytes the uplink programs translated for a service port, both directions.", svc...),
		upFlows:   desc("uplink_flows_total", "Flows from outside the node the uplink programs balanced.", svc...),
		upRef:     desc("uplink_refused_total", "Packets from outside refused with ICMP port unreachable: no backend.", svc...),
		upDrop:    desc("uplink_dropped_total", "Packets from outside dropped: no local backend, no SNAT port, no route.", svc...),
		beFlows:   desc("uplink_backend_flows_total", "Flows from outside sent to a backend.", "backend"),
		bePackets: desc("uplink_backend_packets_total", "Packets from outside sent to a backend.", "backend"),
	}
}

// Describe sends the descriptors of every metric Collect sends.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.connects, c.datagrams, c.refused, c.drops, c.entries, c.capacity, c.mapFull, c.up,
		c.xdpMode, c.upPackets, c.upBytes, c.upFlows, c.upRef, c.upDrop, c.beFlows, c.bePackets} {
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
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, s := range cs.Services {
		l := []string{s.Namespace, s.Service, s.Port, s.Frontend}
		counter(c.connects, s.Connects, l...)
		counter(c.datagrams, s.Datagrams, l...)
		counter(c.refused, s.Refused, l...)
	}
	for r, n := range cs.Reasons {
		counter(c.drops, n, r)
	}
	for _, m := range cs.Maps {
		ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(m.Entries), m.Map)
		ch <- prometheus.MustNewConstMetric(c.capacity, prometheus.GaugeValue, float64(m.Capacity), m.Map)
		// Every map Apply fills is reported, at 0 until it first fills.
		counter(c.mapFull, cs.MapFull[m.Map], m.Map)
	}
	if cs.Uplink == nil {
		return
	}
	u := cs.Uplink
	ch <- prometheus.MustNewConstMetric(c.xdpMode, prometheus.GaugeValue, 1, u.Uplink, string(u.XDP))
	for _, s := range u.Services {
		ns, name, port := splitPortName(s.Name)
		l := []string{ns, name, port, s.Frontend}
		counter(c.upPackets, s.Packets, l...)
		counter(c.upBytes, s.Bytes, l...)
		counter(c.upFlows, s.Flows, l...)
		counter(c.upRef, s.Refused, l...)
		counter(c.upDrop, s.Dropped, l...)
	}
	for _, b := range u.Backends {
		counter(c.beFlows, b.Flows, b.Backend)
		counter(c.bePackets, b.Packets, b.Backend)
	}
}
