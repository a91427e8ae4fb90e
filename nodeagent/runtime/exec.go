package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	corev1 "k8s.io/api/core/v1"
)

// NotRunningError is returned by Exec for a container without a running
// task; its message is fit for the caller.
type NotRunningError struct{ Message string }

func (e *NotRunningError) Error() string { return e.Message }

// Is makes every NotRunningError match ErrNotRunning.
func (e *NotRunningError) Is(target error) bool { return target == ErrNotRunning }

// NoLogError is returned by ContainerLog when the asked-for attempt has no
// log (never started, or no previous attempt); worded as the kubelet words
// it.
type NoLogError struct{ Message string }

func (e *NoLogError) Error() string { return e.Message }

// TerminalSize is a TTY's size in characters.
type TerminalSize struct{ Width, Height uint16 }

// ExecIO are the streams of an exec'd process. Nil streams are not
// attached; with TTY the process's stderr is its terminal, so Stderr is
// unused.
type ExecIO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	TTY            bool
	// Resize, if set, carries terminal size changes (TTY only).
	Resize <-chan TerminalSize
}

// execDrain bounds how long output is read after the exec'd process
// exited: a background child that keeps stdout open must not hold the
// stream forever (containerd's CRI drains the same way).
const execDrain = 5 * time.Second

// Exec runs cmd in the running container of pod with the container's
// process settings (environment, working directory, user, capabilities),
// copies its streams and returns its exit code once it has exited. A
// canceled ctx kills the process.
func (r *Runtime) Exec(ctx context.Context, pod *corev1.Pod, container string, cmd []string, sio ExecIO) (int, error) {
	if len(cmd) == 0 {
		return 0, errors.New("runtime: exec: empty command")
	}
	ctx = r.ctx(ctx)
	latest, _, err := r.records(ctx, pod.UID)
	if err != nil {
		return 0, err
	}
	rec := latest[container]
	if rec == nil {
		return 0, &NotRunningError{fmt.Sprintf("container %q in pod %q has not been created", container, pod.Name)}
	}
	return r.execProcess(ctx, rec.ctr, container, pod.Name, cmd, sio)
}

// execProcess runs cmd in ctr's running task (ctx carries the containerd
// namespace): the core of Exec, ExecSync and exec hooks.
func (r *Runtime) execProcess(ctx context.Context, ctr client.Container, container, podName string, cmd []string, sio ExecIO) (int, error) {
	if len(cmd) == 0 {
		return 0, errors.New("runtime: exec: empty command")
	}
	task, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return 0, &NotRunningError{fmt.Sprintf("container %q in pod %q is not running", container, podName)}
	}
	if err != nil {
		return 0, fmt.Errorf("runtime: exec: task of %s: %w", ctr.ID(), err)
	}
	st, err := task.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("runtime: exec: status of %s: %w", ctr.ID(), err)
	}
	if st.Status != client.Running {
		return 0, &NotRunningError{fmt.Sprintf("container %q in pod %q is not running (%s)", container, podName, st.Status)}
	}
	spec, err := ctr.Spec(ctx)
	if err != nil {
		return 0, fmt.Errorf("runtime: exec: spec of %s: %w", ctr.ID(), err)
	}
	// The container's own process settings, with the asked-for command.
	pspec := *spec.Process
	pspec.Args = cmd
	pspec.CommandLine = ""
	pspec.Terminal = sio.TTY
	pspec.Env = append([]string(nil), spec.Process.Env...)
	if sio.TTY {
		pspec.Env = append(pspec.Env, "TERM=xterm")
	}

	id, err := execID()
	if err != nil {
		return 0, err
	}
	fifos, err := cio.NewFIFOSetInDir("", id, sio.TTY)
	if err != nil {
		return 0, fmt.Errorf("runtime: exec: make fifos: %w", err)
	}
	if sio.Stdin == nil {
		fifos.Stdin = ""
	}
	if sio.Stderr == nil && !sio.TTY {
		fifos.Stderr = ""
	}
	if sio.Stdout == nil {
		fifos.Stdout = ""
	}
	dio, err := cio.NewDirectIO(ctx, fifos)
	if err != nil {
		fifos.Close()
		return 0, fmt.Errorf("runtime: exec: open fifos: %w", err)
	}
	defer dio.Close()
	proc, err := task.Exec(ctx, id, &pspec, func(string) (cio.IO, error) { return dio, nil })
	if err != nil {
		dio.Cancel()
		return 0, fmt.Errorf("runtime: exec in %s: %w", ctr.ID(), err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := proc.Delete(dctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			r.cfg.Logger.Warn("delete exec process", slog.String("container", ctr.ID()), slog.Any("error", err))
		}
	}()
	exitc, err := proc.Wait(ctx)
	if err != nil {
		return 0, fmt.Errorf("runtime: exec: wait: %w", err)
	}
	if err := proc.Start(ctx); err != nil {
		return 0, fmt.Errorf("runtime: exec: start %v in %s: %w", cmd, ctr.ID(), err)
	}

	var out sync.WaitGroup
	copyOut := func(w io.Writer, rc io.ReadCloser) {
		if w == nil || rc == nil {
			return
		}
		out.Go(func() { _, _ = io.Copy(w, rc) })
	}
	copyOut(sio.Stdout, dio.Stdout)
	if !sio.TTY {
		copyOut(sio.Stderr, dio.Stderr)
	}
	if sio.Stdin != nil && dio.Stdin != nil {
		go func() {
			_, _ = io.Copy(dio.Stdin, sio.Stdin)
			// The end of the caller's stdin is the end of the process's:
			// close our end of the fifo, then the shim's pipe to the process.
			dio.Stdin.Close()
			if err := proc.CloseIO(context.WithoutCancel(ctx), client.WithStdinCloser); err != nil && !errdefs.IsNotFound(err) {
				r.cfg.Logger.Debug("close exec stdin", slog.String("container", ctr.ID()), slog.Any("error", err))
			}
		}()
	}
	if sio.TTY && sio.Resize != nil {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case sz, ok := <-sio.Resize:
					if !ok {
						return
					}
					if err := proc.Resize(ctx, uint32(sz.Width), uint32(sz.Height)); err != nil && !errdefs.IsNotFound(err) {
						r.cfg.Logger.Debug("resize exec terminal", slog.String("container", ctr.ID()), slog.Any("error", err))
					}
				}
			}
		}()
	}

	var code uint32
	select {
	case es := <-exitc:
		c, _, err := es.Result()
		if err != nil {
			return 0, fmt.Errorf("runtime: exec: wait for %v in %s: %w", cmd, ctr.ID(), err)
		}
		code = c
	case <-ctx.Done():
		_ = proc.Kill(context.WithoutCancel(ctx), syscall.SIGKILL)
		<-exitc
		return 0, ctx.Err()
	}
	drained := make(chan struct{})
	go func() { out.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(execDrain):
		dio.Cancel()
		<-drained
	}
	return int(code), nil
}

