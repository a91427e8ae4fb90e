// Package e2e drives the real weir binary: `weir up --detach` builds a
// cluster of simulated nodes on this machine, tests use it through the API
// and from inside the node namespaces, and `weir down` removes it.
package e2e

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"weir.dev/weir/nodeagent/simnode"
	"weir.dev/weir/test/cluster"
	"weir.dev/weir/test/dpclient"
	"weir.dev/weir/test/topology"
)

var weirBin string

func TestMain(m *testing.M) {
	dpclient.MaybeChild()
	dir, err := os.MkdirTemp("", "weir-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	weirBin = filepath.Join(dir, "weir")
	// weir-echo goes beside weir: agents offer it as the image weir.local/echo.
	for bin, pkg := range map[string]string{weirBin: "weir.dev/weir/cmd/weir", filepath.Join(dir, "weir-echo"): "weir.dev/weir/cmd/weir-echo"} {
		build := exec.Command("go", "build", "-o", bin, pkg)
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build", pkg+":", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Cluster is one `weir up --detach` cluster with names of its own.
type Cluster struct {
	DataDir, Bridge, NodePrefix string
	Nodes                       int
	Client                      kubernetes.Interface
}

// NodeNetns is the network namespace of node i (1-based).
func (c *Cluster) NodeNetns(i int) string { return "weir-" + c.NodePrefix + strconv.Itoa(i) }

func up(t testing.TB, nodes int, extra ...string) *Cluster {
	t.Helper()
	c := &Cluster{DataDir: t.TempDir(), Bridge: topology.UniqueName(t, "wb"), NodePrefix: topology.UniqueName(t, "e")[:6], Nodes: nodes}
	underlay := fmt.Sprintf("10.%d.%d.0/24", 200+rand.IntN(50), rand.IntN(256))
	args := append([]string{"up", "--detach", "--data-dir", c.DataDir, "--nodes", strconv.Itoa(nodes),
		"--api-port", strconv.Itoa(topology.FreePort(t)), "--bridge", c.Bridge, "--underlay", underlay,
		"--node-prefix", c.NodePrefix}, extra...)
	cmd := exec.Command(weirBin, args...)
	t.Cleanup(func() {
		if t.Failed() {
			for i := 1; i <= nodes; i++ {
				b, _ := os.ReadFile(filepath.Join(c.DataDir, "nodes", c.NodePrefix+strconv.Itoa(i), "agent.log"))
				t.Logf("agent %d log:\n%s", i, tail(string(b)))
			}
			b, _ := os.ReadFile(filepath.Join(c.DataDir, "up.log"))
			t.Logf("up.log:\n%s", tail(string(b)))
		}
		if out, err := exec.Command(weirBin, "down", "--data-dir", c.DataDir).CombinedOutput(); err != nil {
			t.Errorf("weir down: %v: %s", err, out)
		}
	})
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("weir up: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "export KUBECONFIG="+filepath.Join(c.DataDir, "admin.kubeconfig")) {
		t.Fatalf("weir up did not print the KUBECONFIG line:\n%s", out)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", filepath.Join(c.DataDir, "admin.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	// kubectl's client limits (50 QPS, burst 300), not client-go's 5/10:
	// a benchmark creating 100 pods must measure the cluster, not its own
	// rate limiter.
	rc.QPS, rc.Burst = 50, 300
	if c.Client, err = kubernetes.NewForConfig(rc); err != nil {
		t.Fatal(err)
	}
	return c
}

func tail(s string) string {
	if len(s) > 3000 {
		return s[len(s)-3000:]
	}
	return s
}

func ptr[T any](v T) *T { return &v }

// weir up brings up Ready nodes with pod CIDRs of their own; a Service
// answers through the agents' data plane from another node; weir down
// removes everything. Both data planes.
func TestUpServiceDown(t *testing.T) {
	for _, dp := range []string{"ebpf", "iptables"} {
		t.Run(dp, func(t *testing.T) { upServiceDown(t, dp) })
	}
}

func upServiceDown(t *testing.T, dataplane string) {
	c := up(t, 2, "--dataplane", dataplane)
	ctx := t.Context()
	nodes, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cidrs := map[string]bool{}
	var backendIP string
	for _, n := range nodes.Items {
		cidrs[n.Spec.PodCIDR] = true
		if n.Name == c.NodePrefix+"2" {
			backendIP = n.Status.Addresses[0].Address
		}
	}
	if len(nodes.Items) != 2 || len(cidrs) != 2 || backendIP == "" {
		t.Fatalf("nodes: %d, distinct pod CIDRs %v, node 2 address %q", len(nodes.Items), cidrs, backendIP)
	}

	// A backend on node 2, reached through a Service from node 1 by a
	// client in node 1's cgroup (where socket load balancing acts).
	dpclient.Serve(t, c.NodeNetns(2), "b", net.JoinHostPort(backendIP, "8080"))
	svc, err := c.Client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "demo"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.DiscoveryV1().EndpointSlices("default").Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "demo-1", Labels: map[string]string{discoveryv1.LabelServiceName: "demo"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Protocol: ptr(corev1.ProtocolTCP), Port: ptr(int32(8080))}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{backendIP}, NodeName: ptr(c.NodePrefix + "2"),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	spec := dpclient.Spec{Netns: c.NodeNetns(1), Proto: "tcp", Addr: net.JoinHostPort(svc.Spec.ClusterIP, "80")}
	if dataplane == "ebpf" {
		spec.Cgroup = filepath.Join("/sys/fs/cgroup/unified/weir", c.NodePrefix+"1")
	}
	var last dpclient.Result
	cluster.Eventually(t, 30*time.Second, "the Service answers from node 1", func() (bool, error) {
		last = dpclient.Once(t, spec)
		return strings.HasPrefix(last.Answer, "b "), nil
	})
	if dataplane == "ebpf" && !strings.HasPrefix(last.Peer, svc.Spec.ClusterIP+":") {
		t.Errorf("getpeername shows %s, want the service address (socket LB)", last.Peer)
	}
	checkNodeMetricsAndMaps(t, c, dataplane, svc)

	if out, err := exec.Command(weirBin, "down", "--data-dir", c.DataDir).CombinedOutput(); err != nil {
		t.Fatalf("weir down: %v: %s", err, out)
	}
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), c.NodeNetns(1)) {
		t.Fatalf("node namespace left after weir down:\n%s", out)
	}
	if err := exec.Command("ip", "link", "show", c.Bridge).Run(); err == nil {
		t.Fatalf("underlay bridge %s left after weir down", c.Bridge)
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/bpf/weir", c.NodePrefix+"1")); err == nil {
		t.Fatalf("eBPF pins left after weir down")
	}
}

// The make-up story: a Deployment of the echo image runs as pods on the
// simulated nodes (scheduler, agents, containerd), the EndpointSlice
// controller publishes them, and the Service answers from node 1 through
// the eBPF socket load balancer, from more than one pod.
func TestUpDemoDeployment(t *testing.T) {
	c := up(t, 2, "--dataplane", "ebpf")
	out, err := exec.Command(weirBin, "demo", "--data-dir", c.DataDir).CombinedOutput()
	if err != nil {
		t.Fatalf("weir demo: %v\n%s", err, out)
	}
	// The demo prints its pods, then answers through the ClusterIP asked
	// from a client pod, then answers through the NodePort asked from
	// this host (outside every node: the uplink's TC programs translate).
	pods := map[string]bool{}
	answers := map[string]map[string]bool{"clusterip": {}, "nodeport": {}}
	section, nodePort := "", ""
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "pod":
			pods[f[1]] = true
		case strings.Contains(line, "asking it from pod"):
			section = "clusterip"
		case strings.HasPrefix(line, "NodePort "):
			section, nodePort = "nodeport", strings.TrimSuffix(f[1], ";")
		}
		if _, rest, ok := strings.Cut(line, "hostname="); ok && section != "" {
			answers[section][strings.Fields(rest)[0]] = true
		}
	}
	if len(pods) != 3 {
		t.Fatalf("demo pods %v, want 3:\n%s", pods, out)
	}
	for sec, from := range answers {
		if len(from) == 0 {
			t.Fatalf("no %s answers:\n%s", sec, out)
		}
		for a := range from {
			if !pods[a] {
				t.Fatalf("%s answer from %s, which is not a demo pod:\n%s", sec, a, out)
			}
		}
	}
	if len(answers["clusterip"]) < 2 {
		t.Fatalf("ClusterIP answers came from %v, want at least two pods:\n%s", answers["clusterip"], out)
	}
	// The NodePort flows from the host went through node 1's uplink
	// programs: its pinned conntrack map shows them.
	ct, err := exec.Command(weirBin, "dp", "conntrack", "--node", c.NodePrefix+"1").CombinedOutput()
	if err != nil {
		t.Fatalf("weir dp conntrack: %v\n%s", err, ct)
	}
	if !strings.Contains(string(ct), ":"+nodePort+" ") {
		t.Fatalf("weir dp conntrack shows no flow to nodePort %s:\n%s\ndemo:\n%s", nodePort, ct, out)
	}
}

