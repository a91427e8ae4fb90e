package runtime

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"

	"weir.dev/weir/nodeagent/containerd/containerdtest"
	"weir.dev/weir/nodeagent/crilog"
	"weir.dev/weir/nodeagent/images"
	"weir.dev/weir/nodeagent/ipam"
	"weir.dev/weir/nodeagent/podnet"
	"weir.dev/weir/test/netns"
	"weir.dev/weir/test/topology"
)

// testNode is one node's runtime over a test's containerd: its own network
// namespace with the bridge, containerd namespace, cgroup parent and
// state directory.
type testNode struct {
	name   string
	netns  string
	cidr   netip.Prefix
	cfg    Config
	rt     *Runtime
	lookup fakeLookup
}

func newTestNode(t *testing.T, d *containerdtest.Daemon, cidr string) *testNode {
	t.Helper()
	ctx := t.Context()
	n := &testNode{name: topology.UniqueName(t, "rtn"), netns: netns.New(t, "wrn"), cidr: netip.MustParsePrefix(cidr),
		lookup: fakeLookup{cms: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}}
	dir := t.TempDir()
	n.cfg = Config{
		NodeName: n.name, NodeIP: netip.MustParseAddr("10.99.0.2"), Client: d.Client,
		StateDir: filepath.Join(dir, "pods"), NodeNetNS: "/run/netns/" + n.netns, Lookup: n.lookup,
		HostResolvConf: filepath.Join(dir, "resolv.conf"),
	}
	if err := os.WriteFile(n.cfg.HostResolvConf, []byte("nameserver 192.0.2.53\nsearch example.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n.cfg.Network = n.newNetwork(t, filepath.Join(dir, "ipam"))
	rt, err := New(n.cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.rt = rt
	if err := images.EnsureBusybox(ctx, d.Client, rt.Namespace()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.cleanup(t) })
	return n
}

func (n *testNode) newNetwork(t *testing.T, ipamDir string) *podnet.Network {
	t.Helper()
	alloc, err := ipam.New(ipamDir, n.cidr)
	if err != nil {
		t.Fatal(err)
	}
	nw, err := podnet.New(podnet.Config{NodeNetNS: "/run/netns/" + n.netns, Bridge: "weir0", NetNSPrefix: n.name + "-"}, alloc)
	if err != nil {
		t.Fatal(err)
	}
	if err := nw.EnsureBridge(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nw.Close() })
	return nw
}

// cleanup removes every pod the node holds and its cgroup parent.
func (n *testNode) cleanup(t *testing.T) {
	// t.Context is already cancelled when cleanups run.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pods, err := n.rt.ListPods(ctx)
	if err != nil {
		t.Logf("list pods: %v", err)
	}
	for _, p := range pods {
		if err := n.rt.RemovePod(ctx, p.UID); err != nil {
			t.Errorf("remove pod %s: %v", p.UID, err)
		}
	}
	if err := RemoveCgroup("/weir/" + n.name); err != nil {
		t.Errorf("remove node cgroup: %v", err)
	}
}

// busyboxPod is a one-container pod running script under sh -c, with
// restartPolicy Never unless a test sets another.
func busyboxPod(name string, script string) *corev1.Pod {
	zero := int64(0)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: uuid.NewUUID()},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: &zero,
			Containers:                    []corev1.Container{{Name: "main", Image: "busybox", Command: []string{"sh", "-c", script}}},
		},
	}
}

// syncUntil calls SyncPod, as the agent would on every event, until ok
// accepts the status.
func (n *testNode) syncUntil(t *testing.T, pod *corev1.Pod, timeout time.Duration, ok func(corev1.PodStatus) bool) corev1.PodStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		res, err := n.rt.SyncPod(t.Context(), pod)
		if err != nil {
			t.Fatalf("sync %s: %v", pod.Name, err)
		}
		st := res.Status
		pod.Status = st
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s: status not reached within %v: %s", pod.Name, timeout, describe(st))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func describe(st corev1.PodStatus) string {
	var b strings.Builder
	fmt.Fprintf(&b, "phase=%s ip=%s", st.Phase, st.PodIP)
	for _, cs := range append(append([]corev1.ContainerStatus(nil), st.InitContainerStatuses...), st.ContainerStatuses...) {
		fmt.Fprintf(&b, " [%s: %+v]", cs.Name, cs.State)
	}
	return b.String()
}

