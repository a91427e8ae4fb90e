package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"weir.dev/weir/nodeagent/containerd/containerdtest"
	"weir.dev/weir/nodeagent/images"
	"weir.dev/weir/nodeagent/ipam"
	"weir.dev/weir/nodeagent/podnet"
	"weir.dev/weir/nodeagent/runtime"
	"weir.dev/weir/test/cluster"
	"weir.dev/weir/test/netns"
	"weir.dev/weir/test/topology"
)

// testAgent is the agent's pod loop, probes and event recorder, in
// process, over an in-process API server and a private containerd, with
// pods networked in a node namespace of the test's own.
type testAgent struct {
	c    kubernetes.Interface
	node string
	loop *podLoop
}

func startTestAgent(t *testing.T, cidr string) *testAgent {
	t.Helper()
	return startTestAgentWorkers(t, cidr, 8)
}

// startTestAgentWorkers starts a test agent whose pod loop has workers
// workers.
func startTestAgentWorkers(t *testing.T, cidr string, workers int) *testAgent {
	t.Helper()
	srv := cluster.Start(t, cluster.WithLoops(cluster.APILoops()))
	c := srv.Client(t)
	d := containerdtest.Start(t)
	a := &testAgent{c: c, node: topology.UniqueName(t, "agn")}
	ns := netns.New(t, "wag")
	dir := t.TempDir()
	alloc, err := ipam.New(filepath.Join(dir, "ipam"), netip.MustParsePrefix(cidr))
	if err != nil {
		t.Fatal(err)
	}
	nw, err := podnet.New(podnet.Config{NodeNetNS: "/run/netns/" + ns, Bridge: "weir0", NetNSPrefix: a.node + "-"}, alloc)
	if err != nil {
		t.Fatal(err)
	}
	if err := nw.EnsureBridge(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nw.Close() })
	resolv := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 192.0.2.53\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("WEIR_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	// Probes and hooks reach pod addresses from the node's namespace, as
	// an agent running in it does.
	dial := netns.Dialer(ns)
	a.loop = newPodLoop(c, a.node, log, dial)
	rcfg := runtime.Config{NodeName: a.node, NodeIP: netip.MustParseAddr("10.99.0.2"), Client: d.Client,
		StateDir: filepath.Join(dir, "pods"), Network: nw, NodeNetNS: "/run/netns/" + ns,
		Lookup: runtime.ClientLookup{Client: c}, HostResolvConf: resolv, Logger: log}
	a.loop.runtimeHooks(&rcfg, dial)
	rt, err := runtime.New(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := images.EnsureBusybox(t.Context(), d.Client, rt.Namespace()); err != nil {
		t.Fatal(err)
	}
	a.loop.rt, a.loop.nw = rt, nw
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.loop.Run(ctx, workers); err != nil {
			t.Errorf("pod loop: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		refs, err := rt.ListPods(cctx)
		if err != nil {
			t.Errorf("list pods: %v", err)
		}
		for _, r := range refs {
			if err := rt.RemovePod(cctx, r.UID); err != nil {
				t.Errorf("remove pod %s: %v", r.Name, err)
			}
		}
		if err := runtime.RemoveCgroup("/weir/" + a.node); err != nil {
			t.Errorf("remove node cgroup: %v", err)
		}
	})
	return a
}

// pod is a busybox pod on the test node running script, with grace 1 s.
func (a *testAgent) pod(name, script string, policy corev1.RestartPolicy) *corev1.Pod {
	one := int64(1)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{NodeName: a.node, RestartPolicy: policy, TerminationGracePeriodSeconds: &one,
			Containers: []corev1.Container{{Name: "main", Image: "busybox", ImagePullPolicy: corev1.PullNever,
				Command: []string{"sh", "-c", script}}}},
	}
}

