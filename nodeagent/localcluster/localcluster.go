// Package localcluster is `weir up`: a whole cluster on one machine — the
// control plane in this process (embedded etcd), an underlay bridge, and
// one simulated node per name, each a network namespace running its own
// `weir agent` process. It owns the cluster's data dir layout, its pid
// file and the node processes; behaviour lives in the packages it starts.
package localcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"weir.dev/weir/controlplane/auth"
	"weir.dev/weir/controlplane/server"
	"weir.dev/weir/datapath/ebpf"
	"weir.dev/weir/nodeagent/containerd"
	"weir.dev/weir/nodeagent/runtime"
	"weir.dev/weir/nodeagent/simnode"
)

// Config configures a local cluster.
type Config struct {
	DataDir   string
	Nodes     []string
	Underlay  simnode.Underlay
	Dataplane string // for the agents
	// InsecureRegistries are passed to the agents (--insecure-registry).
	InsecureRegistries []string
	// Binary is the weir executable the agents run (default: this one).
	Binary string
	// APIPort is the server's port on loopback and on the gateway.
	APIPort int
	Logger  *slog.Logger
	// Ready receives the admin kubeconfig path once every node is Ready.
	Ready chan<- string
}

// PidFile is where a detached `weir up` records its process.
func PidFile(dataDir string) string { return filepath.Join(dataDir, "weir.pid") }

