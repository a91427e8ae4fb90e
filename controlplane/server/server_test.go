package server_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"weir.dev/weir/controlplane/server"
	"weir.dev/weir/test/cluster"
)

// Every --listen address serves, and its host is in the certificate: a
// client that verifies the server name connects to each.
func TestEveryListenAddressIsServedAndCertified(t *testing.T) {
	s := cluster.Start(t, cluster.WithConfig(func(c *server.Config) {
		c.Listen = []string{"127.0.0.1:0", "127.0.0.2:0"}
	}))
	if len(s.URLs) != 2 {
		t.Fatalf("urls %v, want 2", s.URLs)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CA.CertPEM())
	for _, u := range s.URLs {
		host, _, _ := net.SplitHostPort(strings.TrimPrefix(u, "https://"))
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: host}}}
		resp, err := c.Get(u + "/healthz")
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok" {
			t.Fatalf("%s/healthz: %d %q", u, resp.StatusCode, b)
		}
	}
}

// The admin kubeconfig is a standard kubeconfig client-go loads and uses,
// and the namespaces that always exist are there.
func TestAdminKubeconfigAndSystemNamespaces(t *testing.T) {
	s := cluster.Start(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
	if err != nil {
		t.Fatalf("load %s: %v", s.Kubeconfig, err)
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.CoreV1().Namespaces().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, n := range l.Items {
		got[n.Name] = n.Status.Phase == "Active"
	}
	for _, want := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
		if !got[want] {
			t.Errorf("namespace %s missing or not Active (have %v)", want, got)
		}
	}
}

func get(t *testing.T, s *cluster.Server, path string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+s.AdminToken)
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestDiscovery(t *testing.T) {
	s := cluster.Start(t)
	c := s.Client(t)
	groups, resources, err := c.Discovery().ServerGroupsAndResources()
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	names := map[string]bool{}
	for _, g := range groups {
		names[g.Name] = true
	}
	for _, g := range []string{"", "apps", "batch", "discovery.k8s.io", "coordination.k8s.io", "autoscaling"} {
		if !names[g] {
			t.Errorf("group %q not discovered", g)
		}
	}
	short := map[string][]string{}
	for _, rl := range resources {
		for _, r := range rl.APIResources {
			short[rl.GroupVersion+"/"+r.Name] = r.ShortNames
		}
	}
	for res, want := range map[string]string{"v1/pods": "po", "v1/services": "svc", "apps/v1/deployments": "deploy", "autoscaling/v2/horizontalpodautoscalers": "hpa"} {
		if s := short[res]; len(s) == 0 || s[0] != want {
			t.Errorf("%s short names %v, want %s", res, s, want)
		}
	}
	code, b := get(t, s, "/version")
	var v struct{ GitVersion string }
	if code != 200 || json.Unmarshal(b, &v) != nil || v.GitVersion == "" {
		t.Errorf("/version: %d %s", code, b)
	}
}

// metric returns the value of one sample line in /metrics (0 if absent).
func metric(t *testing.T, s *cluster.Server, sample string) float64 {
	t.Helper()
	code, b := get(t, s, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", line, err)
			}
			return v
		}
	}
	return 0
}

func TestMetricsCountRequests(t *testing.T) {
	s := cluster.Start(t)
	c := s.Client(t)
	// The leader's controllers use the API too, so compare before and after.
	list200 := `weir_apiserver_requests_total{code="200",resource="configmaps",verb="list"}`
	get404 := `weir_apiserver_requests_total{code="404",resource="configmaps",verb="get"}`
	listLat := `weir_apiserver_request_duration_seconds_count{resource="configmaps",verb="list"}`
	etcdList := `weir_etcd_request_duration_seconds_count{operation="list"}`
	before := map[string]float64{}
	for _, m := range []string{list200, get404, listLat, etcdList} {
		before[m] = metric(t, s, m)
	}
	for range 3 {
		if _, err := c.CoreV1().ConfigMaps("default").List(t.Context(), metav1.ListOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = c.CoreV1().ConfigMaps("default").Get(t.Context(), "missing", metav1.GetOptions{})
	for m, min := range map[string]float64{list200: 3, get404: 1, listLat: 3, etcdList: 3} {
		if d := metric(t, s, m) - before[m]; d < min {
			t.Errorf("%s grew by %v, want at least %v", m, d, min)
		}
	}
	if !strings.Contains(func() string { _, b := get(t, s, "/metrics"); return string(b) }(), "weir_apiserver_registered_watchers") {
		t.Errorf("/metrics lacks the watcher gauge")
	}
}

func TestReadyz(t *testing.T) {
	s := cluster.Start(t)
	resp, err := s.HTTPClient().Get(s.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/readyz: %d", resp.StatusCode)
	}
}

// The leader's loops register their metrics for the term they lead in,
// and /metrics serves them beside the API server's.
func TestLoopMetricsAreServed(t *testing.T) {
	s := cluster.Start(t)
	cluster.Eventually(t, 30*time.Second, "loop metrics on /metrics", func() (bool, error) {
		_, b := get(t, s, "/metrics")
		text := string(b)
		return strings.Contains(text, "weir_endpointslice_ready_to_write_seconds") &&
			strings.Contains(text, "weir_scheduler_pending_pods") &&
			strings.Contains(text, "weir_apiserver_registered_watchers"), fmt.Errorf("metrics: %s", weirLines(text))
	})
}

func weirLines(text string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "# HELP weir_") {
			out = append(out, l[:min(len(l), 60)])
		}
	}
	return strings.Join(out, "\n")
}
