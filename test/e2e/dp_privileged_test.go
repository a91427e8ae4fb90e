package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"weir.dev/weir/nodeagent/simnode"
	"weir.dev/weir/test/cluster"
)

// scrapeNode GETs the agent's metrics address inside node i's network
// namespace (the agent serves kube-proxy's 127.0.0.1:10249 there). The
// connection is dialled on a thread inside the namespace.
func scrapeNode(c *Cluster, i int) (string, error) {
	var body string
	err := (&simnode.Node{Netns: c.NodeNetns(i)}).Do(func() error {
		conn, err := net.DialTimeout("tcp", "127.0.0.1:10249", 5*time.Second)
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprint(conn, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /metrics: %s", resp.Status)
		}
		body = string(b)
		return err
	})
	return body, err
}

// checkNodeMetricsAndMaps checks, on node 1 after svc answered there,
// that the agent serves the programming-latency histogram with samples
// and, on ebpf, the service's counters; and that `weir dp` reads the
// node's pinned maps.
func checkNodeMetricsAndMaps(t *testing.T, c *Cluster, dataplane string, svc *corev1.Service) {
	t.Helper()
	var text string
	cluster.Eventually(t, 30*time.Second, "node 1's agent serves its metrics", func() (bool, error) {
		var err error
		text, err = scrapeNode(c, 1)
		return err == nil && strings.Contains(text, "weir_network_programming_duration_seconds_count"), nil
	})
	for _, want := range []string{
		"weir_network_programming_duration_seconds_count ",
		`weir_proxy_syncs_total{mode="full",result="ok"}`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("node 1 metrics lack %s:\n%s", want, text)
		}
	}
	if strings.Contains(text, "weir_network_programming_duration_seconds_count 0\n") {
		t.Errorf("no programming-latency sample after the service was programmed")
	}
	if dataplane != "ebpf" {
		return
	}
	series := fmt.Sprintf(`weir_dataplane_service_connects_total{frontend="%s:80/tcp",name="demo",namespace="default",port="http"}`, svc.Spec.ClusterIP)
	if !strings.Contains(text, series+" ") || strings.Contains(text, series+" 0\n") {
		t.Errorf("node 1 metrics: want %s above 0 after connections through it:\n%s", series, text)
	}
	out, err := exec.Command(weirBin, "dp", "backends", "--node", c.NodePrefix+"1").CombinedOutput()
	if err != nil {
		t.Fatalf("weir dp backends: %v\n%s", err, out)
	}
	found := false
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 4 && f[0] == svc.Spec.ClusterIP+":80/tcp" && strings.HasSuffix(f[3], ":8080") {
			found = true
		}
	}
	if !found {
		t.Errorf("weir dp backends shows no backend for %s:80/tcp:\n%s", svc.Spec.ClusterIP, out)
	}
}