// Readiness-gated endpoints end to end: a pod whose readiness probe starts
// failing shows 0/1 ready with its container still running, leaves the
// Service (its slice endpoint turns not ready and the eBPF load balancer
// stops choosing it) and comes back when it passes.
func TestReadinessGatesServiceTraffic(t *testing.T) {
	c := up(t, 2, "--dataplane", "ebpf")
	ctx := t.Context()
	labels := map[string]string{"app": "gated"}
	replicas := int32(2)
	if _, err := c.Client.AppsV1().Deployments("default").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "gated"},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "echo", Image: "weir.local/echo:latest", ImagePullPolicy: corev1.PullNever,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
						PeriodSeconds: 1, FailureThreshold: 1}}}}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc, err := c.Client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "gated"},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := dpclient.Spec{Netns: c.NodeNetns(1), Proto: "tcp", Addr: net.JoinHostPort(svc.Spec.ClusterIP, "80"),
		Cgroup: filepath.Join("/sys/fs/cgroup/unified/weir", c.NodePrefix+"1")}
	answers := func(n int) map[string]int {
		seen := map[string]int{}
		for range n {
			if body, err := httpGet(t, spec, "/"); err == nil {
				if _, rest, ok := strings.Cut(body, "hostname="); ok {
					seen[strings.Fields(rest)[0]]++
				}
			}
		}
		return seen
	}
	cluster.Eventually(t, 120*time.Second, "both pods answer through the Service", func() (bool, error) {
		l, err := c.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=gated"})
		if err != nil {
			return false, err
		}
		return len(l.Items) == 2 && len(answers(10)) == 2, nil
	})
	// Read them again: the list above may predate their status.
	l, err := c.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=gated"})
	if err != nil || len(l.Items) != 2 || l.Items[0].Status.PodIP == "" {
		t.Fatalf("pods: %v %+v", err, l)
	}
	victim, other := l.Items[0], l.Items[1]
	setReady := func(v string) {
		t.Helper()
		if _, err := httpGet(t, dpclient.Spec{Netns: c.NodeNetns(1), Proto: "tcp", Addr: net.JoinHostPort(victim.Status.PodIP, "8080")}, "/set-ready?v="+v); err != nil {
			t.Fatalf("set-ready=%s on %s: %v", v, victim.Name, err)
		}
	}
	setReady("0")
	cluster.Eventually(t, 60*time.Second, "the unready pod gets no new connections", func() (bool, error) {
		seen := answers(10)
		return seen[victim.Name] == 0 && seen[other.Name] == 10, nil
	})
	// The pod shows 0/1 ready while its container keeps running: same
	// container, no restart.
	cluster.Eventually(t, 30*time.Second, "the pod is 0/1 ready", func() (bool, error) {
		p, err := c.Client.CoreV1().Pods("default").Get(ctx, victim.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
				return false, nil
			}
		}
		if len(p.Status.ContainerStatuses) != 1 || len(victim.Status.ContainerStatuses) != 1 {
			return false, fmt.Errorf("container statuses %+v", p.Status.ContainerStatuses)
		}
		cs, was := p.Status.ContainerStatuses[0], victim.Status.ContainerStatuses[0]
		if cs.State.Running == nil || cs.ContainerID != was.ContainerID || cs.RestartCount != was.RestartCount {
			return false, fmt.Errorf("container changed: %+v, was %s", cs, was.ContainerID)
		}
		return !cs.Ready, nil
	})
	setReady("1")
	cluster.Eventually(t, 60*time.Second, "the pod is back once ready", func() (bool, error) {
		return answers(10)[victim.Name] > 0, nil
	})
}

