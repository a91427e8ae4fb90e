package containerd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Config says where the daemon lives and how to run it.
type Config struct {
	// Dir holds config.toml, root/, state/, opt/, containerd.sock,
	// containerd.pid and containerd.log. Usually <data-dir>/containerd.
	Dir string
	// Binary is the containerd executable (default: "containerd" on PATH).
	Binary string
	// StartTimeout bounds the wait for the socket (default 20 s).
	StartTimeout time.Duration
	Logger       *slog.Logger
}

// Daemon is a running containerd.
type Daemon struct {
	// Address is the daemon's gRPC socket.
	Address string
	// PID is the daemon's process id.
	PID int
	// Started is true when this call started the daemon, false when it
	// reused one that was already running.
	Started bool

	exited chan struct{} // closed when a daemon this process started exits
}

// SocketPath is the daemon's gRPC socket under dir.
func SocketPath(dir string) string { return filepath.Join(dir, "containerd.sock") }
func pidPath(dir string) string    { return filepath.Join(dir, "containerd.pid") }
func logPath(dir string) string    { return filepath.Join(dir, "containerd.log") }
func configPath(dir string) string { return filepath.Join(dir, "config.toml") }

// unixPathMax is sun_path's size less the terminating NUL.
const unixPathMax = 107

// ConfigTOML renders the daemon's configuration for dir: root, state, socket
// and the opt directory inside dir, and the plugins weir does not use
// (CRI, snapshotters that cannot work here) disabled.
func ConfigTOML(dir string) string {
	q := strconv.Quote
	return strings.Join([]string{
		`version = 2`,
		`root = ` + q(filepath.Join(dir, "root")),
		`state = ` + q(filepath.Join(dir, "state")),
		`disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]`,
		`oom_score = 0`,
		``,
		`[grpc]`,
		`  address = ` + q(SocketPath(dir)),
		``,
		`[ttrpc]`,
		`  address = ` + q(SocketPath(dir)+".ttrpc"),
		``,
		`[plugins."io.containerd.internal.v1.opt"]`,
		`  path = ` + q(filepath.Join(dir, "opt")),
		``,
	}, "\n")
}

// Ensure returns a running daemon for cfg.Dir: the one already answering
// on its socket, or a new one it starts and waits for. It is safe to call
// from several processes at once.
func Ensure(ctx context.Context, cfg Config) (*Daemon, error) {
	if cfg.Dir == "" {
		return nil, errors.New("containerd: empty directory")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("containerd: %w", err)
	}
	if len(SocketPath(dir))+len(".ttrpc") > unixPathMax {
		return nil, fmt.Errorf("containerd: socket path %s is longer than a unix socket allows", SocketPath(dir)+".ttrpc")
	}
	if cfg.Binary == "" {
		cfg.Binary = "containerd"
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 20 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, fmt.Errorf("containerd: create %s: %w", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "start.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("containerd: open start lock: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("containerd: take start lock: %w", err)
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN)

	sock := SocketPath(dir)
	if pid, ok := runningPID(dir); ok {
		// A daemon is running (perhaps still starting): wait for it.
		if err := waitSocket(ctx, sock, cfg.StartTimeout, nil); err != nil {
			return nil, fmt.Errorf("containerd: daemon pid %d is running but its socket does not answer: %w", pid, err)
		}
		cfg.Logger.Info("containerd reused", slog.Int("pid", pid), slog.String("address", sock))
		return &Daemon{Address: sock, PID: pid}, nil
	}
	if dial(sock) == nil {
		return nil, fmt.Errorf("containerd: %s answers but %s names no live containerd; stop that process first", sock, pidPath(dir))
	}

	if err := os.WriteFile(configPath(dir), []byte(ConfigTOML(dir)), 0o600); err != nil {
		return nil, fmt.Errorf("containerd: write config: %w", err)
	}
	os.Remove(sock) // a stale socket from a daemon that died
	logf, err := os.OpenFile(logPath(dir), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("containerd: open log: %w", err)
	}
	defer logf.Close()
	// Not exec.CommandContext: the daemon must outlive ctx and this process.
	cmd := exec.Command(cfg.Binary, "--config", configPath(dir))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = dir
	cmd.Env = daemonEnv()
	// Its own session: no terminal signals, not in the agent's process
	// group, not killed with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("containerd: start %s: %w", cfg.Binary, err)
	}
	d := &Daemon{Address: sock, PID: cmd.Process.Pid, Started: true, exited: make(chan struct{})}
	go func() {
		// Reap it if it exits while this process lives; if this process
		// exits first, init inherits the daemon.
		_ = cmd.Wait()
		close(d.exited)
	}()
	if err := os.WriteFile(pidPath(dir), []byte(strconv.Itoa(d.PID)+"\n"), 0o600); err != nil {
		_ = d.kill()
		return nil, fmt.Errorf("containerd: write pid file: %w", err)
	}
	start := time.Now()
	if err := waitSocket(ctx, sock, cfg.StartTimeout, d.exited); err != nil {
		_ = d.kill()
		return nil, fmt.Errorf("containerd: wait for %s: %w (log: %s)", sock, err, tail(logPath(dir)))
	}
	cfg.Logger.Info("containerd started", slog.Int("pid", d.PID), slog.String("address", sock),
		slog.Duration("took", time.Since(start)))
	return d, nil
}

