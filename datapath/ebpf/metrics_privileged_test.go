package ebpf

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"weir.dev/weir/datapath"
)

// scrape fetches h's /metrics in the text format.
func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// sample finds the sample of name whose labels include want ("k=\"v\""
// pairs) in a text exposition; ok is false when there is none.
func sample(text, name string, want ...string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		rest, found := strings.CutPrefix(line, name)
		if !found || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		labels, value := "", rest
		if strings.HasPrefix(rest, "{") {
			end := strings.LastIndex(rest, "}")
			labels, value = rest[1:end], rest[end+1:]
		}
		all := true
		for _, w := range want {
			if !strings.Contains(","+labels+",", ","+w+",") {
				all = false
				break
			}
		}
		if !all {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		return v, err == nil
	}
	return 0, false
}

func mustSample(t *testing.T, text, name string, want ...string) float64 {
	t.Helper()
	v, ok := sample(text, name, want...)
	if !ok {
		t.Fatalf("no sample %s{%s} in:\n%s", name, strings.Join(want, ","), text)
	}
	return v
}

// The collector reports, at scrape time, the per-service counters of a
// connection made through a VIP, refusals and their reason, map
// occupancy against capacity, and map-full errors.
func TestCollectorFollowsCounters(t *testing.T) {
	f := newFixture(t, MapSizes{Services: 3, Slots: 8}, "be1")
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(f.dp))
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	f.apply(service("web", "10.96.0.10", tcpPort(80, f.tcp("be1", true))), service("empty", "10.96.0.11", tcpPort(80)))

	web := []string{`namespace="t"`, `name="web"`, `port="http"`, `frontend="10.96.0.10:80/tcp"`}
	before := scrape(t, h)
	if v := mustSample(t, before, "weir_dataplane_service_connects_total", web...); v != 0 {
		t.Fatalf("connects before any connection = %v", v)
	}
	f.spread("http", "10.96.0.10:80", 3, "be1")
	if r := f.cl.do(clientCmd{Op: "dial", Addr: "10.96.0.11:80"}); r.Err == "" {
		t.Fatalf("dial to a service without endpoints succeeded")
	}
	after := scrape(t, h)
	if v := mustSample(t, after, "weir_dataplane_service_connects_total", web...); v != 3 {
		t.Errorf("connects after 3 connections = %v", v)
	}
	if v := mustSample(t, after, "weir_dataplane_service_refused_total", `name="empty"`); v != 1 {
		t.Errorf("refused after 1 refused dial = %v", v)
	}
	if v := mustSample(t, after, "weir_dataplane_drops_total", `reason="no_backend"`); v != 1 {
		t.Errorf("no_backend drops = %v", v)
	}
	if v := mustSample(t, after, "weir_dataplane_map_entries", `map="lb4_services"`); v != 2 {
		t.Errorf("lb4_services entries = %v, want 2", v)
	}
	if v := mustSample(t, after, "weir_dataplane_map_capacity", `map="lb4_services"`); v != 3 {
		t.Errorf("lb4_services capacity = %v, want 3", v)
	}
	if v := mustSample(t, after, "weir_dataplane_map_full_errors_total", `map="lb4_services"`); v != 0 {
		t.Errorf("map full errors before any = %v", v)
	}

	// Two more service ports into one free entry.
	err := f.dp.ApplyServices(t.Context(), datapath.NodeInfo{Name: "n1"}, []datapath.Service{
		service("x", "10.96.0.12", tcpPort(80)), service("y", "10.96.0.13", tcpPort(80)),
	}, nil)
	if !errors.Is(err, ErrMapFull) {
		t.Fatalf("apply past capacity = %v; want ErrMapFull", err)
	}
	full := scrape(t, h)
	if v := mustSample(t, full, "weir_dataplane_map_full_errors_total", `map="lb4_services"`); v != 1 {
		t.Errorf("map full errors = %v, want 1", v)
	}
	if v := mustSample(t, full, "weir_dataplane_counters_up"); v != 1 {
		t.Errorf("counters_up = %v", v)
	}
}