// httpGet sends one HTTP/1.0 GET through a dpclient-style connection from
// inside the node namespace (and cgroup) and returns the body.
func httpGet(t *testing.T, s dpclient.Spec, path string) (string, error) {
	t.Helper()
	return dpclient.HTTPGet(t, s, path)
}

// Issue 8's zero-downtime promise: a client looping requests through the
// Service during a rolling update of a Deployment with a readiness probe
// sees no failed request.
func TestRollingUpdateWithoutFailedRequests(t *testing.T) {
	c := up(t, 2, "--dataplane", "ebpf")
	ctx := t.Context()
	labels := map[string]string{"app": "roll"}
	replicas := int32(3)
	zero, one := intstr.FromInt32(0), intstr.FromInt32(1)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "roll"},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &zero, MaxSurge: &one}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "echo", Image: "weir.local/echo:v1", ImagePullPolicy: corev1.PullNever,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
						PeriodSeconds: 1, FailureThreshold: 1}}}}}},
	}
	if _, err := c.Client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc, err := c.Client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "roll"},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := dpclient.Spec{Netns: c.NodeNetns(1), Proto: "tcp", Addr: net.JoinHostPort(svc.Spec.ClusterIP, "80"),
		Cgroup: filepath.Join("/sys/fs/cgroup/unified/weir", c.NodePrefix+"1"), HTTPPath: "/"}
	available := func(updated int32) (bool, error) {
		got, err := c.Client.AppsV1().Deployments("default").Get(ctx, "roll", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		st := got.Status
		return got.Status.ObservedGeneration >= got.Generation && st.UpdatedReplicas == updated && st.AvailableReplicas == replicas && st.Replicas == replicas, nil
	}
	cluster.Eventually(t, 120*time.Second, "the first version is available", func() (bool, error) { return available(replicas) })
	cluster.Eventually(t, 60*time.Second, "the Service answers", func() (bool, error) {
		return dpclient.Once(t, spec).Err == "", nil
	})

	// One long-lived client process loops new connections through the VIP.
	client := dpclient.Start(t, spec)
	stop := make(chan struct{})
	type tally struct {
		ok, failed int
		errs       []string
		hosts      map[string]bool
	}
	done := make(chan tally, 1)
	tl := tally{hosts: map[string]bool{}}
	exchange := func() {
		r := client.Exchange(t)
		if r.Err != "" {
			tl.failed++
			if len(tl.errs) < 5 {
				tl.errs = append(tl.errs, r.Err)
			}
			return
		}
		tl.ok++
		if _, rest, ok := strings.Cut(r.Answer, "hostname="); ok {
			tl.hosts[strings.Fields(rest)[0]] = true
		}
	}
	// The loop has reached every old pod before the update starts: the
	// update can retire an old pod within 0.1 s of the patch, sooner than
	// a loop that is only starting would reach it.
	for i := 0; i < 10000 && len(tl.hosts) < int(replicas); i++ {
		exchange()
	}
	if len(tl.hosts) < int(replicas) {
		t.Fatalf("before the update %d requests reached %d pods, want all %d", tl.ok+tl.failed, len(tl.hosts), replicas)
	}
	go func() {
		for i := 0; i < 100000; i++ {
			select {
			case <-stop:
				done <- tl
				return
			default:
			}
			exchange()
		}
		done <- tl
	}()

	start := time.Now()
	patch := []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"echo","image":"weir.local/echo:v2"}]}}}}`)
	if _, err := c.Client.AppsV1().Deployments("default").Patch(ctx, "roll", types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 180*time.Second, "the rolling update completes", func() (bool, error) {
		if ok, err := available(replicas); !ok || err != nil {
			return false, err
		}
		pods, err := c.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=roll"})
		return err == nil && len(pods.Items) == int(replicas), err
	})
	took := time.Since(start)
	time.Sleep(time.Second) // requests against the final set too
	close(stop)
	tl = <-done
	t.Logf("rolling update of %d replicas took %s; %d requests, %d failed, answered by %d pods", replicas, took, tl.ok+tl.failed, tl.failed, len(tl.hosts))
	if tl.failed > 0 {
		t.Fatalf("%d of %d requests failed during the rolling update, e.g. %v", tl.failed, tl.ok+tl.failed, tl.errs)
	}
	if tl.ok < 50 || len(tl.hosts) < 2*int(replicas) {
		t.Fatalf("the loop did not span the update: %d requests answered by %d pods, want old and new (%d)", tl.ok, len(tl.hosts), 2*replicas)
	}
}

// BenchmarkDeployment100 measures issue 8's figures: a 100-replica
// Deployment from create to all available on weir up, and a full rolling
// update of it (go test -run X -bench Deployment100 ./test/e2e). It does
// one round whatever b.N is: each round takes minutes.
func BenchmarkDeployment100(t *testing.B) {
	c := up(t, 2, "--dataplane", "ebpf")
	ctx := t.Context()
	labels := map[string]string{"app": "big"}
	replicas := int32(100)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "big"},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "echo", Image: "weir.local/echo:v1", ImagePullPolicy: corev1.PullNever,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
						PeriodSeconds: 1, FailureThreshold: 1}}}}}},
	}
	available := func(updated int32) (bool, error) {
		got, err := c.Client.AppsV1().Deployments("default").Get(ctx, "big", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		st := got.Status
		return st.ObservedGeneration >= got.Generation && st.UpdatedReplicas == updated && st.AvailableReplicas == replicas && st.Replicas == replicas, nil
	}
	start := time.Now()
	if _, err := c.Client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 10*time.Minute, "100 replicas available", func() (bool, error) { return available(replicas) })
	created := time.Since(start)
	start = time.Now()
	patch := []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"echo","image":"weir.local/echo:v2"}]}}}}`)
	if _, err := c.Client.AppsV1().Deployments("default").Patch(ctx, "big", types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 10*time.Minute, "rolling update complete", func() (bool, error) {
		if ok, err := available(replicas); !ok || err != nil {
			return false, err
		}
		pods, err := c.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=big"})
		return err == nil && len(pods.Items) == int(replicas), err
	})
	rolled := time.Since(start)
	t.ReportMetric(created.Seconds(), "s-to-available")
	t.ReportMetric(rolled.Seconds(), "s-rolling-update")
	t.Logf("100-replica Deployment on weir up (2 nodes, eBPF): create → all available %s; full rolling update (25%%/25%%) %s", created.Round(time.Millisecond), rolled.Round(time.Millisecond))
}