// Run brings the cluster up and keeps it until ctx ends, then stops the
// agents and the server; the namespaces and the bridge stay for `weir down`.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		cfg.Binary = exe
	}
	if cfg.APIPort == 0 {
		cfg.APIPort = 6443
	}
	if len(cfg.Nodes) == 0 {
		return errors.New("weir up: at least one node is needed")
	}
	if err := cfg.Underlay.Ensure(); err != nil {
		return err
	}
	if err := writeLayout(cfg); err != nil {
		return err
	}
	gw := cfg.Underlay.Gateway()
	ready := make(chan *server.Info, 1)
	sctx, stopServer := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServer()
	serr := make(chan error, 1)
	go func() {
		serr <- server.Run(sctx, server.Config{
			DataDir: cfg.DataDir,
			Listen: []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.APIPort)),
				net.JoinHostPort(gw.String(), strconv.Itoa(cfg.APIPort))},
			EtcdClientAddr: "127.0.0.1:0", EtcdPeerAddr: "127.0.0.1:0",
			Loops: server.DefaultLoops(), Logger: cfg.Logger, Ready: ready,
		})
	}()
	var info *server.Info
	select {
	case info = <-ready:
	case err := <-serr:
		return fmt.Errorf("start the control plane: %w", err)
	case <-ctx.Done():
		return ctx.Err()
	}

	// One containerd for the machine, in the host's namespaces and its own
	// session, before any agent (which runs inside a node namespace).
	ctrDir := filepath.Join(cfg.DataDir, "containerd")
	if _, err := containerd.Ensure(ctx, containerd.Config{Dir: ctrDir, Logger: cfg.Logger}); err != nil {
		return err
	}
	var (
		wg    sync.WaitGroup
		procs []*exec.Cmd
	)
	stopAgents := func() {
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGTERM)
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			for _, p := range procs {
				_ = p.Process.Kill()
			}
			<-done
		}
	}
	defer stopAgents()
	for i, name := range cfg.Nodes {
		n, err := cfg.Underlay.EnsureNode(name, cfg.Underlay.NodeIP(i))
		if err != nil {
			return err
		}
		dir := filepath.Join(cfg.DataDir, "nodes", name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		logf, err := os.OpenFile(filepath.Join(dir, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		cmd := exec.Command(cfg.Binary, "agent",
			"--server", "https://"+net.JoinHostPort(gw.String(), strconv.Itoa(cfg.APIPort)),
			"--ca-file", filepath.Join(cfg.DataDir, "pki", auth.CACertFile),
			"--token-file", filepath.Join(cfg.DataDir, "pki", "bootstrap.token"),
			"--node-name", name, "--node-ip", n.IP.String(), "--data-dir", dir,
			"--runtime", "containerd", "--containerd-dir", ctrDir, "--node-netns", "/run/netns/"+n.Netns,
			"--dataplane", cfg.Dataplane)
		for _, h := range cfg.InsecureRegistries {
			cmd.Args = append(cmd.Args, "--insecure-registry", h)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		// Own process group: a terminal's ^C reaches `weir up`, which then
		// stops the agents in order.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := n.Start(cmd); err != nil {
			logf.Close()
			return fmt.Errorf("start agent on %s: %w", name, err)
		}
		procs = append(procs, cmd)
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := cmd.Wait()
			logf.Close()
			if ctx.Err() == nil {
				cfg.Logger.Error("agent exited", slog.String("node", name), slog.Any("error", err))
			}
		}()
	}
	if err := waitReady(ctx, info.Kubeconfig, cfg.Nodes); err != nil {
		return err
	}
	cfg.Logger.Info("cluster ready", slog.Any("nodes", cfg.Nodes), slog.String("kubeconfig", info.Kubeconfig))
	if cfg.Ready != nil {
		cfg.Ready <- info.Kubeconfig
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-serr:
		return fmt.Errorf("control plane stopped: %w", err)
	}
}

// waitReady polls until every node reports Ready (deadline 120 s).
func waitReady(ctx context.Context, kubeconfig string, nodes []string) error {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(120 * time.Second)
	for {
		notReady := []string{}
		for _, name := range nodes {
			n, err := c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil || !isReady(n) {
				notReady = append(notReady, name)
			}
		}
		if len(notReady) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nodes %v not Ready after 120 s (see their agent.log under the data dir)", notReady)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func isReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// layout records what `weir up` built, so `weir down` removes exactly that.
type layout struct {
	Bridge string   `json:"bridge"`
	Prefix string   `json:"prefix"`
	Nodes  []string `json:"nodes"`
}

func layoutFile(dataDir string) string { return filepath.Join(dataDir, "cluster.json") }

func writeLayout(cfg Config) error {
	b, err := json.Marshal(layout{Bridge: cfg.Underlay.Bridge, Prefix: cfg.Underlay.Prefix.String(), Nodes: cfg.Nodes})
	if err != nil {
		return err
	}
	return os.WriteFile(layoutFile(cfg.DataDir), b, 0o600)
}

// Down stops a detached cluster (by its pid file) and removes the node
// namespaces and the underlay bridge `weir up` recorded in the data dir.
// It is safe to run when nothing is up.
func Down(dataDir string) error {
	var errs []error
	var l layout
	if b, err := os.ReadFile(layoutFile(dataDir)); err == nil {
		if err := json.Unmarshal(b, &l); err != nil {
			return fmt.Errorf("read %s: %w", layoutFile(dataDir), err)
		}
	}
	nodes := l.Nodes
	u := simnode.DefaultUnderlay()
	if l.Bridge != "" {
		u.Bridge = l.Bridge
	}
	if b, err := os.ReadFile(PidFile(dataDir)); err == nil {
		if pid, err := strconv.Atoi(string(trimSpace(b))); err == nil {
			if p, err := os.FindProcess(pid); err == nil && p.Signal(syscall.SIGTERM) == nil {
				deadline := time.Now().Add(30 * time.Second)
				for p.Signal(syscall.Signal(0)) == nil && time.Now().Before(deadline) {
					time.Sleep(100 * time.Millisecond)
				}
				if p.Signal(syscall.Signal(0)) == nil {
					_ = p.Kill()
				}
			}
		}
		_ = os.Remove(PidFile(dataDir))
	}
	// Pods outlive their agents (containerd runs them): stop their
	// processes, containerd and its shims, then free their namespaces.
	ctrDir := filepath.Join(dataDir, "containerd")
	for _, n := range nodes {
		_ = os.WriteFile(filepath.Join(simnode.CgroupRoot, "weir", n, "cgroup.kill"), []byte("1"), 0o644)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := containerd.Stop(sctx, ctrDir, 10*time.Second); err != nil {
		errs = append(errs, err)
	}
	killShims(ctrDir)
	unmountUnder(ctrDir)
	for _, n := range nodes {
		ents, _ := os.ReadDir(filepath.Join(dataDir, "nodes", n, "pods"))
		for _, e := range ents {
			p := filepath.Join("/run/netns", "weirpod-"+e.Name())
			_ = syscall.Unmount(p, syscall.MNT_DETACH)
			_ = os.Remove(p)
		}
		if err := runtime.RemoveCgroup("/weir/" + n); err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range nodes {
		if err := simnode.RemoveNode(n); err != nil {
			errs = append(errs, err)
		}
		// The eBPF data plane pins its maps and links so they outlive the
		// agent; a cluster that is gone takes them along.
		if err := ebpf.Remove(ebpf.Config{Node: n}); err != nil {
			errs = append(errs, err)
		}
	}
	if err := u.Remove(); err != nil {
		errs = append(errs, err)
	}
	_ = os.Remove(layoutFile(dataDir))
	return errors.Join(errs...)
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// killShims ends the containerd shims that served this cluster's
// containerd (their command line names its socket directory), which
// would otherwise linger once containerd is gone.
func killShims(ctrDir string) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) == 0 || !strings.Contains(filepath.Base(args[0]), "containerd-shim") {
			continue
		}
		for _, a := range args {
			if strings.HasPrefix(a, ctrDir+"/") || a == containerd.SocketPath(ctrDir) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				break
			}
		}
	}
}

// unmountUnder detaches every mount below dir (container root file
// systems a killed shim left), deepest first, so the directory can go.
func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			points = append(points, f[4])
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, p := range points {
		_ = syscall.Unmount(p, syscall.MNT_DETACH)
	}
}