func phaseIs(p corev1.PodPhase) func(corev1.PodStatus) bool {
	return func(st corev1.PodStatus) bool { return st.Phase == p }
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// readLog reads a CRI log file back into the container's output.
func readLog(t *testing.T, path string) string {
	t.Helper()
	return string(crilog.Decode([]byte(readFile(t, path))))
}

func waitFile(t *testing.T, path string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within %v", path, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPodRuns runs a pod whose container reports its environment, its
// address and its files, and checks each against the spec: $(VAR)
// expansion, ConfigMap and Secret references, the downward API, workingDir,
// the four volume kinds, /etc files, cgroup limits under the node's parent
// in the v1 hierarchies and the unified tree, and the status.
func TestPodRuns(t *testing.T) {
	d := containerdtest.Start(t)
	n := newTestNode(t, d, "10.244.11.0/24")
	n.lookup.cms["default/cfg"] = &corev1.ConfigMap{Data: map[string]string{"color": "blue", "app.conf": "listen 8080\n"}}
	n.lookup.secrets["default/sec"] = &corev1.Secret{Data: map[string][]byte{"token": []byte("s3cret")}}
	hostDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(hostDir, "from-host"), []byte("host file\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	pod := busyboxPod("env-ip", `echo 'argv: $(GREETING) / $$(GREETING)'
ip -4 -o addr show eth0
ip route show default
env | sort > /data/env
pwd > /data/pwd
cat /etc/cfg/app.conf /etc/sec/token /host/from-host > /data/files
cat /etc/hosts > /data/hosts; cat /etc/resolv.conf > /data/resolv; hostname > /data/hostname
echo written > /host/from-pod
touch /data/done
exec sleep 1000`)
	pod.Spec.Hostname = "envhost"
	c := &pod.Spec.Containers[0]
	c.WorkingDir = "/work/dir"
	c.Env = []corev1.EnvVar{
		{Name: "NAME", Value: "weir"},
		{Name: "GREETING", Value: "hello $(NAME) from $(POD_IP)"}, // POD_IP is defined later: stays literal
		{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "COLOR", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "color"}}},
		{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}, Key: "token"}}},
		{Name: "MEM_MI", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
	}
	c.EnvFrom = []corev1.EnvFromSource{{Prefix: "CM_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}}
	c.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi"), corev1.ResourceCPU: resource.MustParse("250m")}
	c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "cfg", MountPath: "/etc/cfg"},
		{Name: "sec", MountPath: "/etc/sec"}, {Name: "host", MountPath: "/host"}}
	dirType := corev1.HostPathDirectory
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
		{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sec"}}},
		{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir, Type: &dirType}}},
	}

	start := time.Now()
	st := n.syncUntil(t, pod, 20*time.Second, phaseIs(corev1.PodRunning))
	t.Logf("pod running %v after SyncPod was first called", time.Since(start))
	ip := netip.MustParseAddr(st.PodIP)
	if !n.cidr.Contains(ip) || ip == n.cidr.Addr().Next() {
		t.Errorf("pod IP %s not a pod address of %s", ip, n.cidr)
	}
	cs := st.ContainerStatuses[0]
	if cs.State.Running == nil || !cs.Ready || cs.RestartCount != 0 || !strings.HasPrefix(cs.ContainerID, "containerd://") {
		t.Errorf("container status %+v", cs)
	}
	if st.HostIP != "10.99.0.2" || st.QOSClass != corev1.PodQOSGuaranteed {
		t.Errorf("hostIP %s qos %s", st.HostIP, st.QOSClass)
	}

	data := filepath.Join(n.rt.PodDir(pod.UID), "volumes", "empty-dir", "data")
	waitFile(t, filepath.Join(data, "done"), 10*time.Second)

	env := readFile(t, filepath.Join(data, "env"))
	for _, want := range []string{
		"NAME=weir", "GREETING=hello weir from $(POD_IP)", "POD_IP=" + ip.String(), "POD_NAME=env-ip",
		"COLOR=blue", "TOKEN=s3cret", "CM_color=blue", "MEM_MI=64", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	} {
		if !slices.Contains(strings.Split(env, "\n"), want) {
			t.Errorf("env lacks %q:\n%s", want, env)
		}
	}
	if got := readFile(t, filepath.Join(data, "pwd")); got != "/work/dir\n" {
		t.Errorf("pwd %q", got)
	}
	if got := readFile(t, filepath.Join(data, "files")); got != "listen 8080\ns3crethost file\n" {
		t.Errorf("volume files %q", got)
	}
	if got := readFile(t, filepath.Join(hostDir, "from-pod")); got != "written\n" {
		t.Errorf("hostPath write %q", got)
	}
	if got := readFile(t, filepath.Join(data, "hosts")); !strings.Contains(got, ip.String()+"\tenvhost\n") {
		t.Errorf("/etc/hosts:\n%s", got)
	}
	if got := readFile(t, filepath.Join(data, "resolv")); got != "nameserver 192.0.2.53\nsearch example.test\n" {
		t.Errorf("/etc/resolv.conf %q", got)
	}
	if got := readFile(t, filepath.Join(data, "hostname")); got != "envhost\n" {
		t.Errorf("hostname %q", got)
	}
	logs := readLog(t, n.rt.LogPath(pod.UID, "main", 0))
	for _, want := range []string{
		"argv: hello weir from $(POD_IP) / $(GREETING)",
		"inet " + ip.String() + "/24",
		"default via " + n.cidr.Addr().Next().String() + " dev eth0",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}

	// cgroup limits under /weir/<node>/pod<uid>/<id>, and the unified tree.
	id := ContainerID(pod.UID, "main", 0)
	cg := filepath.Join("weir", n.name, "pod"+string(pod.UID), id)
	for file, want := range map[string]string{
		"/sys/fs/cgroup/memory/" + cg + "/memory.limit_in_bytes": "67108864",
		"/sys/fs/cgroup/cpu/" + cg + "/cpu.cfs_quota_us":         "25000",
		"/sys/fs/cgroup/cpu/" + cg + "/cpu.shares":               "256",
	} {
		if got := strings.TrimSpace(readFile(t, file)); got != want {
			t.Errorf("%s = %s, want %s", file, got, want)
		}
	}
	if procs := readFile(t, "/sys/fs/cgroup/unified/"+cg+"/cgroup.procs"); strings.TrimSpace(procs) == "" {
		t.Errorf("no process in the unified cgroup %s", cg)
	}

	// Stop: sleep as PID 1 ignores SIGTERM; grace 0 means SIGKILL at once.
	if err := n.rt.KillPod(t.Context(), pod, 0); err != nil {
		t.Fatal(err)
	}
	st, err := n.rt.PodStatus(t.Context(), pod)
	if err != nil {
		t.Fatal(err)
	}
	term := st.ContainerStatuses[0].State.Terminated
	if term == nil || term.ExitCode != 137 || term.Reason != "Error" || term.Signal != 9 {
		t.Errorf("after KillPod: %s", describe(st))
	}
	if err := n.rt.RemovePod(t.Context(), pod.UID); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{n.rt.PodDir(pod.UID), "/sys/fs/cgroup/memory/weir/" + n.name + "/pod" + string(pod.UID),
		"/sys/fs/cgroup/unified/weir/" + n.name + "/pod" + string(pod.UID), n.cfg.Network.NetNSPath(string(pod.UID))} {
		if _, err := os.Stat(gone); !os.IsNotExist(err) {
			t.Errorf("%s still there after RemovePod (%v)", gone, err)
		}
	}
	if _, ok, _ := n.cfg.Network.Address(string(pod.UID)); ok {
		t.Errorf("address still reserved after RemovePod")
	}
	if ctrs, _ := d.Client.Containers(n.rt.ctx(t.Context())); len(ctrs) != 0 {
		t.Errorf("%d containers left after RemovePod", len(ctrs))
	}
}

// TestGracefulStop stops a container that ignores SIGTERM (busybox sleep
// as PID 1) and one that handles it.
func TestGracefulStop(t *testing.T) {
	d := containerdtest.Start(t)
	n := newTestNode(t, d, "10.244.12.0/24")
	tests := []struct {
		name         string
		script       string
		grace        time.Duration
		wantCode     int32
		minT, maxT   time.Duration
		wantInLogTag string
	}{
		{name: "ignores SIGTERM: killed after the grace period", script: "touch /tmp/ready; exec sleep 1000",
			grace: 2 * time.Second, wantCode: 137, minT: 2 * time.Second, maxT: 5 * time.Second},
		{name: "handles SIGTERM", script: `trap 'echo got TERM; exit 3' TERM; touch /tmp/ready; while true; do sleep 0.05; done`,
			grace: 10 * time.Second, wantCode: 3, minT: 0, maxT: 3 * time.Second, wantInLogTag: "got TERM"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := busyboxPod("stop", tc.script)
			n.syncUntil(t, pod, 20*time.Second, phaseIs(corev1.PodRunning))
			time.Sleep(300 * time.Millisecond) // let the shell install its trap
			start := time.Now()
			if err := n.rt.KillPod(t.Context(), pod, tc.grace); err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			st, err := n.rt.PodStatus(t.Context(), pod)
			if err != nil {
				t.Fatal(err)
			}
			term := st.ContainerStatuses[0].State.Terminated
			if term == nil || term.ExitCode != tc.wantCode {
				t.Fatalf("after KillPod: %s, want exit code %d", describe(st), tc.wantCode)
			}
			if took < tc.minT || took > tc.maxT {
				t.Errorf("stop took %v, want between %v and %v", took, tc.minT, tc.maxT)
			}
			t.Logf("stopped in %v with exit code %d", took, term.ExitCode)
			if tc.wantInLogTag != "" {
				if logs := readLog(t, n.rt.LogPath(pod.UID, "main", 0)); !strings.Contains(logs, tc.wantInLogTag) {
					t.Errorf("log %q lacks %q", logs, tc.wantInLogTag)
				}
			}
			// Nothing restarts a killed pod.
			if res, err := n.rt.SyncPod(t.Context(), pod); err != nil || res.Status.ContainerStatuses[0].State.Terminated == nil {
				t.Errorf("SyncPod after KillPod: %v %s", err, describe(res.Status))
			}
			if err := n.rt.RemovePod(t.Context(), pod.UID); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPodsReachEachOther runs a server pod and a client pod on one bridge:
// the client pings the server and fetches a page from it by pod IP.
func TestPodsReachEachOther(t *testing.T) {
	d := containerdtest.Start(t)
	n := newTestNode(t, d, "10.244.13.0/24")
	server := busyboxPod("server", "exec httpd -f -p 8080 -h /www")
	sst := n.syncUntil(t, server, 20*time.Second, phaseIs(corev1.PodRunning))

	// No wget -T: Debian's busybox-static 1.35 wget segfaults with it.
	client := busyboxPod("client", `ping -c 1 -W 2 $(SERVER) && wget -q -O - http://$(SERVER):8080/index.html && echo | nc -w 2 $SERVER 8080 >/dev/null && echo "nc: connected"`)
	client.Spec.RestartPolicy = corev1.RestartPolicyNever
	client.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "SERVER", Value: sst.PodIP}}
	cst := n.syncUntil(t, client, 30*time.Second, func(st corev1.PodStatus) bool {
		return st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed
	})
	logs := readLog(t, n.rt.LogPath(client.UID, "main", 0))
	if cst.Phase != corev1.PodSucceeded {
		t.Fatalf("client %s; log:\n%s", describe(cst), logs)
	}
	for _, want := range []string{"1 packets received", "hello from weir.local/busybox", "nc: connected"} {
		if !strings.Contains(logs, want) {
			t.Errorf("client log lacks %q:\n%s", want, logs)
		}
	}
	if cst.PodIP == sst.PodIP {
		t.Errorf("both pods have %s", cst.PodIP)
	}
	term := cst.ContainerStatuses[0].State.Terminated
	if term.Reason != "Completed" || term.FinishedAt.IsZero() || term.StartedAt.IsZero() {
		t.Errorf("client terminated state %+v", term)
	}
	for _, c := range cst.Conditions {
		if c.Type == corev1.PodReady && (c.Status != corev1.ConditionFalse || c.Reason != "PodCompleted") {
			t.Errorf("Ready condition of a succeeded pod: %+v", c)
		}
	}
}

// TestRestartAdopts plays an agent restart: a new Runtime over the same
// containerd namespace, state directory and IPAM directory finds the
// running pod, keeps its container and address, and gives the next pod a
// new address.
func TestRestartAdopts(t *testing.T) {
	d := containerdtest.Start(t)
	n := newTestNode(t, d, "10.244.14.0/24")
	pod := busyboxPod("adopt", "exec sleep 1000")
	st1 := n.syncUntil(t, pod, 20*time.Second, phaseIs(corev1.PodRunning))

	cfg := n.cfg
	cfg.Network = n.newNetwork(t, filepath.Join(filepath.Dir(n.cfg.StateDir), "ipam"))
	rt2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	fresh := pod.DeepCopy()
	fresh.Status = corev1.PodStatus{}
	st0, err := rt2.PodStatus(t.Context(), fresh)
	if err != nil {
		t.Fatal(err)
	}
	if st0.PodIP != st1.PodIP || st0.Phase != corev1.PodRunning {
		t.Errorf("status from a new runtime before any sync: %s, want running at %s", describe(st0), st1.PodIP)
	}
	res, err := rt2.SyncPod(t.Context(), fresh)
	if err != nil {
		t.Fatal(err)
	}
	st2 := res.Status
	c1, c2 := st1.ContainerStatuses[0], st2.ContainerStatuses[0]
	if st2.PodIP != st1.PodIP || c2.ContainerID != c1.ContainerID || c2.State.Running == nil ||
		!c2.State.Running.StartedAt.Equal(&c1.State.Running.StartedAt) || !st2.StartTime.Equal(st1.StartTime) {
		t.Errorf("after restart: %s (started %v), want %s (started %v)", describe(st2), c2.State.Running, describe(st1), c1.State.Running)
	}
	other := busyboxPod("other", "exec sleep 1000")
	res, err = rt2.SyncPod(t.Context(), other)
	if err != nil {
		t.Fatal(err)
	}
	st3 := res.Status
	if st3.PodIP == "" || st3.PodIP == st1.PodIP {
		t.Errorf("second pod IP %q, first %q", st3.PodIP, st1.PodIP)
	}
	n.rt = rt2 // cleanup through the runtime that knows both pods
}

// TestContainerProblems shows per-container problems in waiting and
// terminated states instead of failing the sync.
func TestContainerProblems(t *testing.T) {
	d := containerdtest.Start(t)
	n := newTestNode(t, d, "10.244.15.0/24")
	tests := []struct {
		name   string
		mutate func(*corev1.Pod)
		check  func(corev1.ContainerStatus) bool
	}{
		{"missing image", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "weir.local/nothing:v9" },
			func(cs corev1.ContainerStatus) bool {
				return cs.State.Waiting != nil && cs.State.Waiting.Reason == "ErrImagePull"
			}},
		{"missing image, pull never", func(p *corev1.Pod) {
			p.Spec.Containers[0].Image = "weir.local/nothing:v9"
			p.Spec.Containers[0].ImagePullPolicy = corev1.PullNever
		}, func(cs corev1.ContainerStatus) bool {
			return cs.State.Waiting != nil && cs.State.Waiting.Reason == "ErrImageNeverPull"
		}},
		{"missing configmap", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Key: "k"}}}}
		}, func(cs corev1.ContainerStatus) bool {
			return cs.State.Waiting != nil && cs.State.Waiting.Reason == "CreateContainerConfigError"
		}},
		{"command not found", func(p *corev1.Pod) { p.Spec.Containers[0].Command = []string{"/no/such/binary"} },
			func(cs corev1.ContainerStatus) bool {
				return cs.State.Terminated != nil && cs.State.Terminated.Reason == "StartError" && cs.State.Terminated.ExitCode == 128
			}},
		{"exit code and termination message", func(p *corev1.Pod) {
			p.Spec.Containers[0].Command = []string{"sh", "-c", "echo bye > /dev/termination-log; exit 7"}
			p.Spec.RestartPolicy = corev1.RestartPolicyNever
		}, func(cs corev1.ContainerStatus) bool {
			t := cs.State.Terminated
			return t != nil && t.ExitCode == 7 && t.Reason == "Error" && t.Message == "bye\n"
		}},
		{"out of memory", func(p *corev1.Pod) {
			c := &p.Spec.Containers[0]
			c.Command = []string{"sh", "-c", "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo ${#x}"}
			c.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("16Mi")}
			p.Spec.RestartPolicy = corev1.RestartPolicyNever
		}, func(cs corev1.ContainerStatus) bool {
			return cs.State.Terminated != nil && cs.State.Terminated.Reason == "OOMKilled"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := busyboxPod("problem", "exit 0")
			tc.mutate(pod)
			n.syncUntil(t, pod, 20*time.Second, func(st corev1.PodStatus) bool { return tc.check(st.ContainerStatuses[0]) })
			if err := n.rt.RemovePod(t.Context(), pod.UID); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestInitContainersInOrder runs two init containers and a main container
// that each append to a shared emptyDir, and watches exits through Watch.
func TestInitContainersInOrder(t *testing.T) {
	d := containerdtest.Start(t)
	n := newTestNode(t, d, "10.244.16.0/24")
	exits := make(chan types.UID, 16)
	go func() { _ = n.rt.Watch(t.Context(), func(uid types.UID) { exits <- uid }) }()
	time.Sleep(100 * time.Millisecond) // let the subscription start

	pod := busyboxPod("init", "echo main >> /data/order; exec sleep 1000")
	mk := func(name, word string) corev1.Container {
		return corev1.Container{Name: name, Image: "busybox", Command: []string{"sh", "-c", "sleep 0.2; echo " + word + " >> /data/order"},
			VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}
	}
	pod.Spec.InitContainers = []corev1.Container{mk("first", "one"), mk("second", "two")}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}}}

	res, err := n.rt.SyncPod(t.Context(), pod)
	if err != nil {
		t.Fatal(err)
	}
	st := res.Status
	if st.Phase != corev1.PodPending || st.InitContainerStatuses[0].State.Running == nil ||
		st.ContainerStatuses[0].State.Waiting == nil || st.ContainerStatuses[0].State.Waiting.Reason != "PodInitializing" {
		t.Errorf("first sync: %s", describe(st))
	}
	// Drive the pod by exit events, as the agent will.
	deadline := time.After(20 * time.Second)
	for st.Phase != corev1.PodRunning {
		select {
		case uid := <-exits:
			if uid != pod.UID {
				t.Errorf("exit event for %s", uid)
			}
		case <-deadline:
			t.Fatalf("pod did not run: %s", describe(st))
		}
		pod.Status = st
		if res, err = n.rt.SyncPod(t.Context(), pod); err != nil {
			t.Fatal(err)
		}
		st = res.Status
	}
	data := filepath.Join(n.rt.PodDir(pod.UID), "volumes", "empty-dir", "data")
	deadlineFile := time.Now().Add(5 * time.Second)
	for !strings.Contains(readFile(t, filepath.Join(data, "order")), "main") && time.Now().Before(deadlineFile) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := readFile(t, filepath.Join(data, "order")); got != "one\ntwo\nmain\n" {
		t.Errorf("order %q", got)
	}
	for _, ic := range st.InitContainerStatuses {
		if ic.State.Terminated == nil || ic.State.Terminated.Reason != "Completed" {
			t.Errorf("init %s: %+v", ic.Name, ic.State)
		}
	}
	for _, c := range st.Conditions {
		if c.Type == corev1.PodInitialized && c.Status != corev1.ConditionTrue {
			t.Errorf("Initialized %+v", c)
		}
	}
}

