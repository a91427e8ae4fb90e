// Package probe runs container probes (readiness, liveness, startup) the
// way the kubelet's prober does: one goroutine per (pod, container, kind)
// probing the pod IP every periodSeconds after initialDelaySeconds, and a
// result that flips only after successThreshold consecutive successes or
// failureThreshold consecutive failures. exec (through Config.Exec),
// httpGet (HTTP only) and tcpSocket handlers are supported; grpc counts
// as a failure.
package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Kind is a probe's kind.
type Kind string

const (
	Readiness Kind = "readiness"
	Liveness  Kind = "liveness"
	Startup   Kind = "startup"
)

// Clock is the time source of the probe workers.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Config configures a Manager.
type Config struct {
	// Notify is called with a pod's UID when one of its readiness results
	// changes, a startup probe succeeds, or a container is to be killed.
	Notify func(uid types.UID)
	// Kill, if set, is called (on the worker's goroutine) when a liveness
	// probe or a startup probe reaches its failure threshold: the
	// container with that ID should be killed so that the restart policy
	// restarts it. The worker then stops probing until the container
	// restarts. grace is the probe's terminationGracePeriodSeconds, which
	// replaces the pod's for this kill; nil when it has none.
	Kill func(pod *corev1.Pod, container, containerID, reason string, grace *int64)
	// Exec runs an exec probe's command in the container with that ID
	// (runtime.ExecSync) and returns its output and exit code; the
	// command is killed after timeout. Without Exec, exec probes fail.
	Exec func(ctx context.Context, pod *corev1.Pod, container, containerID string, cmd []string, timeout time.Duration) ([]byte, int, error)
	// Event, if set, records an event on the pod: a Warning "Unhealthy"
	// for every failed probe, as the kubelet's prober does.
	Event func(pod *corev1.Pod, eventType, reason, message string)
	// Dial connects to a probe target (default net.Dialer.DialContext).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Clock defaults to the real one.
	Clock  Clock
	Logger *slog.Logger
}

type key struct {
	uid       types.UID
	container string
	kind      Kind
}

// result is the latest result of one worker.
type result struct {
	ok      bool
	known   bool
	message string
}

// Manager runs the probes of the pods it is told about.
type Manager struct {
	cfg Config

	mu      sync.Mutex
	workers map[key]*worker
	results map[key]result
}

