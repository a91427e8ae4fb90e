package runtime

import (
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"weir.dev/weir/nodeagent/containerd/containerdtest"
	"weir.dev/weir/test/netns"
)

// eventLog records the runtime's events.
type eventLog struct {
	mu  sync.Mutex
	evs []loggedEvent
}

type loggedEvent struct {
	uid                  types.UID
	typ, reason, message string
}

func (l *eventLog) record(pod *corev1.Pod, typ, reason, message string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, loggedEvent{pod.UID, typ, reason, message})
}

// of returns pod uid's events as "Reason: message" lines.
func (l *eventLog) of(uid types.UID) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.evs {
		if e.uid == uid {
			out = append(out, e.reason+": "+e.message)
		}
	}
	return out
}

func hasEvent(evs []string, reason, substr string) bool {
	for _, e := range evs {
		if strings.HasPrefix(e, reason+": ") && strings.Contains(e, substr) {
			return true
		}
	}
	return false
}

// newLifecycleNode is a test node whose runtime records events and dials
// hook targets from inside the node's namespace, as the agent does.
func newLifecycleNode(t *testing.T, cidr string) (*testNode, *eventLog) {
	d := containerdtest.Start(t)
	n := newTestNode(t, d, cidr)
	log := &eventLog{}
	n.rt.cfg.Recorder = log.record
	n.rt.cfg.Dial = netns.Dialer(n.netns)
	return n, log
}

// hookServer serves HTTP inside the node's namespace on the bridge
// address and calls handle for every request; it returns the address's
// host and port for an httpGet action.
func (n *testNode) hookServer(t *testing.T, handle func(path string)) (string, int) {
	t.Helper()
	host := n.cidr.Addr().Next().String()
	var ln net.Listener
	var err error
	netns.Do(t, n.netns, func() { ln, err = net.Listen("tcp", net.JoinHostPort(host, "0")) })
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handle(r.URL.Path)
		_, _ = w.Write([]byte("ok\n"))
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return host, ln.Addr().(*net.TCPAddr).Port
}

