package etcdproc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"weir.dev/weir/test/topology"
)

// Binary is the etcd server that Start and StartCluster run: Debian's
// etcd-server package installs it (make deps).
const Binary = "/usr/bin/etcd"

// ReadyTimeout bounds how long Start, StartCluster, Restart and WaitHealthy
// wait for members to report {"health":"true"}.
const ReadyTimeout = 30 * time.Second

// ErrNotRunning is returned by Kill for a member with no running process.
var ErrNotRunning = errors.New("etcdproc: member not running")

// errAddrInUse marks a start that lost the race for a port picked by
// topology.FreePorts; StartCluster retries once with new ports.
var errAddrInUse = errors.New("address already in use")

const (
	logTailBytes     = 6 << 10 // in a start or restart error
	cleanupTailBytes = 2 << 10 // per member, logged when a test fails
	pollInterval     = 100 * time.Millisecond
)

// Cluster is a set of etcd members started together. Its methods are safe
// for concurrent use; Members must not be modified.
type Cluster struct {
	Members []*Member

	startFailed bool // the start error already carries the log tails
}

// Member is one etcd process. Its exported fields are fixed for the life of
// the member (a Restart keeps them); its methods are safe for concurrent use.
type Member struct {
	Name      string
	ClientURL string // http://127.0.0.1:port, the only client listener
	PeerURL   string // http://127.0.0.1:port
	DataDir   string // kept across Kill and Restart
	LogPath   string // the process's stdout and stderr, appended on Restart

	cluster *Cluster
	args    []string

	mu   sync.Mutex
	proc *process // nil when not started or killed
}

type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and been reaped
	err  error         // cmd.Wait's result; read only after done is closed
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Start launches a single-member etcd on free loopback ports with its data
// dir under t.TempDir() and waits until it reports healthy. The process is
// killed in t.Cleanup. Start fails the test (t.Fatalf) if etcd is not
// installed or does not become healthy within ReadyTimeout.
func Start(t testing.TB) *Cluster {
	t.Helper()
	return StartCluster(t, 1)
}

// StartCluster launches an n-member cluster on loopback, bootstrapped
// statically with --initial-cluster, and waits until every member reports
// healthy. Processes are killed in t.Cleanup. It fails the test (t.Fatalf)
// if etcd is not installed or the cluster does not become healthy within
// ReadyTimeout; a start that lost a port to another process is retried once
// with new ports.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("etcdproc: cluster size %d, want >= 1", n)
	}
	if _, err := os.Stat(Binary); err != nil {
		t.Fatalf("etcd not installed: run make deps (%v)", err)
	}
	dir := t.TempDir()
	for attempt := 1; ; attempt++ {
		c := newCluster(t, filepath.Join(dir, fmt.Sprintf("try%d", attempt)), n)
		t.Cleanup(func() { c.cleanup(t) })
		err := c.launch()
		if err == nil {
			return c
		}
		c.killAll()
		c.startFailed = true
		if errors.Is(err, errAddrInUse) && attempt == 1 {
			t.Logf("etcdproc: retrying with new ports: %v", err)
			continue
		}
		t.Fatalf("etcdproc: start %d-member cluster: %v", n, err)
	}
}

func newCluster(t testing.TB, dir string, n int) *Cluster {
	t.Helper()
	ports := topology.FreePorts(t, 2*n)
	token := topology.UniqueName(t, "etcdproc-")
	c := &Cluster{}
	var initial []string
	for i := range n {
		name := fmt.Sprintf("etcd%d", i)
		m := &Member{
			Name:      name,
			ClientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
			DataDir:   filepath.Join(dir, name+".etcd"),
			LogPath:   filepath.Join(dir, name+".log"),
			cluster:   c,
		}
		c.Members = append(c.Members, m)
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatalf("etcdproc: %v", err)
	}
	for _, m := range c.Members {
		m.args = []string{
			"--name", m.Name,
			"--data-dir", m.DataDir,
			"--listen-client-urls", m.ClientURL,
			"--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", m.PeerURL,
			"--initial-advertise-peer-urls", m.PeerURL,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new",
			"--initial-cluster-token", token,
			"--logger", "zap",
			"--log-outputs", "stderr",
		}
	}
	return c
}