// An agent killed with SIGKILL and started again keeps its node's pods
// running (same containers, same IPs), and the eBPF data plane, pinned in
// bpffs, keeps serving the Service throughout: no new connection fails and
// an established one survives.
func TestAgentKillAndRestart(t *testing.T) {
	c := up(t, 1, "--dataplane", "ebpf")
	ctx := t.Context()
	labels := map[string]string{"app": "steady"}
	replicas := int32(2)
	if _, err := c.Client.AppsV1().Deployments("default").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "steady"},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "echo", Image: "weir.local/echo:latest", ImagePullPolicy: corev1.PullNever,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "tcp", ContainerPort: 9000}}}}}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc, err := c.Client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "steady"},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
			{Name: "tcp", Port: 9000, TargetPort: intstr.FromString("tcp")}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node := c.NodePrefix + "1"
	// A pod that writes a line every 0.1 s: its log must go on, whole,
	// across the restart (the new agent re-attaches to its output).
	if _, err := c.Client.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "ticker"},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "t", Image: "weir.local/busybox", ImagePullPolicy: corev1.PullNever,
			Command: []string{"sh", "-c", `i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.1; done`}}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tickerLog := func() string {
		out, _, _ := c.run(t, "", weirBin, "logs", "ticker")
		return out
	}
	cg := filepath.Join("/sys/fs/cgroup/unified/weir", node)
	httpSpec := dpclient.Spec{Netns: c.NodeNetns(1), Proto: "tcp", Addr: net.JoinHostPort(svc.Spec.ClusterIP, "80"), Cgroup: cg, HTTPPath: "/"}
	cluster.Eventually(t, 120*time.Second, "the Service answers", func() (bool, error) {
		return dpclient.Once(t, httpSpec).Err == "", nil
	})
	type podState struct{ ip, container string }
	snapshot := func() map[string]podState {
		l, err := c.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=steady"})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]podState{}
		for _, p := range l.Items {
			id := ""
			if len(p.Status.ContainerStatuses) == 1 {
				id = p.Status.ContainerStatuses[0].ContainerID
			}
			out[p.Name] = podState{ip: p.Status.PodIP, container: id}
		}
		return out
	}
	// Every replica runs and has reported its address and container
	// (the Service answering needs only one).
	var before map[string]podState
	cluster.Eventually(t, 120*time.Second, "both replicas report an address and a container", func() (bool, error) {
		before = snapshot()
		if len(before) != int(replicas) {
			return false, nil
		}
		for _, s := range before {
			if s.ip == "" || s.container == "" {
				return false, nil
			}
		}
		return true, nil
	})

	// A long-lived connection and a loop of new ones through the VIP.
	held := dpclient.Start(t, dpclient.Spec{Netns: c.NodeNetns(1), Proto: "tcp", Addr: net.JoinHostPort(svc.Spec.ClusterIP, "9000"), Cgroup: cg})
	if r := held.Exchange(t); r.Err != "" {
		t.Fatalf("held connection: %s", r.Err)
	}
	loop := dpclient.Start(t, httpSpec)
	stop := make(chan struct{})
	failures := make(chan []string, 1)
	go func() {
		var errs []string
		n := 0
		for ; n < 100000; n++ {
			select {
			case <-stop:
				failures <- errs
				return
			default:
			}
			if r := loop.Exchange(t); r.Err != "" {
				errs = append(errs, r.Err)
			}
		}
		failures <- errs
	}()

	cluster.Eventually(t, 60*time.Second, "the ticker logs", func() (bool, error) { return lastTick(tickerLog()) > 0, nil })

	// Kill -9 the node's agent and start it again with the same command.
	lease, err := c.Client.CoordinationV1().Leases("kube-node-lease").Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pid, argv := agentProcess(t, c, node)
	atKill := lastTick(tickerLog())
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for syscall.Kill(pid, 0) == nil {
		time.Sleep(10 * time.Millisecond)
	}
	restarted := exec.Command(argv[0], argv[1:]...)
	logf, err := os.OpenFile(filepath.Join(c.DataDir, "nodes", node, "agent.log"), os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	restarted.Stdout, restarted.Stderr = logf, logf
	restarted.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := startInNetns(c.NodeNetns(1), restarted); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = restarted.Process.Kill(); _ = restarted.Wait(); logf.Close() })

	// The restarted agent is back once it renews the lease (it does at
	// start); the killed one cannot have.
	cluster.Eventually(t, 60*time.Second, "the restarted agent renews its lease", func() (bool, error) {
		l, err := c.Client.CoordinationV1().Leases("kube-node-lease").Get(ctx, node, metav1.GetOptions{})
		return err == nil && l.ResourceVersion != lease.ResourceVersion, err
	})
	time.Sleep(2 * time.Second)
	close(stop)
	if errs := <-failures; len(errs) > 0 {
		t.Fatalf("%d new connections failed across the agent restart, e.g. %v", len(errs), errs[:min(3, len(errs))])
	}
	if r := held.Exchange(t); r.Err != "" {
		t.Fatalf("the established connection did not survive the agent restart: %s", r.Err)
	}
	after := snapshot()
	for name, b := range before {
		if a := after[name]; a != b {
			t.Errorf("pod %s changed across the agent restart: %+v → %+v", name, b, a)
		}
	}
	// The ticker's log goes on past the restart with no tick missing.
	var log string
	cluster.Eventually(t, 60*time.Second, "the ticker's log goes on after the restart", func() (bool, error) {
		log = tickerLog()
		return lastTick(log) > atKill+30, nil
	})
	for i, l := range strings.Split(strings.TrimSuffix(log, "\n"), "\n") {
		if l != fmt.Sprintf("tick %d", i+1) {
			t.Fatalf("ticker log line %d is %q: output lost or repeated across the agent restart", i+1, l)
		}
	}
}