// withData gives the pod's containers an emptyDir at /data and returns
// where it is on the node.
func (n *testNode) withData(pod *corev1.Pod) string {
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "data", MountPath: "/data"})
	}
	return filepath.Join(n.rt.PodDir(pod.UID), "volumes", "empty-dir", "data")
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestExecSync runs commands in a running container: they see its
// environment, working directory and user, their output and exit code come
// back, one that outlives its timeout is killed, and a container that
// does not run has nothing to exec in.
func TestExecSync(t *testing.T) {
	n, _ := newLifecycleNode(t, "10.244.21.0/24")
	ctx := t.Context()
	pod := busyboxPod("exec", "exec sleep 1000")
	c := &pod.Spec.Containers[0]
	c.Env = []corev1.EnvVar{{Name: "FOO", Value: "bar"}}
	c.WorkingDir = "/work/dir"
	uid := int64(1234)
	c.SecurityContext = &corev1.SecurityContext{RunAsUser: &uid}
	n.syncUntil(t, pod, 20*time.Second, phaseIs(corev1.PodRunning))

	out, code, err := n.rt.ExecSync(ctx, pod, "main", []string{"sh", "-c", "echo out; echo err >&2; echo FOO=$FOO; pwd; id -u; exit 3"}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code != 3 {
		t.Errorf("exit code %d, want 3", code)
	}
	for _, want := range []string{"out\n", "err\n", "FOO=bar\n", "/work/dir\n", "1234\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	start := time.Now()
	_, _, err = n.rt.ExecSync(ctx, pod, "main", []string{"sleep", "77"}, 500*time.Millisecond)
	if !errors.Is(err, ErrExecTimeout) {
		t.Fatalf("a command past its timeout: %v, want ErrExecTimeout", err)
	}
	t.Logf("timed out after %v", time.Since(start))
	out, _, err = n.rt.ExecSync(ctx, pod, "main", []string{"ps"}, 10*time.Second)
	if err != nil || strings.Contains(string(out), "sleep 77") || !strings.Contains(string(out), "sleep 1000") {
		t.Errorf("processes after the timeout (%v):\n%s", err, out)
	}

	if _, _, err := n.rt.ExecSync(ctx, pod, "other", []string{"true"}, time.Second); !errors.Is(err, ErrNotRunning) {
		t.Errorf("exec in a container the pod lacks: %v", err)
	}
	if err := n.rt.KillPod(ctx, pod, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := n.rt.ExecSync(ctx, pod, "main", []string{"true"}, time.Second); !errors.Is(err, ErrNotRunning) {
		t.Errorf("exec in a stopped container: %v", err)
	}
}

// TestPostStartHook runs postStart hooks: the container is reported
// Running only once the hook has returned; a failing hook kills the
// container with a FailedPostStartHook event; tcpSocket handlers fail
// clearly.
func TestPostStartHook(t *testing.T) {
	n, log := newLifecycleNode(t, "10.244.22.0/24")
	one := int64(1)

	t.Run("exec: Running only after the hook", func(t *testing.T) {
		t.Parallel()
		pod := busyboxPod("poststart", "exec sleep 1000")
		data := n.withData(pod)
		pod.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{
			Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "sleep 1; echo hook > /data/poststart"}}}}
		n.syncUntil(t, pod, 30*time.Second, func(st corev1.PodStatus) bool {
			running := st.ContainerStatuses[0].State.Running != nil
			if running && !exists(filepath.Join(data, "poststart")) {
				t.Fatalf("container reported running before its postStart hook completed: %s", describe(st))
			}
			return running
		})
		if evs := log.of(pod.UID); hasEvent(evs, "FailedPostStartHook", "") || !hasEvent(evs, "Started", "main") {
			t.Errorf("events %q", evs)
		}
	})
	t.Run("httpGet: Running only after the hook", func(t *testing.T) {
		t.Parallel()
		var mu sync.Mutex
		var answered time.Time
		host, port := n.hookServer(t, func(string) {
			time.Sleep(time.Second)
			mu.Lock()
			answered = time.Now()
			mu.Unlock()
		})
		pod := busyboxPod("poststart-http", "exec sleep 1000")
		pod.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{
			HTTPGet: &corev1.HTTPGetAction{Host: host, Port: intstr.FromInt(port), Path: "/started"}}}
		n.syncUntil(t, pod, 30*time.Second, func(st corev1.PodStatus) bool {
			running := st.ContainerStatuses[0].State.Running != nil
			mu.Lock()
			defer mu.Unlock()
			if running && answered.IsZero() {
				t.Fatalf("container reported running before its postStart hook completed: %s", describe(st))
			}
			return running
		})
	})
	t.Run("failing exec hook kills the container", func(t *testing.T) {
		t.Parallel()
		pod := busyboxPod("poststart-fail", "exec sleep 1000")
		pod.Spec.TerminationGracePeriodSeconds = &one
		pod.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{
			Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo nope; exit 3"}}}}
		st := n.syncUntil(t, pod, 30*time.Second, phaseIs(corev1.PodFailed))
		if term := st.ContainerStatuses[0].State.Terminated; term == nil || term.ExitCode != 137 {
			t.Errorf("status %s, want killed (137)", describe(st))
		}
		evs := log.of(pod.UID)
		if !hasEvent(evs, "FailedPostStartHook", "exited with 3: nope") || !hasEvent(evs, "Killing", "FailedPostStartHook") {
			t.Errorf("events %q", evs)
		}
	})
	t.Run("deletion ends a postStart hook that hangs", func(t *testing.T) {
		t.Parallel()
		pod := busyboxPod("poststart-hang", "exec sleep 1000")
		data := n.withData(pod)
		pod.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{
			Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "touch /data/hook; exec sleep 600"}}}}
		synced := make(chan error, 1)
		go func() {
			_, err := n.rt.SyncPod(t.Context(), pod)
			synced <- err
		}()
		waitFile(t, filepath.Join(data, "hook"), 20*time.Second)
		killed := make(chan error, 1)
		go func() { killed <- n.rt.KillPod(t.Context(), pod, 0) }()
		for _, ch := range []chan error{killed, synced} {
			select {
			case err := <-ch:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(60 * time.Second):
				t.Fatal("KillPod waited for the postStart hook")
			}
		}
		st, err := n.rt.PodStatus(t.Context(), pod)
		if err != nil {
			t.Fatal(err)
		}
		if term := st.ContainerStatuses[0].State.Terminated; term == nil || term.ExitCode != 137 {
			t.Errorf("after KillPod: %s", describe(st))
		}
		if evs := log.of(pod.UID); hasEvent(evs, "FailedPostStartHook", "") {
			t.Errorf("a cancelled hook reported as failed: %q", evs)
		}
	})
	t.Run("tcpSocket hooks are rejected", func(t *testing.T) {
		t.Parallel()
		pod := busyboxPod("poststart-tcp", "exec sleep 1000")
		pod.Spec.TerminationGracePeriodSeconds = &one
		pod.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{
			TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(80)}}}
		n.syncUntil(t, pod, 30*time.Second, phaseIs(corev1.PodFailed))
		if evs := log.of(pod.UID); !hasEvent(evs, "FailedPostStartHook", "tcpSocket lifecycle handlers are not supported") {
			t.Errorf("events %q", evs)
		}
	})
}