// New returns a Manager.
func New(cfg Config) *Manager {
	if cfg.Notify == nil {
		cfg.Notify = func(types.UID) {}
	}
	if cfg.Dial == nil {
		d := &net.Dialer{}
		cfg.Dial = d.DialContext
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Manager{cfg: cfg, workers: map[key]*worker{}, results: map[key]result{}}
}

// Ready is the readiness probe result of a container: known is false when
// the manager runs no readiness probe for it.
func (m *Manager) Ready(uid types.UID, container string) (ready bool, known bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := key{uid, container, Readiness}
	if _, ok := m.workers[k]; !ok {
		return false, false
	}
	r := m.results[k]
	return r.ok, true
}

// Started is the startup probe result of a container: known is false when
// the manager runs no startup probe for it (yet).
func (m *Manager) Started(uid types.UID, container string) (started bool, known bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := key{uid, container, Startup}
	if _, ok := m.workers[k]; !ok {
		return false, false
	}
	return m.results[k].ok, true
}

// Result is a probe's latest result and its message (the reason of the
// last failure), for diagnostics.
func (m *Manager) Result(uid types.UID, container string, kind Kind) (ok bool, message string, known bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, found := m.results[key{uid, container, kind}]
	return r.ok, r.message, found && r.known
}

// Sync starts and stops the workers of pod's containers from its spec and
// status: a container gets a worker per probe it defines while it runs;
// a new containerID (a restart) or pod IP starts its workers afresh, with
// readiness and startup false and liveness true until probed. It reports
// whether a readiness or startup success was reset (Notify is called too
// then).
func (m *Manager) Sync(pod *corev1.Pod) bool {
	running := map[string]string{} // container → ID
	startedAt := map[string]time.Time{}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.State.Running != nil && cs.ContainerID != "" {
			running[cs.Name] = cs.ContainerID
			startedAt[cs.Name] = cs.State.Running.StartedAt.Time
		}
	}
	ip := pod.Status.PodIP
	terminal := pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
	want := map[key]*corev1.Probe{}
	ids := map[key]string{}
	if !terminal && ip != "" {
		for i := range pod.Spec.Containers {
			c := &pod.Spec.Containers[i]
			id, ok := running[c.Name]
			for kind, p := range map[Kind]*corev1.Probe{Readiness: c.ReadinessProbe, Liveness: c.LivenessProbe, Startup: c.StartupProbe} {
				if p == nil {
					continue
				}
				k := key{pod.UID, c.Name, kind}
				if kind == Readiness {
					// Readiness is known (false) while the container does not run.
					want[k] = p
				} else if ok {
					want[k] = p
				}
				if ok {
					ids[k] = id
				}
			}
		}
	}
	changed := false
	m.mu.Lock()
	for k, w := range m.workers {
		if k.uid != pod.UID {
			continue
		}
		if _, ok := want[k]; !ok || w.containerID != ids[k] || w.ip != ip {
			w.stop()
			delete(m.workers, k)
			if m.results[k].ok && (k.kind == Readiness || k.kind == Startup) {
				changed = true
			}
			delete(m.results, k)
		}
	}
	for k, p := range want {
		if _, ok := m.workers[k]; ok {
			continue
		}
		w := &worker{m: m, key: k, probe: p, pod: pod, containerID: ids[k], ip: ip, started: startedAt[k.container], done: make(chan struct{})}
		w.ctx, w.cancel = context.WithCancel(context.Background())
		m.workers[k] = w
		// Initial results: readiness fails until probed, liveness and
		// startup succeed (startup is "not started" via started()).
		m.results[k] = result{ok: k.kind != Readiness && k.kind != Startup}
		if w.containerID != "" {
			go w.run()
		} else {
			close(w.done)
		}
	}
	m.mu.Unlock()
	if changed {
		m.cfg.Notify(pod.UID)
	}
	return changed
}

// Remove stops every worker of pod uid and forgets its results.
func (m *Manager) Remove(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, w := range m.workers {
		if k.uid == uid {
			w.stop()
			delete(m.workers, k)
			delete(m.results, k)
		}
	}
}

// Stop stops every worker.
func (m *Manager) Stop() {
	m.mu.Lock()
	ws := m.workers
	m.workers = map[key]*worker{}
	m.mu.Unlock()
	for _, w := range ws {
		w.stop()
		<-w.done
	}
}

// started reports whether container's startup probe (if any) succeeded.
func (m *Manager) started(uid types.UID, container string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := key{uid, container, Startup}
	if _, ok := m.workers[k]; !ok {
		return true
	}
	return m.results[k].ok
}

// set records w's result, unless w has been replaced, and reports whether
// the result flipped.
func (m *Manager) set(w *worker, r result) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.workers[w.key] != w {
		return false
	}
	prev := m.results[w.key]
	m.results[w.key] = r
	return prev.ok != r.ok || !prev.known
}

type worker struct {
	m           *Manager
	key         key
	probe       *corev1.Probe
	pod         *corev1.Pod
	containerID string
	ip          string
	started     time.Time // the container's start, if known
	ctx         context.Context
	cancel      context.CancelFunc
	done        chan struct{}
}

func (w *worker) stop() { w.cancel() }

func (w *worker) sleep(d time.Duration) bool {
	select {
	case <-w.ctx.Done():
		return false
	case <-w.m.cfg.Clock.After(d):
		return w.ctx.Err() == nil
	}
}

func seconds(n int32, def int32) time.Duration {
	if n <= 0 {
		n = def
	}
	return time.Duration(n) * time.Second
}

