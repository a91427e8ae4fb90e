package localcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	vnetns "github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"weir.dev/weir/nodeagent/agent"
	"weir.dev/weir/nodeagent/simnode"
)

// Demo shows a Service answering on a running local cluster: it starts the
// echo server on the last node, publishes it as Service "weir-demo" with a
// hand-written EndpointSlice (pods arrive with the node runtime), and asks
// the ClusterIP from the first node, as a process in that node's cgroup —
// where the eBPF socket load balancer translates the connect. It removes
// what it made before returning.
func Demo(ctx context.Context, dataDir, echoBin string, out io.Writer) error {
	var l layout
	b, err := os.ReadFile(layoutFile(dataDir))
	if err != nil {
		return fmt.Errorf("no cluster in %s (run weir up first): %w", dataDir, err)
	}
	if err := json.Unmarshal(b, &l); err != nil || len(l.Nodes) == 0 {
		return fmt.Errorf("read %s: %v", layoutFile(dataDir), err)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dataDir, "admin.kubeconfig"))
	if err != nil {
		return err
	}
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	client, server := l.Nodes[0], l.Nodes[len(l.Nodes)-1]
	n, err := c.CoreV1().Nodes().Get(ctx, server, metav1.GetOptions{})
	if err != nil {
		return err
	}
	var ip string
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			ip = a.Address
		}
	}
	echo := exec.Command(echoBin, "--hostname", "echo-on-"+server, "--http", net.JoinHostPort(ip, "8080"), "--tcp", "-", "--udp", "-")
	echo.Stderr = io.Discard
	node := &simnode.Node{Name: server, Netns: simnode.NetnsName(server)}
	if err := node.Start(echo); err != nil {
		return fmt.Errorf("start the echo server on %s: %w", server, err)
	}
	defer func() { _ = echo.Process.Kill(); _ = echo.Wait() }()

	svcs := c.CoreV1().Services("default")
	svc, err := svcs.Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "weir-demo"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create the demo service: %w", err)
	}
	defer func() { _ = svcs.Delete(context.WithoutCancel(ctx), "weir-demo", metav1.DeleteOptions{}) }()
	name, proto, port := "http", corev1.ProtocolTCP, int32(8080)
	slices := c.DiscoveryV1().EndpointSlices("default")
	if _, err := slices.Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "weir-demo-1", Labels: map[string]string{discoveryv1.LabelServiceName: "weir-demo"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Protocol: &proto, Port: &port}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, NodeName: &server}},
	}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create the demo endpoints: %w", err)
	}
	defer func() { _ = slices.Delete(context.WithoutCancel(ctx), "weir-demo-1", metav1.DeleteOptions{}) }()

	url := "http://" + net.JoinHostPort(svc.Spec.ClusterIP, "80") + "/"
	fmt.Fprintf(out, "Service default/weir-demo ClusterIP %s -> echo server on node %s (%s:8080)\n", svc.Spec.ClusterIP, server, ip)
	cg := filepath.Join(agent.CgroupRoot, "weir", client)
	deadline := time.Now().Add(30 * time.Second)
	answered := 0
	for answered < 3 {
		body, err := getFrom(client, cg, url)
		if err != nil {
			if time.Now().After(deadline) {
				return fmt.Errorf("GET %s from node %s: %w", url, client, err)
			}
			time.Sleep(200 * time.Millisecond)
			continue
		}
		answered++
		fmt.Fprintf(out, "GET %s from node %s -> %s\n", url, client, strings.TrimSpace(body))
	}
	return nil
}

// getFrom does one HTTP GET from inside node's namespace, as a process in
// its cgroup (when the cgroup exists: the eBPF data plane made it).
func getFrom(node, cgroup, url string) (string, error) {
	if _, err := os.Stat(cgroup); err == nil {
		orig, err := ownCgroup()
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(cgroup, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			return "", fmt.Errorf("join node cgroup: %w", err)
		}
		defer os.WriteFile(filepath.Join(orig, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0o644)
	}
	type result struct {
		body string
		err  error
	}
	rc := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		h, err := vnetns.GetFromName(simnode.NetnsName(node))
		if err == nil {
			err = vnetns.Set(h)
			h.Close()
		}
		if err != nil {
			rc <- result{err: err}
			return
		}
		// A dialer without proxies, keep-alives or extra goroutines: the
		// connect must happen on this thread, inside the namespace.
		conn, err := net.DialTimeout("tcp", strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/"), 2*time.Second)
		if err != nil {
			rc <- result{err: err}
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Close = true
		if err := req.Write(conn); err != nil {
			rc <- result{err: err}
			return
		}
		b, err := io.ReadAll(conn)
		if err != nil {
			rc <- result{err: err}
			return
		}
		parts := strings.SplitN(string(b), "\r\n\r\n", 2)
		if len(parts) != 2 {
			rc <- result{err: fmt.Errorf("malformed HTTP answer %q", b)}
			return
		}
		rc <- result{body: parts[1]}
	}()
	r := <-rc
	return r.body, r.err
}

func ownCgroup() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			return filepath.Join(agent.CgroupRoot, rest), nil
		}
	}
	return "", fmt.Errorf("no cgroup v2 entry in /proc/self/cgroup")
}
