package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/containerd/containerd/v2/pkg/cio"
	"golang.org/x/sys/unix"

	"weir.dev/weir/nodeagent/crilog"
)

// Container output, as containerd's CRI plugin handles it: the shim
// writes a task's stdout and stderr into two FIFOs, and the runtime reads
// them and writes the attempt's log file in the CRI format (package
// crilog), which records a time and a stream per line. The shim keeps a
// read end of each FIFO open too, so while the agent is down the output
// waits in the pipe (64 KiB each) and the container blocks only once
// that fills; a new process re-attaches to the FIFOs (attachLogs) and
// appends to the same file. Output still in a pipe when its container
// exits while the agent is down is lost: the shim closes its ends then.
//
// Per container this costs two FIFOs, two goroutines parked in the
// netpoller (the read ends are non-blocking, so no thread waits), a 16
// KiB read buffer each and one open log file; nothing polls.

// logDrain bounds how long a reaped task's output is waited for: the
// shim closes its FIFO ends once the container's pipes reach EOF, which
// is when its last process exits; a straggler must not hold a sync.
const logDrain = 2 * time.Second

// logReadBuffer is each stream's read size; a pipe holds 64 KiB.
const logReadBuffer = 16 << 10

// logCopier copies one task's streams into its log file.
type logCopier struct {
	id      string
	readers []*os.File
	// holds are write ends the runtime opens with the read ends, so that
	// a read before the shim has opened its own does not see EOF; they
	// are let go once the task has started (release).
	holds   atomic.Pointer[[]int]
	file    *os.File
	left    atomic.Int32 // streams still copying
	done    chan struct{}
	stopped atomic.Bool
}

// fifoDir is the directory of task id's FIFOs: <pod dir>/fifo/<id>, so
// that removing a pod removes them too.
func (r *Runtime) fifoDir(id string) string {
	uid, _ := PodUIDFromContainerID(id)
	return filepath.Join(r.PodDir(uid), "fifo", id)
}

// taskIO is the cio.IO containerd holds for a task the runtime created.
// Copying belongs to the runtime, not to the client's task object: Wait
// returns at once and Close, which the client calls once the task is
// deleted (or its creation failed), ends copying and removes the FIFOs.
type taskIO struct {
	r   *Runtime
	id  string
	cfg cio.Config
}

func (t *taskIO) Config() cio.Config { return t.cfg }
func (t *taskIO) Cancel()            { t.r.releaseLogs(t.id) }
func (t *taskIO) Wait()              {}
func (t *taskIO) Close() error       { t.r.finishLogs(t.id); return nil }

// logCreator is the cio.Creator of a new task whose output goes to
// logPath: it makes the task's FIFOs and starts copying before the shim
// opens them.
func (r *Runtime) logCreator(logPath string) cio.Creator {
	return func(id string) (cio.IO, error) {
		dir := r.fifoDir(id)
		// Left over by a create that failed before a crash: new FIFOs.
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("runtime: clear fifos of %s: %w", id, err)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("runtime: fifos of %s: %w", id, err)
		}
		cfg := cio.Config{Stdout: filepath.Join(dir, "stdout"), Stderr: filepath.Join(dir, "stderr")}
		paths := []string{cfg.Stdout, cfg.Stderr}
		for _, p := range paths {
			if err := unix.Mkfifo(p, 0o600); err != nil {
				os.RemoveAll(dir)
				return nil, fmt.Errorf("runtime: make fifo %s: %w", p, err)
			}
		}
		if _, err := r.startCopier(id, paths, logPath, true); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		return &taskIO{r: r, id: id, cfg: cfg}, nil
	}
}

// startCopier opens the read ends of paths (and with hold, write ends
// that keep them from reading EOF until the shim has opened its own),
// opens logPath for appending, registers the copier and starts one
// goroutine per stream.
func (r *Runtime) startCopier(id string, paths []string, logPath string, hold bool) (c *logCopier, err error) {
	c = &logCopier{id: id, done: make(chan struct{})}
	var holds []int
	defer func() {
		if err != nil {
			for _, f := range c.readers {
				f.Close()
			}
			for _, fd := range holds {
				unix.Close(fd)
			}
		}
	}()
	for _, p := range paths {
		// Non-blocking: the open does not wait for a writer, and reads
		// wait in the netpoller rather than on a thread.
		f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NONBLOCK, 0)
		if err != nil {
			return nil, fmt.Errorf("runtime: open fifo %s: %w", p, err)
		}
		c.readers = append(c.readers, f)
		if hold {
			fd, err := unix.Open(p, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
			if err != nil {
				return nil, fmt.Errorf("runtime: open fifo %s: %w", p, err)
			}
			holds = append(holds, fd)
		}
	}
	if err := os.MkdirAll(filepath.Dir(logPath), 0o750); err != nil {
		return nil, fmt.Errorf("runtime: log dir of %s: %w", id, err)
	}
	c.file, err = os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("runtime: open log of %s: %w", id, err)
	}
	c.holds.Store(&holds)
	w := crilog.NewWriter(c.file, r.cfg.Now, func(err error) {
		r.cfg.Logger.Warn("write container log", slog.String("container", id), slog.Any("error", err))
	})
	streams := []crilog.Stream{crilog.Stdout, crilog.Stderr}
	c.left.Store(int32(len(c.readers)))
	r.logsMu.Lock()
	if old := r.copiers[id]; old != nil {
		// A copier of an earlier create of the same id whose task never
		// came to be: it reads FIFOs that no longer exist.
		old.stop()
	}
	r.copiers[id] = c
	r.logsMu.Unlock()
	for i, f := range c.readers {
		go c.copy(f, w.Stream(streams[i]))
	}
	return c, nil
}