func (w *worker) run() {
	defer close(w.done)
	p := w.probe
	period := seconds(p.PeriodSeconds, 10)
	successes, failures := max(p.SuccessThreshold, 1), max(p.FailureThreshold, 1)
	if w.key.kind != Readiness {
		successes = 1 // liveness and startup require 1
	}
	if d := time.Duration(p.InitialDelaySeconds) * time.Second; d > 0 {
		// initialDelaySeconds counts from the container's start.
		if !w.started.IsZero() {
			d -= w.m.cfg.Clock.Now().Sub(w.started)
		}
		if d > 0 && !w.sleep(d) {
			return
		}
	}
	var okRun, failRun int32
	for {
		if w.key.kind == Startup || w.m.started(w.key.uid, w.key.container) {
			err := w.do()
			if err != nil && w.m.cfg.Event != nil && w.ctx.Err() == nil {
				w.m.cfg.Event(w.pod, corev1.EventTypeWarning, "Unhealthy", fmt.Sprintf("%s probe failed: %s", kindTitle(w.key.kind), err))
			}
			if err == nil {
				okRun, failRun = okRun+1, 0
			} else {
				okRun, failRun = 0, failRun+1
			}
			var next *result
			switch {
			case err == nil && okRun >= successes:
				next = &result{ok: true, known: true}
			case err != nil && failRun >= failures:
				next = &result{ok: false, known: true, message: err.Error()}
			}
			if next != nil {
				flipped := w.m.set(w, *next)
				if flipped && (w.key.kind == Readiness || (w.key.kind == Startup && next.ok)) {
					w.m.cfg.Notify(w.key.uid)
				}
				if !next.ok && w.key.kind != Readiness {
					msg := fmt.Sprintf("%s probe failed: %s", kindTitle(w.key.kind), next.message)
					w.m.cfg.Logger.Info("container unhealthy", slog.String("pod", w.pod.Namespace+"/"+w.pod.Name),
						slog.String("container", w.key.container), slog.String("reason", msg))
					if w.m.cfg.Kill != nil {
						w.m.cfg.Kill(w.pod, w.key.container, w.containerID,
							fmt.Sprintf("Container %s failed %s probe, will be restarted", w.key.container, w.key.kind),
							p.TerminationGracePeriodSeconds)
					}
					w.m.cfg.Notify(w.key.uid)
					return // on hold until the container restarts (Sync)
				}
				if w.key.kind == Startup && next.ok {
					return // started: no more startup probing
				}
			}
		}
		if !w.sleep(period) {
			return
		}
	}
}

func kindTitle(k Kind) string {
	return strings.ToUpper(string(k[:1])) + string(k[1:])
}

// do runs the probe once.
func (w *worker) do() error {
	p := w.probe
	timeout := seconds(p.TimeoutSeconds, 1)
	ctx, cancel := context.WithTimeout(w.ctx, timeout)
	defer cancel()
	c := w.container()
	switch {
	case p.HTTPGet != nil:
		return HTTPGet(ctx, w.m.cfg.Dial, w.ip, c, p.HTTPGet)
	case p.TCPSocket != nil:
		port, err := resolvePort(p.TCPSocket.Port, c)
		if err != nil {
			return err
		}
		host := p.TCPSocket.Host
		if host == "" {
			host = w.ip
		}
		conn, err := w.m.cfg.Dial(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return fmt.Errorf("dial tcp %s:%d: %w", host, port, cause(ctx, err))
		}
		_ = conn.Close()
		return nil
	case p.Exec != nil:
		if w.m.cfg.Exec == nil {
			return errors.New("exec probes are unsupported here")
		}
		out, code, err := w.m.cfg.Exec(ctx, w.pod, w.key.container, w.containerID, p.Exec.Command, timeout)
		switch {
		case err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
			return fmt.Errorf("command %s timed out", quoteCmd(p.Exec.Command))
		case err != nil:
			return err
		case code != 0:
			// The kubelet reports the command's output, which says why.
			if msg := strings.TrimSpace(string(out)); msg != "" {
				return errors.New(msg)
			}
			return fmt.Errorf("command %s exited with %d", quoteCmd(p.Exec.Command), code)
		}
		return nil
	case p.GRPC != nil:
		return GRPCCheck(ctx, w.m.cfg.Dial, w.ip, p.GRPC, timeout)
	default:
		return errors.New("probe has no handler")
	}
}

func quoteCmd(cmd []string) string {
	return "'" + strings.Join(cmd, " ") + "'"
}

func cause(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errors.New("timeout")
	}
	return err
}