// TestGracefulStopHooks stops containers with and without SIGTERM
// handlers and preStop hooks, and checks the order of what they did and
// how they ended.
func TestGracefulStopHooks(t *testing.T) {
	n, log := newLifecycleNode(t, "10.244.23.0/24")
	const (
		handles = `trap 'echo term >> /data/order; exit 0' TERM; touch /data/ready; while true; do sleep 0.05; done`
		ignores = `touch /data/ready; exec sleep 1000`
	)
	tests := []struct {
		name    string
		script  string
		grace   time.Duration
		preStop *corev1.LifecycleHandler
		// httpPreStop points preStop at a test server that appends
		// "prestop-http" to /data/order.
		httpPreStop bool
		wantCode    int32
		wantOrder   string
		minTook     time.Duration
		wantEvent   [2]string
	}{
		{name: "SIGTERM handler finishes within the grace period", script: handles, grace: 20 * time.Second,
			wantCode: 0, wantOrder: "term\n", wantEvent: [2]string{"Killing", "Stopping container main"}},
		{name: "SIGTERM ignored: killed after the grace period", script: ignores, grace: 2 * time.Second,
			wantCode: 137, minTook: 2 * time.Second},
		{name: "preStop exec runs before SIGTERM", script: handles, grace: 20 * time.Second,
			preStop:  &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo prestop >> /data/order; sleep 1"}}},
			wantCode: 0, wantOrder: "prestop\nterm\n", minTook: time.Second},
		{name: "preStop httpGet runs before SIGTERM", script: handles, grace: 20 * time.Second, httpPreStop: true,
			wantCode: 0, wantOrder: "prestop-http\nterm\n"},
		{name: "preStop overruns the grace period: 2 s more, then SIGKILL", script: ignores, grace: 2 * time.Second,
			preStop:  &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sleep", "100"}}},
			wantCode: 137, minTook: 4 * time.Second},
		{name: "failing preStop is reported and the stop goes on", script: handles, grace: 20 * time.Second,
			preStop:  &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo broken; exit 1"}}},
			wantCode: 0, wantOrder: "term\n", wantEvent: [2]string{"FailedPreStopHook", "exited with 1: broken"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pod := busyboxPod("stop", tc.script)
			data := n.withData(pod)
			if tc.preStop != nil {
				pod.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: tc.preStop}
			}
			if tc.httpPreStop {
				host, port := n.hookServer(t, func(string) {
					f, err := os.OpenFile(filepath.Join(data, "order"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o666)
					if err == nil {
						_, _ = f.WriteString("prestop-http\n")
						f.Close()
					}
				})
				pod.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
					HTTPGet: &corev1.HTTPGetAction{Host: host, Port: intstr.FromString(strconv.Itoa(port)), Path: "/prestop"}}}
			}
			n.syncUntil(t, pod, 30*time.Second, phaseIs(corev1.PodRunning))
			waitFile(t, filepath.Join(data, "ready"), 10*time.Second)
			time.Sleep(100 * time.Millisecond) // the shell is in its loop, trap installed
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
			if tc.wantCode == 0 && term.Reason != "Completed" {
				t.Errorf("reason %q, want Completed", term.Reason)
			}
			t.Logf("stopped in %v (grace %v), exit code %d", took, tc.grace, term.ExitCode)
			if took < tc.minTook {
				t.Errorf("stopped after %v, before %v", took, tc.minTook)
			}
			if tc.wantOrder != "" {
				if got, _ := os.ReadFile(filepath.Join(data, "order")); string(got) != tc.wantOrder {
					t.Errorf("order %q, want %q", got, tc.wantOrder)
				}
			}
			if tc.wantEvent[0] != "" {
				if evs := log.of(pod.UID); !hasEvent(evs, tc.wantEvent[0], tc.wantEvent[1]) {
					t.Errorf("events %q lack %s %q", evs, tc.wantEvent[0], tc.wantEvent[1])
				}
			}
		})
	}
}
