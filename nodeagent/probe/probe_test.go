package probe

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// fakeClock fires After channels only when stepped.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, waiter{c.now.Add(d), ch})
	return ch
}

func (c *fakeClock) Step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	var keep []waiter
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			keep = append(keep, w)
		}
	}
	c.waiters = keep
}

// BlockUntil waits until n goroutines wait on the clock.
func (c *fakeClock) BlockUntil(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		got := len(c.waiters)
		c.mu.Unlock()
		if got >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("timed out waiting for %d clock waiters", n)
}

type notifier struct{ n atomic.Int32 }

func (n *notifier) notify(types.UID) { n.n.Add(1) }

func newManager(t *testing.T, cfg Config) (*Manager, *fakeClock, *notifier) {
	clk := &fakeClock{now: time.Unix(1000, 0)}
	nt := &notifier{}
	cfg.Clock, cfg.Notify = clk, nt.notify
	m := New(cfg)
	t.Cleanup(m.Stop)
	return m, clk, nt
}

func testPod(id string, c corev1.Container) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", UID: "uid-1"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{c}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "127.0.0.1", ContainerStatuses: []corev1.ContainerStatus{{
			Name: c.Name, ContainerID: id, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
		}}},
	}
}

// statusServer answers /healthz with the status code in code.
func statusServer(t *testing.T) (*atomic.Int32, int, *atomic.Value) {
	var code atomic.Int32
	code.Store(200)
	var hdr atomic.Value
	hdr.Store("")
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		hdr.Store(r.Header.Get("X-Probe") + "|" + r.Host)
		w.WriteHeader(int(code.Load()))
	}))
	t.Cleanup(s.Close)
	_, port, _ := net.SplitHostPort(s.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	return &code, p, &hdr
}

func ready(t *testing.T, m *Manager, want bool) {
	t.Helper()
	got, known := m.Ready("uid-1", "app")
	if !known || got != want {
		t.Fatalf("Ready = %v (known %v), want %v", got, known, want)
	}
}

func TestReadinessHTTP(t *testing.T) {
	code, port, hdr := statusServer(t)
	m, clk, nt := newManager(t, Config{})
	c := corev1.Container{Name: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: "/healthz", Port: intstr.FromString("http"),
			HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Probe", Value: "yes"}, {Name: "Host", Value: "example.test"}},
		}}, InitialDelaySeconds: 5, PeriodSeconds: 10, TimeoutSeconds: 30, SuccessThreshold: 2, FailureThreshold: 3}}
	pod := testPod("containerd://a", c)
	if _, known := m.Ready("uid-1", "app"); known {
		t.Fatal("known before Sync")
	}
	m.Sync(pod)
	ready(t, m, false)
	step := func() {
		t.Helper()
		clk.BlockUntil(t, 1)
		clk.Step(10 * time.Second)
		clk.BlockUntil(t, 1) // probed, waiting for the next period
	}
	// Initial delay: nothing is probed before 5s.
	clk.BlockUntil(t, 1)
	clk.Step(4 * time.Second)
	if got := hdr.Load().(string); got != "" {
		t.Fatalf("probed during the initial delay: %q", got)
	}
	clk.Step(1 * time.Second)
	clk.BlockUntil(t, 1)
	if got := hdr.Load().(string); got != "yes|example.test" {
		t.Fatalf("header|host = %q", got)
	}
	ready(t, m, false) // 1 success of 2
	step()
	ready(t, m, true)
	if nt.n.Load() == 0 {
		t.Fatal("no notify on ready")
	}

	code.Store(500)
	step()
	ready(t, m, true) // 1 failure of 3
	step()
	ready(t, m, true)
	n := nt.n.Load()
	step()
	ready(t, m, false)
	if nt.n.Load() == n {
		t.Fatal("no notify on not ready")
	}
	if _, msg, _ := m.Result("uid-1", "app", Readiness); !strings.Contains(msg, "500") {
		t.Fatalf("message %q", msg)
	}

	code.Store(302) // 3xx is success
	step()
	ready(t, m, false)
	step()
	ready(t, m, true)

	// A restart (new container ID) resets readiness.
	if !m.Sync(testPod("containerd://b", c)) {
		t.Fatal("Sync reported no change after a restart")
	}
	ready(t, m, false)
	// The same status again changes nothing.
	if m.Sync(testPod("containerd://b", c)) {
		t.Fatal("Sync reported a change")
	}
	// Not running: known, not ready.
	stopped := testPod("containerd://b", c)
	stopped.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}
	m.Sync(stopped)
	ready(t, m, false)

	m.Remove("uid-1")
	if _, known := m.Ready("uid-1", "app"); known {
		t.Fatal("known after Remove")
	}
}

func TestReadinessTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	m, clk, _ := newManager(t, Config{})
	c := corev1.Container{Name: "app", ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
		TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(port))}},
		PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 1}}
	m.Sync(testPod("containerd://a", c))
	clk.BlockUntil(t, 1) // probed at once (no initial delay)
	ready(t, m, true)
	ln.Close()
	clk.Step(time.Second)
	clk.BlockUntil(t, 1)
	ready(t, m, false)
}

func TestUnsupported(t *testing.T) {
	for name, h := range map[string]corev1.ProbeHandler{
		"exec": {Exec: &corev1.ExecAction{Command: []string{"true"}}},
	} {
		t.Run(name, func(t *testing.T) {
			m, clk, _ := newManager(t, Config{})
			m.Sync(testPod("containerd://a", corev1.Container{Name: "app", ReadinessProbe: &corev1.Probe{
				ProbeHandler: h, PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 1}}))
			clk.BlockUntil(t, 1)
			ready(t, m, false)
			if _, msg, known := m.Result("uid-1", "app", Readiness); !known || !strings.Contains(msg, "unsupported") {
				t.Fatalf("message %q (known %v)", msg, known)
			}
		})
	}
}

func TestLivenessKills(t *testing.T) {
	code, port, _ := statusServer(t)
	type kill struct{ container, id string }
	kills := make(chan kill, 1)
	m, clk, _ := newManager(t, Config{Kill: func(_ *corev1.Pod, c, id, _ string, _ *int64) { kills <- kill{c, id} }})
	c := corev1.Container{Name: "app", LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
		HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(int32(port))}},
		PeriodSeconds: 10, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 2}}
	m.Sync(testPod("containerd://a", c))
	clk.BlockUntil(t, 1)
	code.Store(503)
	clk.Step(10 * time.Second)
	clk.BlockUntil(t, 1) // 1 failure of 2
	select {
	case k := <-kills:
		t.Fatalf("killed early: %v", k)
	default:
	}
	clk.Step(10 * time.Second)
	select {
	case k := <-kills:
		if k != (kill{"app", "containerd://a"}) {
			t.Fatalf("kill %v", k)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not killed")
	}
	// A liveness probe does not gate readiness.
	if _, known := m.Ready("uid-1", "app"); known {
		t.Fatal("readiness known without a readiness probe")
	}
}

func TestStartupGatesReadiness(t *testing.T) {
	code, port, _ := statusServer(t)
	code.Store(500)
	m, clk, _ := newManager(t, Config{})
	h := corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(int32(port))}}
	c := corev1.Container{Name: "app",
		StartupProbe:   &corev1.Probe{ProbeHandler: h, PeriodSeconds: 10, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 30},
		ReadinessProbe: &corev1.Probe{ProbeHandler: h, PeriodSeconds: 10, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 1}}
	m.Sync(testPod("containerd://a", c))
	clk.BlockUntil(t, 2)
	if _, _, known := m.Result("uid-1", "app", Readiness); known {
		t.Fatal("readiness probed before startup succeeded")
	}
	code.Store(200)
	clk.Step(10 * time.Second)
	// Startup succeeds and stops; readiness probes and waits again.
	clk.BlockUntil(t, 1)
	time.Sleep(10 * time.Millisecond)
	clk.Step(10 * time.Second)
	clk.BlockUntil(t, 1)
	ready(t, m, true)
}

// Exec probes go through Config.Exec: exit 0 is success, anything else a
// failure whose message is the command's output (the Unhealthy event's
// text, as the kubelet's), and timeoutSeconds bounds the command.
func TestExecProbe(t *testing.T) {
	type call struct {
		container, id string
		cmd           []string
		timeout       time.Duration
	}
	var exitCode atomic.Int32
	var output atomic.Value
	output.Store("")
	var hang atomic.Bool
	calls := make(chan call, 16)
	var evMu sync.Mutex
	var events []string
	m, clk, _ := newManager(t, Config{
		Exec: func(ctx context.Context, _ *corev1.Pod, c, id string, cmd []string, timeout time.Duration) ([]byte, int, error) {
			calls <- call{c, id, cmd, timeout}
			if hang.Load() {
				<-ctx.Done()
				return nil, 0, ctx.Err()
			}
			return []byte(output.Load().(string)), int(exitCode.Load()), nil
		},
		Event: func(_ *corev1.Pod, typ, reason, msg string) {
			evMu.Lock()
			defer evMu.Unlock()
			events = append(events, typ+" "+reason+": "+msg)
		},
	})
	c := corev1.Container{Name: "app", ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
		Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/healthy"}}},
		PeriodSeconds: 1, TimeoutSeconds: 2, SuccessThreshold: 1, FailureThreshold: 1}}
	m.Sync(testPod("containerd://a", c))
	got := <-calls
	if got.container != "app" || got.id != "containerd://a" || strings.Join(got.cmd, " ") != "cat /tmp/healthy" || got.timeout != 2*time.Second {
		t.Fatalf("exec call %+v", got)
	}
	clk.BlockUntil(t, 1)
	ready(t, m, true)

	exitCode.Store(1)
	output.Store("cat: can't open '/tmp/healthy': No such file or directory\n")
	clk.Step(time.Second)
	<-calls
	clk.BlockUntil(t, 1)
	ready(t, m, false)
	want := "Warning Unhealthy: Readiness probe failed: cat: can't open '/tmp/healthy': No such file or directory"
	evMu.Lock()
	if len(events) != 1 || events[0] != want {
		t.Errorf("events %q, want [%q]", events, want)
	}
	evMu.Unlock()

	// A command that does not return within timeoutSeconds fails.
	exitCode.Store(0)
	hang.Store(true)
	clk.Step(time.Second)
	<-calls
	clk.BlockUntil(t, 1)
	ready(t, m, false)
	if _, msg, _ := m.Result("uid-1", "app", Readiness); !strings.Contains(msg, "timed out") {
		t.Errorf("message after a timeout %q", msg)
	}
}