func (w *worker) container() *corev1.Container {
	for i := range w.pod.Spec.Containers {
		if w.pod.Spec.Containers[i].Name == w.key.container {
			return &w.pod.Spec.Containers[i]
		}
	}
	return &corev1.Container{Name: w.key.container}
}

// HTTPGet performs an httpGet action (of a probe or a lifecycle hook)
// against c: host defaults to podIP, the port may be one of c's named
// ports, and any status from 200 to 399 is success (redirects are not
// followed). dial connects (nil: net.Dialer); proxies are never used.
func HTTPGet(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error),
	podIP string, c *corev1.Container, h *corev1.HTTPGetAction) error {
	if dial == nil {
		d := &net.Dialer{}
		dial = d.DialContext
	}
	scheme := "http"
	switch h.Scheme {
	case "", corev1.URISchemeHTTP:
	case corev1.URISchemeHTTPS:
		scheme = "https"
	default:
		return fmt.Errorf("scheme %s is unsupported", h.Scheme)
	}
	port, err := resolvePort(h.Port, c)
	if err != nil {
		return err
	}
	host := h.Host
	if host == "" {
		host = podIP
	}
	path := h.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u := &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(port))}
	u, err = u.Parse(path)
	if err != nil {
		return fmt.Errorf("probe path %q: %w", h.Path, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "kube-probe/weir")
	req.Header.Set("Accept", "*/*")
	for _, hd := range h.HTTPHeaders {
		if strings.EqualFold(hd.Name, "Host") {
			req.Host = hd.Value
			continue
		}
		req.Header.Add(hd.Name, hd.Value)
	}
	client := &http.Client{
		// HTTPS is not verified, as the kubelet does not: a pod's
		// certificate names its service, not the pod address probed.
		Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true, Proxy: nil,
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		// 3xx counts as success: the redirect is not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("Get %q: %w", u.String(), cause(ctx, err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
	}
	return nil
}

// GRPCCheck performs a grpc probe: the gRPC health protocol's Check
// (grpc.health.v1.Health) for g.Service on podIP:g.Port, in plain text;
// SERVING is success. dial connects (nil: net.Dialer).
func GRPCCheck(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error),
	podIP string, g *corev1.GRPCAction, timeout time.Duration) error {
	if dial == nil {
		d := &net.Dialer{}
		dial = d.DialContext
	}
	addr := net.JoinHostPort(podIP, strconv.Itoa(int(g.Port)))
	service := ""
	if g.Service != nil {
		service = *g.Service
	}
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUserAgent("kube-probe/weir"),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return dial(ctx, "tcp", a) }))
	if err != nil {
		return fmt.Errorf("grpc probe of %s: %w", addr, err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service}, grpc.WaitForReady(false))
	if err != nil {
		switch status.Code(err) {
		case codes.Unimplemented:
			return fmt.Errorf("%s does not implement the gRPC health protocol (grpc.health.v1.Health): %s", addr, status.Convert(err).Message())
		case codes.DeadlineExceeded:
			return fmt.Errorf("timeout: health rpc to %s did not complete within %v", addr, timeout)
		case codes.Unavailable:
			return fmt.Errorf("failed to connect to service %q at %s: %s", service, addr, status.Convert(err).Message())
		default:
			return fmt.Errorf("health rpc to %s failed: %s: %s", addr, status.Code(err), status.Convert(err).Message())
		}
	}
	if st := resp.GetStatus(); st != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("service %q unhealthy (responded with %q)", service, st.String())
	}
	return nil
}

// resolvePort resolves a probe port: a number, or the name of one of the
// container's ports.
func resolvePort(p intstr.IntOrString, c *corev1.Container) (int, error) {
	n := 0
	if p.Type == intstr.Int {
		n = p.IntValue()
	} else {
		for _, cp := range c.Ports {
			if cp.Name == p.StrVal {
				n = int(cp.ContainerPort)
			}
		}
		if n == 0 {
			if v, err := strconv.Atoi(p.StrVal); err == nil {
				n = v
			} else {
				return 0, fmt.Errorf("container %s has no port named %q", c.Name, p.StrVal)
			}
		}
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("invalid port %d", n)
	}
	return n, nil
}