// copy copies one stream until EOF (the shim closed its end) or stop;
// the last stream to end closes the file.
func (c *logCopier) copy(f *os.File, sw *crilog.StreamWriter) {
	buf := make([]byte, logReadBuffer)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			sw.Write(buf[:n])
		}
		if err != nil {
			break
		}
	}
	// What was read is written, an unterminated line as a P record (a
	// re-attached copier continues it).
	sw.Flush()
	f.Close()
	if c.left.Add(-1) == 0 {
		c.file.Close()
		close(c.done)
	}
}

// release closes the holding write ends: from now on the FIFOs reach EOF
// when the shim closes its ends.
func (c *logCopier) release() {
	if p := c.holds.Swap(nil); p != nil {
		for _, fd := range *p {
			unix.Close(fd)
		}
	}
}

// stop ends copying without waiting for EOF: what is still in the pipes
// stays there for the next reader.
func (c *logCopier) stop() {
	c.release()
	if c.stopped.Swap(true) {
		return
	}
	for _, f := range c.readers {
		// Wakes a Read parked in the netpoller; the file is closed
		// once it returns.
		f.Close()
	}
}

// wait waits up to d for the copier to end; it reports whether it has.
func (c *logCopier) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.done:
		return true
	case <-t.C:
		return false
	}
}

func (r *Runtime) copier(id string) *logCopier {
	r.logsMu.Lock()
	defer r.logsMu.Unlock()
	return r.copiers[id]
}

// releaseLogs lets go of task id's holding write ends, once the shim
// has opened its own (after Start, or a failed one).
func (r *Runtime) releaseLogs(id string) {
	if c := r.copier(id); c != nil {
		c.release()
	}
}

// drainLogs waits, up to logDrain, for a stopped task's output to be in
// its log file.
func (r *Runtime) drainLogs(id string) {
	if c := r.copier(id); c != nil {
		c.release()
		if !c.wait(logDrain) {
			r.cfg.Logger.Warn("container output still open after its task stopped", slog.String("container", id))
		}
	}
}

// finishLogs ends task id's copying once its task is deleted: it drains
// what is left (up to logDrain), closes the log file and removes the
// FIFOs. Idempotent; also for tasks this process never copied.
func (r *Runtime) finishLogs(id string) {
	r.logsMu.Lock()
	c := r.copiers[id]
	delete(r.copiers, id)
	r.logsMu.Unlock()
	if c != nil {
		c.release()
		if !c.wait(logDrain) {
			c.stop()
			<-c.done
		}
	}
	if err := os.RemoveAll(r.fifoDir(id)); err != nil {
		r.cfg.Logger.Warn("remove fifos", slog.String("container", id), slog.Any("error", err))
	}
}

// attachLogs makes sure the output of rec's task, which is not stopped,
// is being copied: a task started by an earlier agent process is
// re-attached to through the FIFO paths containerd keeps, once per task
// per process. A failure is logged, not returned: the container runs on
// and the next observation tries again.
func (r *Runtime) attachLogs(ctx context.Context, rec *record, logPath string) {
	id := rec.ctr.ID()
	if r.copier(id) != nil {
		return
	}
	_, err := rec.ctr.Task(ctx, func(fs *cio.FIFOSet) (cio.IO, error) {
		var paths []string
		for _, p := range []string{fs.Stdout, fs.Stderr} {
			if p == "" || (p == fs.Stderr && fs.Terminal) {
				continue
			}
			if fi, err := os.Stat(p); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
				// Not a FIFO: a task an older weir started with the shim
				// writing the log file itself. Nothing to copy.
				return nil, errNoFIFOs
			}
			paths = append(paths, p)
		}
		if _, err := r.startCopier(id, paths, logPath, false); err != nil {
			return nil, err
		}
		return &taskIO{r: r, id: id, cfg: fs.Config}, nil
	})
	switch {
	case errors.Is(err, errNoFIFOs):
		// Remember it, so the task is looked at once only.
		c := &logCopier{id: id, done: make(chan struct{})}
		close(c.done)
		c.stopped.Store(true)
		r.logsMu.Lock()
		r.copiers[id] = c
		r.logsMu.Unlock()
	case err != nil:
		r.cfg.Logger.Warn("attach to container output", slog.String("container", id), slog.Any("error", err))
	default:
		r.cfg.Logger.Debug("attached to container output", slog.String("container", id))
	}
}

var errNoFIFOs = errors.New("runtime: task output is not in fifos")

// Close stops copying container output; the containers run on, their
// output waiting in the FIFOs for the next Runtime to attach to them.
// Idempotent. A Runtime used after Close starts copying again for the
// tasks it starts or observes.
func (r *Runtime) Close() error {
	r.logsMu.Lock()
	cs := r.copiers
	r.copiers = map[string]*logCopier{}
	r.logsMu.Unlock()
	for _, c := range cs {
		c.stop()
	}
	for _, c := range cs {
		<-c.done
	}
	return nil
}