func execID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("runtime: exec id: %w", err)
	}
	return "exec-" + hex.EncodeToString(b), nil
}

// LogFile is one container attempt's log.
type LogFile struct {
	Path string
	// Running reports whether the attempt is still running, so a follower
	// knows whether more may come; it is nil for an attempt that ended.
	Running func(ctx context.Context) bool
}

// ContainerLog finds the log of container in pod: its latest attempt, or
// the one before with previous. The error wraps ErrNoLog, worded as the
// kubelet words it, when there is none.
func (r *Runtime) ContainerLog(ctx context.Context, pod *corev1.Pod, container string, previous bool) (LogFile, error) {
	ctx = r.ctx(ctx)
	latest, all, err := r.records(ctx, pod.UID)
	if err != nil {
		return LogFile{}, err
	}
	rec := latest[container]
	if previous {
		var prev *record
		if rec != nil {
			for _, a := range all {
				if a.name == container && a.attempt == rec.attempt-1 {
					prev = a
				}
			}
		}
		if prev == nil {
			return LogFile{}, &NoLogError{fmt.Sprintf("previous terminated container %q in pod %q not found", container, pod.Name)}
		}
		return LogFile{Path: r.LogPath(pod.UID, container, prev.attempt)}, nil
	}
	path := ""
	if rec != nil {
		path = r.LogPath(pod.UID, container, rec.attempt)
	}
	if _, serr := os.Stat(path); rec == nil || serr != nil {
		reason := "ContainerCreating"
		if w := r.state(pod.UID).waitingReason(container); w != "" {
			reason = w
		}
		return LogFile{}, &NoLogError{fmt.Sprintf("container %q in pod %q is waiting to start: %s", container, pod.Name, reason)}
	}
	lf := LogFile{Path: path}
	if terminatedFromLabels(rec.labels) == nil {
		ctr := rec.ctr
		lf.Running = func(ctx context.Context) bool {
			ctx = r.ctx(ctx)
			task, err := ctr.Task(ctx, nil)
			if err != nil {
				return false
			}
			st, err := task.Status(ctx)
			return err == nil && (st.Status == client.Running || st.Status == client.Created || st.Status == client.Paused)
		}
	}
	return lf, nil
}

// waitingReason is the reason container waits, if a sync is not holding the
// pod (a sync may be pulling an image; a log request does not wait for it).
func (ps *podState) waitingReason(container string) string {
	if !ps.mu.TryLock() {
		return ""
	}
	defer ps.mu.Unlock()
	if w := ps.waiting[container]; w != nil {
		return w.Reason
	}
	return ""
}