// TestPodStartLatency measures SyncPod → Running for pods started one
// after another with the image present (reported, not asserted).
func TestPodStartLatency(t *testing.T) {
	d := containerdtest.Start(t)
	n := newTestNode(t, d, "10.244.17.0/24")
	const pods = 10
	var took []time.Duration
	for i := range pods {
		pod := busyboxPod(fmt.Sprintf("lat-%d", i), "exec sleep 1000")
		start := time.Now()
		n.syncUntil(t, pod, 20*time.Second, phaseIs(corev1.PodRunning))
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	t.Logf("pod start (SyncPod until Running, image present, %d pods): p50 %v, p90 %v, max %v",
		pods, took[pods/2], took[pods*9/10], took[pods-1])
	start := time.Now()
	pods2, err := n.rt.ListPods(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods2 {
		if err := n.rt.RemovePod(t.Context(), p.UID); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("removed %d running pods in %v", len(pods2), time.Since(start))
}

// TestHostNetwork runs a hostNetwork pod: it shares the node's network
// namespace (it sees the node bridge) and reports the node's address.
func TestHostNetwork(t *testing.T) {
	d := containerdtest.Start(t)
	n := newTestNode(t, d, "10.244.18.0/24")
	pod := busyboxPod("hostnet", "ip -o link show weir0 && hostname")
	pod.Spec.HostNetwork = true
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	st := n.syncUntil(t, pod, 20*time.Second, func(st corev1.PodStatus) bool {
		return st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed
	})
	logs := readLog(t, n.rt.LogPath(pod.UID, "main", 0))
	if st.Phase != corev1.PodSucceeded || !strings.Contains(logs, "weir0") || !strings.Contains(logs, n.name) {
		t.Errorf("hostNetwork pod: %s; log:\n%s", describe(st), logs)
	}
	if st.PodIP != n.cfg.NodeIP.String() {
		t.Errorf("pod IP %s, want the node's %s", st.PodIP, n.cfg.NodeIP)
	}
	if _, ok, _ := n.cfg.Network.Address(string(pod.UID)); ok {
		t.Errorf("a hostNetwork pod holds a pod address")
	}
}

// TestRestartPolicy restarts exited containers as restartPolicy says,
// with the back-off sequence (at once, 10 s, 20 s …) driven by a clock
// the test moves forward, and prunes attempts older than the previous one.
func TestRestartPolicy(t *testing.T) {
	d := containerdtest.Start(t)
	n := newTestNode(t, d, "10.244.19.0/24")
	var offset atomic.Int64
	n.rt.cfg.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }

	exited := func(st corev1.PodStatus) bool {
		s := st.ContainerStatuses[0].State
		return s.Terminated != nil || (s.Waiting != nil && s.Waiting.Reason == "CrashLoopBackOff")
	}
	t.Run("always: restart at once, then back off 10 s, 20 s", func(t *testing.T) {
		pod := busyboxPod("crash", "echo attempt; exit 1")
		pod.Spec.RestartPolicy = corev1.RestartPolicyAlways
		st := n.syncUntil(t, pod, 20*time.Second, func(st corev1.PodStatus) bool {
			return st.ContainerStatuses[0].RestartCount == 1 && exited(st)
		})
		res, err := n.rt.SyncPod(t.Context(), pod)
		if err != nil {
			t.Fatal(err)
		}
		st = res.Status
		cs := st.ContainerStatuses[0]
		if cs.State.Waiting == nil || cs.State.Waiting.Reason != "CrashLoopBackOff" || !strings.Contains(cs.State.Waiting.Message, "back-off 10s") {
			t.Fatalf("after the second exit: %s", describe(st))
		}
		if lt := cs.LastTerminationState.Terminated; lt == nil || lt.ExitCode != 1 {
			t.Errorf("last termination %+v", cs.LastTerminationState)
		}
		if res.RequeueAfter <= 0 || res.RequeueAfter > 10*time.Second || st.Phase != corev1.PodRunning {
			t.Errorf("requeue after %v, phase %s", res.RequeueAfter, st.Phase)
		}
		offset.Add(int64(10 * time.Second))
		n.syncUntil(t, pod, 20*time.Second, func(st corev1.PodStatus) bool {
			return st.ContainerStatuses[0].RestartCount == 2 && exited(st)
		})
		res, err = n.rt.SyncPod(t.Context(), pod)
		if err != nil {
			t.Fatal(err)
		}
		if w := res.Status.ContainerStatuses[0].State.Waiting; w == nil || !strings.Contains(w.Message, "back-off 20s") {
			t.Errorf("after the third exit: %s", describe(res.Status))
		}
		ctrs, err := d.Client.Containers(n.rt.ctx(t.Context()), fmt.Sprintf(`labels.%q==%q`, LabelPodUID, string(pod.UID)))
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range ctrs {
			ids = append(ids, c.ID())
		}
		slices.Sort(ids)
		want := []string{ContainerID(pod.UID, "main", 1), ContainerID(pod.UID, "main", 2)}
		if !slices.Equal(ids, want) {
			t.Errorf("containers %v, want the last two attempts %v", ids, want)
		}
	})
	t.Run("on failure: a success is final", func(t *testing.T) {
		pod := busyboxPod("ok", "exit 0")
		pod.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		st := n.syncUntil(t, pod, 20*time.Second, phaseIs(corev1.PodSucceeded))
		if st.ContainerStatuses[0].RestartCount != 0 {
			t.Errorf("restarted: %s", describe(st))
		}
	})
	t.Run("never: a failure is final", func(t *testing.T) {
		pod := busyboxPod("fail", "exit 2")
		st := n.syncUntil(t, pod, 20*time.Second, phaseIs(corev1.PodFailed))
		if c := st.ContainerStatuses[0]; c.RestartCount != 0 || c.State.Terminated.ExitCode != 2 {
			t.Errorf("status %s", describe(st))
		}
	})
	t.Run("on failure: a failed init container is retried", func(t *testing.T) {
		pod := busyboxPod("initretry", "exec sleep 1000")
		pod.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		pod.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox",
			Command:      []string{"sh", "-c", "test -e /data/second || { touch /data/second; exit 1; }"},
			VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}}
		pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		st := n.syncUntil(t, pod, 20*time.Second, phaseIs(corev1.PodRunning))
		if ic := st.InitContainerStatuses[0]; ic.RestartCount != 1 || ic.State.Terminated == nil || ic.State.Terminated.ExitCode != 0 {
			t.Errorf("init container %+v", ic)
		}
	})
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		streak     string
		ran        time.Duration
		wantDelay  time.Duration
		wantStreak int
	}{
		{"0", time.Second, 0, 1},
		{"1", time.Second, 10 * time.Second, 2},
		{"2", time.Second, 20 * time.Second, 3},
		{"5", time.Second, 160 * time.Second, 6},
		{"6", time.Second, 300 * time.Second, 7},
		{"40", time.Second, 300 * time.Second, 41},
		{"7", 10 * time.Minute, 0, 0},
	}
	for _, tc := range tests {
		start := time.Unix(1000, 0)
		term := &corev1.ContainerStateTerminated{StartedAt: metav1.NewTime(start), FinishedAt: metav1.NewTime(start.Add(tc.ran))}
		d, s := backoff(&record{labels: map[string]string{labelStreak: tc.streak}}, term)
		if d != tc.wantDelay || s != tc.wantStreak {
			t.Errorf("streak %s ran %v: delay %v streak %d, want %v %d", tc.streak, tc.ran, d, s, tc.wantDelay, tc.wantStreak)
		}
	}
}