// Run supervises the daemon until ctx ends: it ensures one is running,
// then every interval (default 2 s) checks that its process lives and its
// socket answers, and starts a new one when not, calling started (if not
// nil) with every daemon it starts or adopts. When ctx ends the daemon
// keeps running. Run returns an error only if a daemon cannot be started.
func Run(ctx context.Context, cfg Config, interval time.Duration, started func(*Daemon)) error {
	if interval <= 0 {
		interval = 2 * time.Second
	}
	var cur *Daemon
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if cur == nil || !alive(cur.PID) || dial(cur.Address) != nil {
			if cur != nil && cfg.Logger != nil {
				cfg.Logger.Warn("containerd is gone; starting it again", slog.Int("pid", cur.PID))
			}
			d, err := Ensure(ctx, cfg)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			cur = d
			if started != nil {
				started(d)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Stop ends the daemon at dir (SIGTERM, then SIGKILL after timeout) and
// waits for it to exit. Containers keep running under their shims; Stop
// is for `weir down` and tests, which remove containers first. Stopping a
// daemon that is not running is not an error.
func Stop(ctx context.Context, dir string, timeout time.Duration) error {
	pid, ok := runningPID(dir)
	if !ok {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("containerd: stop pid %d: %w", pid, err)
	}
	deadline := time.Now().Add(timeout)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(5 * time.Second)
			timeout = 0
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	os.Remove(pidPath(dir))
	return nil
}

func (d *Daemon) kill() error {
	if err := syscall.Kill(d.PID, syscall.SIGKILL); err != nil {
		return err
	}
	<-d.exited
	return nil
}

// runningPID reads the pid file and reports whether that process is a
// live containerd.
func runningPID(dir string) (int, bool) {
	b, err := os.ReadFile(pidPath(dir))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || !alive(pid) {
		return 0, false
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(comm)) != "containerd" {
		return 0, false
	}
	return pid, true
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	return s[i+2] != 'Z' && s[i+2] != 'X'
}

func dial(sock string) error {
	c, err := net.DialTimeout("unix", sock, 200*time.Millisecond)
	if err != nil {
		return err
	}
	return c.Close()
}

func waitSocket(ctx context.Context, sock string, timeout time.Duration, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		err := dial(sock)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-exited:
			return errors.New("daemon exited")
		case <-t.C:
		}
	}
}

// daemonEnv is this process's environment with the usual system
// directories on PATH, where runc and containerd-shim-runc-v2 live.
func daemonEnv() []string {
	env := os.Environ()
	path := os.Getenv("PATH")
	for _, d := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		if !strings.Contains(":"+path+":", ":"+d+":") {
			path += ":" + d
		}
	}
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, "PATH=") && !strings.HasPrefix(e, "NOTIFY_SOCKET=") {
			out = append(out, e)
		}
	}
	return append(out, "PATH="+strings.TrimPrefix(path, ":"))
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}