// TestReadinessHTTPS: an https probe succeeds against a server whose
// certificate is not trusted (the kubelet does not verify it either).
func TestReadinessHTTPS(t *testing.T) {
	var code atomic.Int32
	code.Store(200)
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" || r.TLS == nil {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(int(code.Load()))
	}))
	t.Cleanup(s.Close)
	port := s.Listener.Addr().(*net.TCPAddr).Port
	m, clk, _ := newManager(t, Config{})
	c := corev1.Container{Name: "app", ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
		HTTPGet: &corev1.HTTPGetAction{Scheme: corev1.URISchemeHTTPS, Path: "/healthz", Port: intstr.FromInt32(int32(port))}},
		PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 1}}
	m.Sync(testPod("containerd://a", c))
	clk.BlockUntil(t, 1)
	ready(t, m, true)
	code.Store(503)
	clk.Step(time.Second)
	clk.BlockUntil(t, 1)
	ready(t, m, false)
	if _, msg, _ := m.Result("uid-1", "app", Readiness); !strings.Contains(msg, "503") {
		t.Fatalf("message %q, want the status code", msg)
	}
}

// TestReadinessGRPC: grpc probes against a real gRPC server with the
// standard health service: SERVING is ready, NOT_SERVING and an unknown
// service are not, a server without the health service and a closed port
// fail with messages saying so.
func TestReadinessGRPC(t *testing.T) {
	serve := func(withHealth bool) (*health.Server, int) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := grpc.NewServer()
		hs := health.NewServer()
		if withHealth {
			healthpb.RegisterHealthServer(srv, hs)
		}
		go srv.Serve(ln)
		t.Cleanup(srv.Stop)
		return hs, ln.Addr().(*net.TCPAddr).Port
	}
	hs, port := serve(true)
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("db", healthpb.HealthCheckResponse_NOT_SERVING)
	_, bare := serve(false)
	closed := func() int {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).Port
	}()
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		name    string
		port    int
		service *string
		ready   bool
		msg     string
	}{
		{"server", port, nil, true, ""},
		{"not-serving", port, str("db"), false, `service "db" unhealthy (responded with "NOT_SERVING")`},
		{"unknown-service", port, str("cache"), false, "NotFound"},
		{"no-health-service", bare, nil, false, "does not implement the gRPC health protocol"},
		{"closed-port", closed, nil, false, "failed to connect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, clk, _ := newManager(t, Config{})
			c := corev1.Container{Name: "app", ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				GRPC: &corev1.GRPCAction{Port: int32(tc.port), Service: tc.service}},
				PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 1}}
			m.Sync(testPod("containerd://a", c))
			clk.BlockUntil(t, 1)
			ready(t, m, tc.ready)
			if _, msg, _ := m.Result("uid-1", "app", Readiness); !strings.Contains(msg, tc.msg) {
				t.Fatalf("message %q, want one containing %q", msg, tc.msg)
			}
		})
	}
	t.Run("becomes-serving", func(t *testing.T) {
		m, clk, _ := newManager(t, Config{})
		c := corev1.Container{Name: "app", ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
			GRPC: &corev1.GRPCAction{Port: int32(port), Service: str("db")}},
			PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 1}}
		m.Sync(testPod("containerd://a", c))
		clk.BlockUntil(t, 1)
		ready(t, m, false)
		hs.SetServingStatus("db", healthpb.HealthCheckResponse_SERVING)
		clk.Step(time.Second)
		clk.BlockUntil(t, 1)
		ready(t, m, true)
	})
}
