package dpbench

import (
	"strings"
	"testing"
	"time"
)

// The NodePort section names its conditions in every row and puts the
// failed exchanges, with the data plane's and the node's loss counters,
// in notes after the table (a line between rows would end it).
func TestNodePortMarkdown(t *testing.T) {
	o := Options{Requests: 300, RateWorkers: 4, RateTime: time.Second}
	rs := []*Result{
		{Dataplane: "socket", Latency: []LatencyFigure{{Services: 10, P50: time.Millisecond, DirectP50: time.Millisecond}}},
		{Dataplane: "ebpf NodePort, XDP native", Conditions: "XDP native", NodePort: []NodePortFigure{
			{Services: 10, Backend: "local", BrNetfilter: "1", Latency: LatencyFigure{P50: 100 * time.Microsecond, DirectP50: 50 * time.Microsecond},
				Conns: RateFigure{PerSecond: 1000}, DirectConns: RateFigure{PerSecond: 2000}, UDP: RateFigure{PerSecond: 300000, Errors: 7}, DirectUDP: RateFigure{PerSecond: 400000}},
			{Services: 10, Backend: "remote", BrNetfilter: "1", Latency: LatencyFigure{P50: time.Millisecond, DirectP50: time.Millisecond, Errors: 3},
				Reasons: map[string]uint64{"nat_ports": 5}},
		}},
		{Dataplane: "iptables NodePort (legacy)", Conditions: "partial sync on", NodePort: []NodePortFigure{
			{Services: 10000, Backend: "local", BrNetfilter: "0", Latency: LatencyFigure{P50: time.Millisecond, DirectP50: time.Millisecond},
				Conns: RateFigure{Errors: 2}, Conntrack: map[string]uint64{"insert_failed": 2}},
		}},
	}
	md := Markdown(rs, o, "test machine")
	_, np, ok := strings.Cut(md, "## NodePort from an external client")
	if !ok {
		t.Fatalf("no NodePort section in:\n%s", md)
	}
	for _, want := range []string{
		"| ebpf NodePort, XDP native | XDP native | 10 | local | 1 | 100µs / 0s | 50µs / 0s | 2.00 | 1000 / 2000 | 0 / 0 | 300000 / 400000 (7 / 0) |\n",
		"| iptables NodePort (legacy) | partial sync on | 10000 | local | 0 |",
		"Note (ebpf NodePort, XDP native, 10 services, remote backend): failed exchanges: latency via nodePort 3, (data plane's counters over both backends' runs: nat_ports 5)\n",
		"Note (iptables NodePort (legacy), 10000 services, local backend): failed exchanges: new conns via nodePort 2, (node's conntrack over both backends' runs: insert_failed 2)\n",
	} {
		if !strings.Contains(np, want) {
			t.Errorf("NodePort section lacks %q:\n%s", want, np)
		}
	}
	if strings.Contains(np, "Note (ebpf NodePort, XDP native, 10 services, local") {
		t.Errorf("a note for a run without failures:\n%s", np)
	}
	// The table ends before the first note.
	table, _, _ := strings.Cut(np, "\nNote")
	if rows := strings.Count(table, "\n| "); rows != 4 {
		t.Errorf("table has %d rows (header and three figures wanted):\n%s", rows, table)
	}
}
