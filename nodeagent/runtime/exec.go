package runtime

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	corev1 "k8s.io/api/core/v1"
)

// ErrExecTimeout is returned by ExecSync when the command outlived its
// timeout (it was killed).
var ErrExecTimeout = errors.New("runtime: command timed out")

// ErrNotRunning is returned by ExecSync when the container has no running
// task to run the command in.
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

// execIn runs cmd in ctr's task; ctx carries the containerd namespace.
func (r *Runtime) execIn(ctx context.Context, ctr client.Container, cmd []string, timeout time.Duration) ([]byte, int, error) {
	if len(cmd) == 0 {
		return nil, 0, errors.New("runtime: exec: empty command")
	}
	task, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil, 0, fmt.Errorf("%w: %s", ErrNotRunning, ctr.ID())
	}
	if err != nil {
		return nil, 0, fmt.Errorf("runtime: task of %s: %w", ctr.ID(), err)
	}
	spec, err := ctr.Spec(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("runtime: spec of %s: %w", ctr.ID(), err)
	}
	if spec.Process == nil {
		return nil, 0, fmt.Errorf("runtime: container %s has no process spec", ctr.ID())
	}
	// The container's process with another command: same env, cwd, user,
	// capabilities and limits.
	pspec := *spec.Process
	pspec.Args = cmd
	pspec.Terminal = false
	pspec.ConsoleSize = nil

	var idb [8]byte
	_, _ = rand.Read(idb[:])
	execID := "exec-" + hex.EncodeToString(idb[:])
	out := &capped{max: maxExecOutput}
	proc, err := task.Exec(ctx, execID, &pspec, cio.NewCreator(cio.WithStreams(nil, out, out)))
	if err != nil {
		return nil, 0, fmt.Errorf("runtime: exec in %s: %w", ctr.ID(), err)
	}
	// The process record goes whatever happens; a fresh context so that
	// a cancelled ctx does not leave it behind in the shim.
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_, _ = proc.Delete(dctx, client.WithProcessKill)
	}()
	exitC, err := proc.Wait(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("runtime: wait for exec in %s: %w", ctr.ID(), err)
	}
	if err := proc.Start(ctx); err != nil {
		return nil, 0, fmt.Errorf("runtime: start exec in %s: %w", ctr.ID(), err)
	}
	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	select {
	case st := <-exitC:
		code, _, err := st.Result()
		if err != nil {
			return nil, 0, fmt.Errorf("runtime: exec in %s: %w", ctr.ID(), err)
		}
		// The exit can come before the output is drained: wait for the
		// copy to finish, but not for a background child that keeps
		// the pipes open.
		drained := make(chan struct{})
		go func() { proc.IO().Wait(); close(drained) }()
		select {
		case <-drained:
		case <-time.After(time.Second):
		}
		return out.bytes(), int(code), nil
	case <-timer:
		kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = proc.Kill(kctx, syscall.SIGKILL)
		select {
		case <-exitC:
		case <-kctx.Done():
		}
		return out.bytes(), 0, fmt.Errorf("%w after %v", ErrExecTimeout, timeout)
	case <-ctx.Done():
		kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = proc.Kill(kctx, syscall.SIGKILL)
		return out.bytes(), 0, ctx.Err()
	}
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