// launch starts every member, then waits for all of them to be healthy: a
// member of a multi-member cluster cannot be healthy before a quorum runs.
func (c *Cluster) launch() error {
	for _, m := range c.Members {
		if err := m.start(); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), ReadyTimeout)
	defer cancel()
	return waitReady(ctx, c.Members, true)
}

// Endpoints returns the client URLs of all members, running or not, in
// member order.
func (c *Cluster) Endpoints() []string {
	eps := make([]string, len(c.Members))
	for i, m := range c.Members {
		eps[i] = m.ClientURL
	}
	return eps
}

// WaitHealthy waits up to ReadyTimeout until every running member reports
// healthy, and fails the test otherwise. Use it after killing the leader or
// restarting members to wait for a new leader.
func (c *Cluster) WaitHealthy(t testing.TB) {
	t.Helper()
	var running []*Member
	for _, m := range c.Members {
		if m.Running() {
			running = append(running, m)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), ReadyTimeout)
	defer cancel()
	if err := waitReady(ctx, running, true); err != nil {
		t.Fatalf("etcdproc: %v", err)
	}
}

func (c *Cluster) running() int {
	n := 0
	for _, m := range c.Members {
		if m.Running() {
			n++
		}
	}
	return n
}

func (c *Cluster) killAll() {
	for _, m := range c.Members {
		_ = m.Kill()
	}
}

// cleanup kills every member and, when the test failed, logs the tail of
// each member's log so a failure explains itself.
func (c *Cluster) cleanup(t testing.TB) {
	c.killAll()
	if !t.Failed() || c.startFailed {
		return
	}
	for _, m := range c.Members {
		if tail := logTail(m.LogPath, cleanupTailBytes); tail != "" {
			t.Logf("etcdproc: tail of %s:\n%s", m.LogPath, tail)
		}
	}
}

// Running reports whether the member's process was started and has not
// exited.
func (m *Member) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.proc != nil && !m.proc.exited()
}

// Pid returns the process id of the running member, or 0.
func (m *Member) Pid() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc == nil || m.proc.exited() {
		return 0
	}
	return m.proc.cmd.Process.Pid
}

// Kill sends SIGKILL to the member's process and waits until it has exited.
// It returns ErrNotRunning if the member was not started or already killed;
// a process that exited on its own is reaped and Kill returns nil.
func (m *Member) Kill() error {
	m.mu.Lock()
	p := m.proc
	m.proc = nil
	m.mu.Unlock()
	if p == nil {
		return ErrNotRunning
	}
	// Process.Signal is safe against a process that was already reaped.
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("etcdproc: kill %s: %w", m.Name, err)
	}
	<-p.done
	return nil
}

// Restart starts the member again with the same data dir, ports and flags.
// It waits up to ReadyTimeout for the member to report healthy when a quorum
// of the cluster is running (this member included), and otherwise only until
// its client port accepts connections: without a quorum etcd neither serves
// requests nor can be healthy, so call Cluster.WaitHealthy once enough
// members are back. On failure
// the new process is killed and the error carries the tail of its log. It
// returns an error if the member is still running.
func (m *Member) Restart(t testing.TB) error {
	t.Helper()
	if err := m.start(); err != nil {
		return err
	}
	quorum := m.cluster.running() > len(m.cluster.Members)/2
	ctx, cancel := context.WithTimeout(context.Background(), ReadyTimeout)
	defer cancel()
	if err := waitReady(ctx, []*Member{m}, quorum); err != nil {
		_ = m.Kill()
		return fmt.Errorf("etcdproc: restart: %w", err)
	}
	return nil
}

func (m *Member) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc != nil && !m.proc.exited() {
		return fmt.Errorf("etcdproc: start %s: already running (pid %d)", m.Name, m.proc.cmd.Process.Pid)
	}
	logf, err := os.OpenFile(m.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("etcdproc: start %s: %w", m.Name, err)
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.Command(Binary, m.args...)
	cmd.Env = environ()
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := startOnLockedThread(cmd); err != nil {
		return fmt.Errorf("etcdproc: start %s: %w", m.Name, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	m.proc = p
	return nil
}

// environ is the test's environment without ETCD_* variables, which etcd
// would read as flags, plus the opt-in etcd 3.4 needs on architectures it
// does not qualify.
func environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") && !strings.HasPrefix(kv, "ETCDCTL_") {
			env = append(env, kv)
		}
	}
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "ppc64le" {
		env = append(env, "ETCD_UNSUPPORTED_ARCH="+runtime.GOARCH)
	}
	return env
}

