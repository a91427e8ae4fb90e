package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"weir.dev/weir/nodeagent/probe"
)

// minPreStopGrace is what a container still gets between SIGTERM and
// SIGKILL when its preStop hook used up (or overran) the grace period:
// the kubelet's minimumGracePeriodInSeconds.
const minPreStopGrace = 2 * time.Second

// errTCPSocketHook: tcpSocket lifecycle handlers are deprecated and never
// did anything useful; the kubelet fails them as invalid, so do we.
var errTCPSocketHook = errors.New("tcpSocket lifecycle handlers are not supported (deprecated); use exec or httpGet")

// runHook runs one lifecycle handler for container c, whose attempt is
// rec, and returns a message for the Failed…Hook event when it fails.
// timeout bounds an exec command (0: none; ctx bounds everything).
func (r *Runtime) runHook(ctx context.Context, pod *corev1.Pod, ps *podState, c *corev1.Container, rec *record,
	h *corev1.LifecycleHandler, kind string, timeout time.Duration) error {
	var err error
	what := ""
	switch {
	case h.Exec != nil:
		what = fmt.Sprintf("Exec lifecycle hook (%v)", h.Exec.Command)
		var out []byte
		var code int
		out, code, err = r.execIn(ctx, rec.ctr, h.Exec.Command, timeout)
		if err == nil && code != 0 {
			err = fmt.Errorf("command '%s' exited with %d: %s", strings.Join(h.Exec.Command, " "), code, strings.TrimSpace(string(out)))
		}
	case h.HTTPGet != nil:
		what = fmt.Sprintf("HTTP lifecycle hook (%s)", h.HTTPGet.Path)
		podIP := ""
		if ps.att != nil {
			podIP = ps.att.IP.String()
		} else if r.cfg.NodeIP.IsValid() {
			podIP = r.cfg.NodeIP.String()
		}
		hctx := ctx
		if timeout > 0 {
			var cancel context.CancelFunc
			hctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		err = probe.HTTPGet(hctx, r.cfg.Dial, podIP, c, h.HTTPGet)
	case h.Sleep != nil:
		what = fmt.Sprintf("Sleep lifecycle hook (%d)", h.Sleep.Seconds)
		t := time.NewTimer(time.Duration(h.Sleep.Seconds) * time.Second)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			err = ctx.Err()
		}
	case h.TCPSocket != nil:
		what, err = "TCPSocket lifecycle hook", errTCPSocketHook
	default:
		what, err = "Lifecycle hook", errors.New("no handler")
	}
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf("%s for Container %q in Pod \"%s_%s(%s)\" failed - error: %v", what, c.Name, pod.Name, pod.Namespace, pod.UID, err)
	r.cfg.Logger.Info(kind+" hook failed", slog.String("pod", pod.Namespace+"/"+pod.Name), slog.String("container", c.Name), slog.Any("error", err))
	return errors.New(msg)
}

// hookContext is a context for a hook of pod that KillPod and RemovePod
// cancel (they wait for the pod lock a postStart hook
// holds); done releases it.
func (r *Runtime) hookContext(ctx context.Context, ps *podState) (context.Context, func()) {
	hctx, cancel := context.WithCancel(ctx)
	ps.hookMu.Lock()
	ps.hookCancel = cancel
	if ps.stopping {
		cancel()
	}
	ps.hookMu.Unlock()
	return hctx, func() {
		ps.hookMu.Lock()
		ps.hookCancel = nil
		ps.hookMu.Unlock()
		cancel()
	}
}

// cancelHooks ends a postStart hook of ps that is running, and keeps a
// SyncPod that holds the pod lock from starting more containers or hooks:
// the pod is being stopped.
func (ps *podState) cancelHooks() {
	ps.hookMu.Lock()
	defer ps.hookMu.Unlock()
	ps.stopping = true
	if ps.hookCancel != nil {
		ps.hookCancel()
	}
}

// postStart runs c's postStart hook, if any, right after its task started
// (the caller holds the pod lock, so nobody reports the container Running
// before the hook returns). A failed hook gets a FailedPostStartHook event
// and the container is killed, as the kubelet does; the restart policy
// decides what comes next.
func (r *Runtime) postStart(ctx context.Context, pod *corev1.Pod, ps *podState, c *corev1.Container, rec *record) error {
	if c.Lifecycle == nil || c.Lifecycle.PostStart == nil {
		return nil
	}
	hctx, done := r.hookContext(ctx, ps)
	err := r.runHook(hctx, pod, ps, c, rec, c.Lifecycle.PostStart, "postStart", 0)
	cancelled := hctx.Err() != nil
	done()
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case cancelled:
		// The pod is being stopped (KillPod, RemovePod), which stops
		// this container too.
		return nil
	}
	r.event(pod, corev1.EventTypeWarning, "FailedPostStartHook", err.Error())
	return r.stop(ctx, pod, ps, rec, GracePeriod(pod), "FailedPostStartHook")
}

// preStop runs c's preStop hook, if any, within grace and returns what is
// left of grace for the stop signal: at least minPreStopGrace once a hook
// ran, as the kubelet gives.
func (r *Runtime) preStop(ctx context.Context, pod *corev1.Pod, ps *podState, rec *record, grace time.Duration) time.Duration {
	c := containerSpec(pod, rec.name)
	if c == nil || c.Lifecycle == nil || c.Lifecycle.PreStop == nil || grace <= 0 {
		return grace
	}
	start := time.Now()
	hctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- r.runHook(hctx, pod, ps, c, rec, c.Lifecycle.PreStop, "preStop", grace) }()
	select {
	case err := <-errc:
		if err != nil && hctx.Err() == nil {
			r.event(pod, corev1.EventTypeWarning, "FailedPreStopHook", err.Error())
		}
	case <-hctx.Done():
		// Overran: the stop signal goes out anyway; the hook's exec is
		// killed with the container.
		r.cfg.Logger.Info("preStop hook did not complete within the grace period", slog.String("pod", pod.Namespace+"/"+pod.Name),
			slog.String("container", c.Name), slog.Duration("grace", grace))
	}
	return max(grace-time.Since(start), minPreStopGrace)
}

// containerSpec is the spec of container name of pod, or nil.
func containerSpec(pod *corev1.Pod, name string) *corev1.Container {
	for _, c := range allContainers(pod) {
		if c.Name == name {
			return c
		}
	}
	return nil
}
