package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/client"
	corev1 "k8s.io/api/core/v1"
)

// ErrExecTimeout is returned by ExecSync when the command outlived its
// timeout (it was killed).
var ErrExecTimeout = errors.New("runtime: command timed out")

// ErrNotRunning is matched by the error ExecSync and Exec return when the
// container has no running task to run the command in.
var ErrNotRunning = errors.New("runtime: container is not running")

// maxExecOutput caps what ExecSync keeps of a command's output: probe and
// hook messages end up in events, which should stay small (the kubelet
// keeps 10 KiB too).
const maxExecOutput = 10 << 10

// ExecSync runs cmd in the running latest attempt of container name of
// pod, as exec probes and hooks do, and returns its combined stdout and
// stderr (at most 10 KiB) and exit code. The process gets the container's
// environment, working directory and user. A command still running after
// timeout (if positive) is killed and ErrExecTimeout returned. It takes
// no pod lock, so it can run while the pod is being synced.
func (r *Runtime) ExecSync(ctx context.Context, pod *corev1.Pod, name string, cmd []string, timeout time.Duration) ([]byte, int, error) {
	if err := checkPod(pod); err != nil {
		return nil, 0, err
	}
	ctx = r.ctx(ctx)
	latest, _, err := r.records(ctx, pod.UID)
	if err != nil {
		return nil, 0, err
	}
	rec := latest[name]
	if rec == nil || terminatedFromLabels(rec.labels) != nil {
		return nil, 0, fmt.Errorf("%w: %s", ErrNotRunning, name)
	}
	return r.execIn(ctx, rec.ctr, cmd, timeout)
}

// execIn runs cmd in ctr's task with its output captured and a timeout;
// ctx carries the containerd namespace.
func (r *Runtime) execIn(ctx context.Context, ctr client.Container, cmd []string, timeout time.Duration) ([]byte, int, error) {
	tctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		tctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	out := &capped{max: maxExecOutput}
	code, err := r.execProcess(tctx, ctr, ctr.ID(), ctr.ID(), cmd, ExecIO{Stdout: out, Stderr: out})
	if err != nil && ctx.Err() == nil && tctx.Err() != nil {
		return out.bytes(), 0, fmt.Errorf("%w after %v", ErrExecTimeout, timeout)
	}
	return out.bytes(), code, err
}

// capped is a writer that keeps the first max bytes written to it.
type capped struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (c *capped) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.buf.Bytes())
}