// agentProcess finds the agent of node in this cluster's data dir.
func agentProcess(t testing.TB, c *Cluster, node string) (int, []string) {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(argv) > 2 && argv[1] == "agent" && slices.Contains(argv, node) && slices.Contains(argv, filepath.Join(c.DataDir, "nodes", node)) {
			return pid, argv
		}
	}
	t.Fatalf("no agent process for node %s", node)
	return 0, nil
}

// startInNetns starts cmd from a thread inside the namespace, as weir up
// does, so it keeps the host's /sys.
func startInNetns(ns string, cmd *exec.Cmd) error {
	n := &simnode.Node{Netns: ns}
	return n.Start(cmd)
}

// Pods on two nodes reach each other by pod IP (routes between the nodes'
// pod CIDRs), and a ClusterIP Service reaches both from a pod through the
// eBPF data plane.
func TestPodsAcrossNodes(t *testing.T) {
	c := up(t, 2, "--dataplane", "ebpf")
	ctx := t.Context()
	var pods []*corev1.Pod
	for i := 1; i <= 2; i++ {
		p, err := c.Client.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i), Labels: map[string]string{"app": "across"}},
			Spec: corev1.PodSpec{NodeName: c.NodePrefix + strconv.Itoa(i), Containers: []corev1.Container{{
				Name: "echo", Image: "weir.local/echo:latest", ImagePullPolicy: corev1.PullNever,
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pods = append(pods, p)
	}
	svc, err := c.Client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "across"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "across"},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ips := map[string]string{}
	cluster.Eventually(t, 120*time.Second, "both pods run with an IP", func() (bool, error) {
		for _, p := range pods {
			got, err := c.Client.CoreV1().Pods("default").Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil || got.Status.Phase != corev1.PodRunning || got.Status.PodIP == "" {
				return false, err
			}
			ips[p.Name] = got.Status.PodIP
			p.UID = got.UID
		}
		return true, nil
	})
	// A client inside pod p1's network namespace (and node 1's cgroup).
	from := func(addr string) dpclient.Spec {
		return dpclient.Spec{Netns: "weirpod-" + string(pods[0].UID), Proto: "tcp", Addr: addr,
			Cgroup: filepath.Join("/sys/fs/cgroup/unified/weir", c.NodePrefix+"1")}
	}
	body, err := dpclient.HTTPGet(t, from(net.JoinHostPort(ips["p2"], "8080")), "/")
	if err != nil || !strings.Contains(body, "hostname=p2 ") || !strings.Contains(body, "client="+ips["p1"]+":") {
		t.Fatalf("p1 → p2 by pod IP across nodes: %q %v (want p2 answering and seeing p1's address %s)", body, err, ips["p1"])
	}
	seen := map[string]bool{}
	cluster.Eventually(t, 60*time.Second, "the ClusterIP reaches pods on both nodes from p1", func() (bool, error) {
		body, err := dpclient.HTTPGet(t, from(net.JoinHostPort(svc.Spec.ClusterIP, "80")), "/")
		if _, rest, ok := strings.Cut(body, "hostname="); ok {
			seen[strings.Fields(rest)[0]] = true
		}
		return seen["p1"] && seen["p2"], err
	})
}