// Pdeathsig fires when the thread that forked the child exits, not the
// process (golang/go#27505). Go retires a thread whenever a goroutine that
// locked it exits still locked, which weir's namespace code does on purpose
// after setns; a child forked from such a thread would be killed at random.
// So every fork happens on one goroutine that locks its thread and never
// exits.
var spawner struct {
	once sync.Once
	reqs chan spawnRequest
}

type spawnRequest struct {
	cmd  *exec.Cmd
	errc chan error
}

func startOnLockedThread(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: see spawner
			for r := range spawner.reqs {
				r.errc <- r.cmd.Start()
			}
		}()
	})
	errc := make(chan error, 1)
	spawner.reqs <- spawnRequest{cmd: cmd, errc: errc}
	return <-errc
}

// waitReady polls /health of every given member until each reports
// {"health":"true"}, or, when healthy is false, until each accepts TCP
// connections on its client URL.
// It fails as soon as any of the processes exits, since a cluster missing a
// member may never become healthy, and its errors carry the tail of the
// failing member's log.
func waitReady(ctx context.Context, members []*Member, healthy bool) error {
	type pending struct {
		m    *Member
		p    *process
		last error
	}
	var todo []*pending
	for _, m := range members {
		m.mu.Lock()
		p := m.proc
		m.mu.Unlock()
		if p == nil {
			return fmt.Errorf("%w: %s", ErrNotRunning, m.Name)
		}
		todo = append(todo, &pending{m: m, p: p, last: errors.New("not polled yet")})
	}
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		for _, w := range todo {
			if w.p.exited() {
				return w.m.failure(fmt.Errorf("exited: %v", w.p.err))
			}
		}
		left := todo[:0]
		for _, w := range todo {
			if !healthy {
				// etcd serves HTTP only once it has published itself
				// through raft, which needs a quorum; before that its
				// client listener is bound but silent.
				if w.last = w.m.checkListening(ctx); w.last == nil {
					continue
				}
				left = append(left, w)
				continue
			}
			ok, err := w.m.checkHealth(ctx, client)
			switch {
			case err == nil && ok:
				continue
			case err == nil:
				w.last = errors.New(`/health did not report "true"`)
			default:
				w.last = err
			}
			left = append(left, w)
		}
		todo = left
		if len(todo) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return todo[0].m.failure(fmt.Errorf("not ready after %v: %v", ReadyTimeout, todo[0].last))
		case <-time.After(pollInterval):
		}
	}
}

// checkListening dials the member's client port.
func (m *Member) checkListening(ctx context.Context) error {
	u, err := url.Parse(m.ClientURL)
	if err != nil {
		return err
	}
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return err
	}
	return conn.Close()
}

// checkHealth returns whether /health reported healthy; err is set only
// when the member did not answer with a health document.
func (m *Member) checkHealth(ctx context.Context, client *http.Client) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.ClientURL+"/health", nil)
	if err != nil {
		return false, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var h struct {
		Health string `json:"health"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&h); err != nil {
		return false, fmt.Errorf("/health: %s: %w", resp.Status, err)
	}
	return h.Health == "true", nil
}

func (m *Member) failure(err error) error {
	tail := logTail(m.LogPath, logTailBytes)
	if strings.Contains(tail, "address already in use") {
		err = fmt.Errorf("%w: %w", errAddrInUse, err)
	}
	return fmt.Errorf("member %s (%s): %w\n--- tail of %s ---\n%s", m.Name, m.ClientURL, err, m.LogPath, tail)
}

// logTail returns about the last n bytes of a log file, starting at a line
// boundary.
func logTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(fi.Size()-n, 0)
	b, err := io.ReadAll(io.NewSectionReader(f, off, fi.Size()-off))
	if err != nil {
		return ""
	}
	if off > 0 {
		if i := strings.IndexByte(string(b), '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return strings.TrimRight(string(b), "\n")
}