func (a *testAgent) create(t *testing.T, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	out, err := a.c.CoreV1().Pods(pod.Namespace).Create(t.Context(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s: %v", pod.Name, err)
	}
	return out
}

// wait polls pod name until ok accepts it, and returns it.
func (a *testAgent) wait(t *testing.T, name string, timeout time.Duration, what string, ok func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last *corev1.Pod
	for {
		p, err := a.c.CoreV1().Pods("default").Get(t.Context(), name, metav1.GetOptions{})
		if err == nil {
			last = p
			if ok(p) {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s: %s not within %v (last error %v); status:\n%s\nevents:\n%s", name, what, timeout, err,
				describe(last), strings.Join(a.events(t, last), "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func describe(p *corev1.Pod) string {
	if p == nil {
		return "<none>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "phase=%s", p.Status.Phase)
	for _, c := range p.Status.Conditions {
		fmt.Fprintf(&b, " %s=%s", c.Type, c.Status)
	}
	for _, cs := range p.Status.ContainerStatuses {
		fmt.Fprintf(&b, " [%s ready=%v restarts=%d %s state=%+v last=%+v]", cs.Name, cs.Ready, cs.RestartCount, cs.ContainerID,
			cs.State, cs.LastTerminationState)
	}
	return b.String()
}

// events returns the events about pod (by UID), oldest first, as
// "Type Reason: message" lines.
func (a *testAgent) events(t *testing.T, pod *corev1.Pod) []string {
	t.Helper()
	if pod == nil {
		return nil
	}
	l, err := a.c.CoreV1().Events(pod.Namespace).List(context.WithoutCancel(t.Context()), metav1.ListOptions{})
	if err != nil {
		t.Errorf("list events: %v", err)
		return nil
	}
	evs := l.Items
	// Names are <pod>.<hex nanoseconds> of the first occurrence.
	created := func(e corev1.Event) int64 {
		n, _ := strconv.ParseInt(e.Name[strings.LastIndex(e.Name, ".")+1:], 16, 64)
		return n
	}
	slices.SortFunc(evs, func(x, y corev1.Event) int { return int(min(max(created(x)-created(y), -1), 1)) })
	var out []string
	for _, e := range evs {
		if e.InvolvedObject.UID == pod.UID {
			out = append(out, fmt.Sprintf("%s %s: %s", e.Type, e.Reason, e.Message))
		}
	}
	return out
}

// eventIndex is the position of the first event with reason whose
// message contains substr, or -1.
func eventIndex(evs []string, reason, substr string) int {
	for i, e := range evs {
		if _, rest, ok := strings.Cut(e, " "+reason+": "); ok && strings.Contains(rest, substr) {
			return i
		}
	}
	return -1
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func readyCondition(p *corev1.Pod) corev1.PodCondition {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c
		}
	}
	return corev1.PodCondition{}
}

func main0(p *corev1.Pod) corev1.ContainerStatus {
	if len(p.Status.ContainerStatuses) == 0 {
		return corev1.ContainerStatus{}
	}
	return p.Status.ContainerStatuses[0]
}

// TestPodLifecycle runs pods through the agent's pod loop against the API
// and checks what the API shows: probes (exec, httpGet, tcpSocket;
// liveness, readiness, startup), restart policies with their back-off,
// hooks and graceful deletion, and the events of each. The pods run in
// parallel; the longest case (a liveness probe that starts failing after
// 30 s) sets the test's duration.
func TestPodLifecycle(t *testing.T) {
	a := startTestAgent(t, "10.244.31.0/24")

	t.Run("liveness exec failing after 30 s restarts the container", func(t *testing.T) {
		t.Parallel()
		// The Kubernetes documentation's example.
		pod := a.pod("liveness-exec", "touch /tmp/healthy; sleep 30; rm -f /tmp/healthy; exec sleep 600", corev1.RestartPolicyAlways)
		c := &pod.Spec.Containers[0]
		c.LivenessProbe = &corev1.Probe{
			ProbeHandler:        corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/healthy"}}},
			InitialDelaySeconds: 5, PeriodSeconds: 2, FailureThreshold: 1}
		// The kill for a failed liveness probe runs preStop first.
		host := t.TempDir()
		pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: host}}}}
		c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
			Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo prestop >> /data/prestop"}}}}
		pod = a.create(t, pod)
		p := a.wait(t, pod.Name, 3*time.Minute, "restarted and running again", func(p *corev1.Pod) bool {
			cs := main0(p)
			return cs.RestartCount >= 1 && cs.State.Running != nil
		})
		last := main0(p).LastTerminationState.Terminated
		if last == nil || last.ExitCode != 137 {
			t.Fatalf("last termination %+v, want killed (137)", main0(p).LastTerminationState)
		}
		if ran := last.FinishedAt.Sub(last.StartedAt.Time); ran < 29*time.Second {
			t.Errorf("the first attempt ran %v: killed before its probe could fail", ran)
		}
		if got, _ := os.ReadFile(filepath.Join(host, "prestop")); string(got) != "prestop\n" {
			t.Errorf("preStop marker %q, want one run before the kill", got)
		}
		evs := a.events(t, p)
		unhealthy := eventIndex(evs, "Unhealthy", "Liveness probe failed: cat: can't open '/tmp/healthy': No such file or directory")
		killing := eventIndex(evs, "Killing", "Container main failed liveness probe, will be restarted")
		if unhealthy < 0 || killing < 0 || unhealthy > killing {
			t.Errorf("want Unhealthy then Killing, events:\n%s", strings.Join(evs, "\n"))
		}
	})

	t.Run("liveness failure kills with the probe's terminationGracePeriodSeconds", func(t *testing.T) {
		t.Parallel()
		// sleep as PID 1 ignores SIGTERM: only SIGKILL after the grace
		// period stops it, 1 s (the probe's) rather than 120 s (the pod's).
		pod := a.pod("liveness-grace", "exec sleep 1000", corev1.RestartPolicyAlways)
		long, one := int64(120), int64(1)
		pod.Spec.TerminationGracePeriodSeconds = &long
		pod.Spec.Containers[0].LivenessProbe = &corev1.Probe{
			ProbeHandler:        corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-e", "/nonexistent"}}},
			InitialDelaySeconds: 1, PeriodSeconds: 1, FailureThreshold: 1,
			TerminationGracePeriodSeconds: &one}
		pod = a.create(t, pod)
		// Well within the pod's grace period: the kill used the probe's.
		p := a.wait(t, pod.Name, time.Minute, "restarted", func(p *corev1.Pod) bool { return main0(p).RestartCount >= 1 })
		last := main0(p).LastTerminationState.Terminated
		if last == nil || last.ExitCode != 137 {
			t.Fatalf("last termination %+v, want killed (137)", main0(p).LastTerminationState)
		}
		if ran := last.FinishedAt.Sub(last.StartedAt.Time); ran > time.Minute {
			t.Errorf("the first attempt ran %v, longer than the probe's 1 s grace allows", ran)
		}
	})

	t.Run("readiness httpGet failing makes the pod 0/1 ready, container kept", func(t *testing.T) {
		t.Parallel()
		pod := a.pod("readiness-http", "mkdir -p /www && echo ok > /www/ready && exec httpd -f -p 8080 -h /www", corev1.RestartPolicyAlways)
		pod.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt(8080)}},
			PeriodSeconds: 1, FailureThreshold: 1}
		pod = a.create(t, pod)
		p := a.wait(t, pod.Name, time.Minute, "ready", podReady)
		id := main0(p).ContainerID
		if _, code, err := a.loop.rt.ExecSync(t.Context(), p, "main", []string{"rm", "/www/ready"}, 10*time.Second); err != nil || code != 0 {
			t.Fatalf("rm /www/ready: %d %v", code, err)
		}
		p = a.wait(t, pod.Name, time.Minute, "0/1 ready", func(p *corev1.Pod) bool {
			return !podReady(p) && !main0(p).Ready
		})
		if cs := main0(p); cs.State.Running == nil || cs.ContainerID != id || cs.RestartCount != 0 || p.Status.Phase != corev1.PodRunning {
			t.Errorf("unready pod: %s, want the same container %s running", describe(p), id)
		}
		if evs := a.events(t, p); eventIndex(evs, "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 404") < 0 ||
			eventIndex(evs, "Killing", "") >= 0 {
			t.Errorf("events:\n%s", strings.Join(evs, "\n"))
		}
		if _, code, err := a.loop.rt.ExecSync(t.Context(), p, "main", []string{"touch", "/www/ready"}, 10*time.Second); err != nil || code != 0 {
			t.Fatalf("touch /www/ready: %d %v", code, err)
		}
		p = a.wait(t, pod.Name, time.Minute, "ready again", podReady)
		if main0(p).ContainerID != id {
			t.Errorf("container replaced: %s", describe(p))
		}
	})

	t.Run("startup tcpSocket holds liveness and readiness back", func(t *testing.T) {
		t.Parallel()
		// The server comes up after 8 s. Without the startup probe the
		// liveness probe would kill the container after 1 s and the exec
		// readiness probe would pass at once.
		pod := a.pod("startup-tcp", "mkdir -p /www && echo ok > /www/index.html && sleep 8 && exec httpd -f -p 8080 -h /www", corev1.RestartPolicyAlways)
		c := &pod.Spec.Containers[0]
		c.StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(8080)}},
			PeriodSeconds: 1, FailureThreshold: 60}
		c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt(8080)}},
			PeriodSeconds: 1, FailureThreshold: 1}
		c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}},
			PeriodSeconds: 1, FailureThreshold: 1}
		pod = a.create(t, pod)
		a.wait(t, pod.Name, time.Minute, "running, not started", func(p *corev1.Pod) bool {
			cs := main0(p)
			if podReady(p) || cs.Ready {
				t.Fatalf("ready before the startup probe passed: %s", describe(p))
			}
			return cs.State.Running != nil && cs.Started != nil && !*cs.Started
		})
		p := a.wait(t, pod.Name, 2*time.Minute, "ready", podReady)
		cs := main0(p)
		if cs.Started == nil || !*cs.Started {
			t.Errorf("ready but not started: %s", describe(p))
		}
		if cs.RestartCount != 0 || cs.State.Running == nil {
			t.Fatalf("restarted before startup succeeded: %s", describe(p))
		}
		// Times in the API have whole seconds.
		if d := readyCondition(p).LastTransitionTime.Sub(cs.State.Running.StartedAt.Time); d < 7*time.Second {
			t.Errorf("ready %v after the start, before the startup probe could pass", d)
		}
		evs := a.events(t, p)
		if eventIndex(evs, "Unhealthy", "Startup probe failed: dial tcp") < 0 || eventIndex(evs, "Unhealthy", "Liveness probe failed") >= 0 ||
			eventIndex(evs, "Killing", "") >= 0 {
			t.Errorf("events:\n%s", strings.Join(evs, "\n"))
		}
	})

	t.Run("restartPolicy OnFailure restarts with growing back-off", func(t *testing.T) {
		t.Parallel()
		// Each attempt notes when it started (the host's uptime, which a
		// container sees too, in hundredths of seconds) and fails at once.
		host := t.TempDir()
		pod := a.pod("onfailure", "cut -d' ' -f1 /proc/uptime >> /data/starts; exit 1", corev1.RestartPolicyOnFailure)
		pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: host}}}}
		pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		pod = a.create(t, pod)
		var waitMsgs []string
		a.wait(t, pod.Name, 3*time.Minute, "three restarts", func(p *corev1.Pod) bool {
			cs := main0(p)
			if w := cs.State.Waiting; w != nil && w.Reason == "CrashLoopBackOff" && !slices.Contains(waitMsgs, w.Message) {
				waitMsgs = append(waitMsgs, w.Message)
			}
			if p.Status.Phase != corev1.PodRunning && p.Status.Phase != corev1.PodPending {
				t.Fatalf("phase %s while restarting: %s", p.Status.Phase, describe(p))
			}
			return cs.RestartCount >= 3 && cs.State.Waiting != nil
		})
		b, _ := os.ReadFile(filepath.Join(host, "starts"))
		var starts []float64
		for _, f := range strings.Fields(string(b)) {
			v, err := strconv.ParseFloat(f, 64)
			if err != nil {
				t.Fatalf("starts %q: %v", b, err)
			}
			starts = append(starts, v)
		}
		if len(starts) < 4 {
			t.Fatalf("%d attempts noted their start (%q), want 4", len(starts), b)
		}
		var gaps []time.Duration
		for i := 1; i < 4; i++ {
			gaps = append(gaps, time.Duration((starts[i]-starts[i-1])*float64(time.Second)).Round(10*time.Millisecond))
		}
		t.Logf("gaps between attempts: %v", gaps)
		// At once, then 10 s, then 20 s after the previous exit.
		if gaps[1] < 10*time.Second || gaps[2] < 20*time.Second || gaps[2] <= gaps[1] || gaps[1] <= gaps[0] {
			t.Errorf("gaps between attempts %v, want growing: at once, ≥10 s, ≥20 s", gaps)
		}
		joined := strings.Join(waitMsgs, "\n")
		if !strings.Contains(joined, "back-off 10s restarting failed container=main") || !strings.Contains(joined, "back-off 20s") {
			t.Errorf("CrashLoopBackOff messages seen:\n%s", joined)
		}
		if evs := a.events(t, pod); eventIndex(evs, "BackOff", "Back-off restarting failed container main") < 0 {
			t.Errorf("events:\n%s", strings.Join(evs, "\n"))
		}
	})

	t.Run("restartPolicy Never leaves a failed container Failed", func(t *testing.T) {
		t.Parallel()
		pod := a.create(t, a.pod("never", "echo bye; exit 3", corev1.RestartPolicyNever))
		p := a.wait(t, pod.Name, time.Minute, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
		// It stays so: nothing restarts it at the next syncs.
		time.Sleep(3 * time.Second)
		p = a.wait(t, pod.Name, time.Minute, "still Failed", func(p *corev1.Pod) bool { return true })
		cs := main0(p)
		if p.Status.Phase != corev1.PodFailed || cs.RestartCount != 0 || cs.State.Terminated == nil ||
			cs.State.Terminated.ExitCode != 3 || cs.State.Terminated.Reason != "Error" {
			t.Errorf("status %s", describe(p))
		}
	})

	t.Run("restartPolicy Always restarts a container that exits 0", func(t *testing.T) {
		t.Parallel()
		pod := a.create(t, a.pod("always", "echo done; exit 0", corev1.RestartPolicyAlways))
		p := a.wait(t, pod.Name, 2*time.Minute, "restarted twice", func(p *corev1.Pod) bool { return main0(p).RestartCount >= 2 })
		last := main0(p).LastTerminationState.Terminated
		if last == nil || last.ExitCode != 0 || last.Reason != "Completed" || p.Status.Phase != corev1.PodRunning {
			t.Errorf("status %s", describe(p))
		}
	})

	t.Run("failing postStart: FailedPostStartHook, container killed", func(t *testing.T) {
		t.Parallel()
		pod := a.pod("poststart-fail", "exec sleep 1000", corev1.RestartPolicyNever)
		pod.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{
			Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo nope; exit 3"}}}}
		pod = a.create(t, pod)
		p := a.wait(t, pod.Name, time.Minute, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
		evs := a.events(t, p)
		hook, killing := eventIndex(evs, "FailedPostStartHook", "exited with 3: nope"), eventIndex(evs, "Killing", "FailedPostStartHook")
		if hook < 0 || killing < hook {
			t.Errorf("events:\n%s", strings.Join(evs, "\n"))
		}
	})

	t.Run("deletion: preStop, then the SIGTERM handler, then the pod is gone", func(t *testing.T) {
		t.Parallel()
		host := t.TempDir()
		pod := a.pod("graceful", `trap 'echo term >> /data/order; exit 0' TERM; touch /data/ready; while true; do sleep 0.05; done`,
			corev1.RestartPolicyAlways)
		thirty := int64(30)
		pod.Spec.TerminationGracePeriodSeconds = &thirty
		pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: host}}}}
		c := &pod.Spec.Containers[0]
		c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
			Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo prestop >> /data/order; sleep 1"}}}}
		pod = a.create(t, pod)
		a.wait(t, pod.Name, time.Minute, "running", func(p *corev1.Pod) bool { return main0(p).State.Running != nil })
		deadline := time.Now().Add(10 * time.Second)
		for _, err := os.Stat(filepath.Join(host, "ready")); err != nil; _, err = os.Stat(filepath.Join(host, "ready")) {
			if time.Now().After(deadline) {
				t.Fatal("the container did not start its loop")
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		if err := a.c.CoreV1().Pods("default").Delete(t.Context(), pod.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		a.waitGone(t, pod, time.Minute)
		if got, _ := os.ReadFile(filepath.Join(host, "order")); string(got) != "prestop\nterm\n" {
			t.Errorf("order %q, want preStop first, then the SIGTERM handler", got)
		}
		if evs := a.events(t, pod); eventIndex(evs, "Killing", "Stopping container main") < 0 {
			t.Errorf("events:\n%s", strings.Join(evs, "\n"))
		}
	})

	t.Run("deletion: SIGTERM ignored, killed after the grace period", func(t *testing.T) {
		t.Parallel()
		pod := a.create(t, a.pod("stubborn", "exec sleep 1000", corev1.RestartPolicyAlways))
		a.wait(t, pod.Name, time.Minute, "running", func(p *corev1.Pod) bool { return main0(p).State.Running != nil })
		grace := int64(3)
		start := time.Now()
		if err := a.c.CoreV1().Pods("default").Delete(t.Context(), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
			t.Fatal(err)
		}
		a.waitGone(t, pod, time.Minute)
		took := time.Since(start)
		t.Logf("pod gone %v after the delete (grace 3 s)", took)
		if took < 3*time.Second {
			t.Errorf("gone after %v, before the grace period ended", took)
		}
	})
}

func (a *testAgent) waitGone(t *testing.T, pod *corev1.Pod, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		_, err := a.c.CoreV1().Pods(pod.Namespace).Get(t.Context(), pod.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s still there %v after its deletion (%v)", pod.Name, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTerminationsDoNotHoldUpTheNode: pods whose containers ignore
// SIGTERM take their whole grace period to stop; on a pod loop of one
// worker, three of them being deleted hold up neither a new pod's start
// nor each other's stops (each gets its SIGTERM at once, not after the
// one before is gone), as on a kubelet, whose pods each have a worker.
func TestTerminationsDoNotHoldUpTheNode(t *testing.T) {
	a := startTestAgentWorkers(t, "10.244.61.0/24", 1)
	const grace = 10
	var stubborn []*corev1.Pod
	for i := range 3 {
		p := a.pod(fmt.Sprintf("stubborn-%d", i), "exec sleep 1000", corev1.RestartPolicyAlways)
		g := int64(grace)
		p.Spec.TerminationGracePeriodSeconds = &g
		stubborn = append(stubborn, a.create(t, p))
	}
	for _, p := range stubborn {
		a.wait(t, p.Name, time.Minute, "running", func(p *corev1.Pod) bool { return main0(p).State.Running != nil })
	}
	for _, p := range stubborn {
		if err := a.c.CoreV1().Pods("default").Delete(t.Context(), p.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	fresh := a.create(t, a.pod("fresh", "exec sleep 1000", corev1.RestartPolicyAlways))
	gone := func() []string {
		var out []string
		for _, p := range stubborn {
			if _, err := a.c.CoreV1().Pods("default").Get(t.Context(), p.Name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
				out = append(out, p.Name)
			}
		}
		return out
	}
	// The new pod runs while the deleted ones are still in their grace
	// period (a stop on the one worker would hold it back 3 × 10 s).
	for {
		p, err := a.c.CoreV1().Pods("default").Get(t.Context(), fresh.Name, metav1.GetOptions{})
		if err == nil && main0(p).State.Running != nil {
			break
		}
		if g := gone(); len(g) > 0 {
			t.Fatalf("%v gone before the new pod ran (status %s): its start waited for their stops", g, describe(p))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if g := gone(); len(g) > 0 {
		t.Fatalf("%v gone before the new pod ran", g)
	}
	// When the first deleted pod is gone, every one has been told to stop.
	deadline := time.Now().Add(10 * grace * time.Second)
	for len(gone()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no deleted pod gone %d s after the deletes", 10*grace)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range stubborn {
		if evs := a.events(t, p); eventIndex(evs, "Killing", "Stopping container main") < 0 {
			t.Errorf("pod %s: no Killing event when the first deleted pod was gone: the stops ran one after another; events:\n%s",
				p.Name, strings.Join(evs, "\n"))
		}
	}
	for _, p := range stubborn {
		a.waitGone(t, p, 10*grace*time.Second)
	}
}

// TestTerminationCutShort: a pod whose container ignores SIGTERM is being
// deleted with a 60 s grace period; a second delete with a 2 s grace, or
// a forced delete (grace 0, the pod gone from the API at once), stops it
// with the new grace, as the kubelet does, long before the first one
// would have.
func TestTerminationCutShort(t *testing.T) {
	a := startTestAgentWorkers(t, "10.244.62.0/24", 2)
	const grace = 60
	for _, tc := range []struct {
		name   string
		second int64
	}{{"shorter-grace", 2}, {"forced", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			p := a.pod("cut-"+tc.name, "exec sleep 1000", corev1.RestartPolicyAlways)
			g := int64(grace)
			p.Spec.TerminationGracePeriodSeconds = &g
			p = a.create(t, p)
			a.wait(t, p.Name, time.Minute, "running", func(p *corev1.Pod) bool { return main0(p).State.Running != nil })
			if err := a.c.CoreV1().Pods("default").Delete(t.Context(), p.Name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			// The stop with the 60 s grace is under way.
			deadline := time.Now().Add(30 * time.Second)
			for eventIndex(a.events(t, p), "Killing", "Stopping container main") < 0 {
				if time.Now().After(deadline) {
					t.Fatal("no Killing event after the delete")
				}
				time.Sleep(50 * time.Millisecond)
			}
			start := time.Now()
			if err := a.c.CoreV1().Pods("default").Delete(t.Context(), p.Name, metav1.DeleteOptions{GracePeriodSeconds: &tc.second}); err != nil {
				t.Fatal(err)
			}
			// Gone from the node well within the first grace period.
			deadline = start.Add(grace / 2 * time.Second)
			for {
				refs, err := a.loop.rt.ListPods(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if !slices.ContainsFunc(refs, func(r runtime.PodRef) bool { return r.UID == p.UID }) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the pod's containers still on the node %v after a delete with grace %d s (the first had %d s)",
						time.Since(start), tc.second, grace)
				}
				time.Sleep(50 * time.Millisecond)
			}
			t.Logf("containers gone %v after the second delete (grace %d s)", time.Since(start).Round(time.Millisecond), tc.second)
			a.waitGone(t, p, time.Minute)
		})
	}
}