// BenchmarkPodStartup100 measures pod startup latency on one node with
// the image present: from the client's Create call to a watch seeing the
// pod Running (the Kubernetes pod-startup SLI, image pulls excluded). Two
// loads: a burst of 100 pods created at once, which measures how fast the
// node drains a queue, and 100 pods paced at 10/s, the load the
// Kubernetes density test applies, which measures the latency of one pod
// on a busy node, and at 20/s, twice that. The watch starts before the
// first create.
func BenchmarkPodStartup100(b *testing.B) {
	for _, load := range []struct {
		name string
		gap  time.Duration
	}{{"burst", 0}, {"paced-10per-s", 100 * time.Millisecond}, {"paced-20per-s", 50 * time.Millisecond}} {
		b.Run(load.name, func(b *testing.B) { podStartup(b, 100, load.gap) })
	}
}

func podStartup(b *testing.B, n int, gap time.Duration) {
	c := up(b, 1, "--dataplane", "ebpf")
	ctx := b.Context()
	pods := c.Client.CoreV1().Pods("default")
	list, err := pods.List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	w, err := pods.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	var mu sync.Mutex
	start := map[string]time.Time{}
	created := make(chan error, 1)
	go func() {
		next := time.Now()
		for i := range n {
			name := fmt.Sprintf("s%03d", i)
			time.Sleep(time.Until(next))
			next = next.Add(gap)
			mu.Lock()
			start[name] = time.Now()
			mu.Unlock()
			if _, err := pods.Create(ctx, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "weir.local/busybox:latest",
					ImagePullPolicy: corev1.PullNever, Command: []string{"sleep", "3600"}}}},
			}, metav1.CreateOptions{}); err != nil {
				created <- err
				return
			}
		}
		created <- nil
	}()
	running := map[string]time.Duration{}
	deadline := time.After(5 * time.Minute)
	for len(running) < n {
		select {
		case err := <-created:
			if err != nil {
				b.Fatal(err)
			}
		case ev := <-w.ResultChan():
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || p.Status.Phase != corev1.PodRunning {
				continue
			}
			if _, done := running[p.Name]; !done {
				mu.Lock()
				running[p.Name] = time.Since(start[p.Name])
				mu.Unlock()
			}
		case <-deadline:
			b.Fatalf("only %d of %d pods Running after 5 min", len(running), n)
		}
	}
	var lat []time.Duration
	for _, d := range running {
		lat = append(lat, d)
	}
	slices.Sort(lat)
	pid, _ := agentProcess(b, c, c.NodePrefix+"1")
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	rss := ""
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			rss = strings.TrimSpace(strings.TrimPrefix(l, "VmRSS:"))
		}
	}
	names := slices.Collect(maps.Keys(running))
	slices.SortFunc(names, func(x, y string) int { return cmp.Compare(running[y], running[x]) })
	var slowest []string
	for _, name := range names[:min(5, n)] {
		slowest = append(slowest, name+"="+running[name].Round(time.Millisecond).String())
	}
	b.Logf("slowest: %s", strings.Join(slowest, " "))
	b.ReportMetric(lat[n/2].Seconds(), "s-p50")
	b.ReportMetric(lat[n*99/100].Seconds(), "s-p99")
	b.Logf("%d pods on one node (image present, one created every %v): create → Running p50 %s, p99 %s, max %s; agent RSS %s",
		n, gap, lat[n/2].Round(time.Millisecond), lat[n*99/100].Round(time.Millisecond), lat[n-1].Round(time.Millisecond), rss)
}
