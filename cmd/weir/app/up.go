package app

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"weir.dev/weir/controlplane/auth"
	"weir.dev/weir/nodeagent/images"
	"weir.dev/weir/nodeagent/localcluster"
	"weir.dev/weir/nodeagent/simnode"
)

func newUpCommand() *cobra.Command {
	var (
		cfg        localcluster.Config
		nodes      int
		detach     bool
		logLevel   string
		bridge     string
		underlay   string
		nodePrefix string
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start a whole cluster on this machine: control plane plus simulated nodes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if nodes < 1 {
				return fmt.Errorf("--nodes %d: at least 1", nodes)
			}
			for i := 1; i <= nodes; i++ {
				cfg.Nodes = append(cfg.Nodes, nodePrefix+strconv.Itoa(i))
			}
			pfx, err := netip.ParsePrefix(underlay)
			if err != nil || !pfx.Addr().Is4() || pfx.Bits() > 26 {
				return fmt.Errorf("--underlay %q: want an IPv4 CIDR of /26 or larger", underlay)
			}
			for i, h := range cfg.InsecureRegistries {
				if err := images.CheckRegistryHost(h); err != nil {
					return fmt.Errorf("--insecure-registry[%d] %q: %w", i, h, err)
				}
			}
			cfg.Underlay = simnode.Underlay{Bridge: bridge, Prefix: pfx.Masked(), MTU: 1500}
			if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
				return err
			}
			if detach {
				return upDetached(cmd, cfg, nodes, bridge, underlay, nodePrefix)
			}
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			cfg.Logger = log
			ready := make(chan string, 1)
			cfg.Ready = ready
			errc := make(chan error, 1)
			go func() { errc <- localcluster.Run(cmd.Context(), cfg) }()
			select {
			case kc := <-ready:
				if err := announce(cmd, kc); err != nil {
					return err
				}
				return <-errc
			case err := <-errc:
				return err
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", "/var/lib/weir", "cluster state: etcd, PKI, kubeconfig, node dirs")
	f.IntVar(&nodes, "nodes", 2, "number of simulated nodes (n1, n2, …)")
	f.BoolVar(&detach, "detach", false, "return once every node is Ready, leaving the cluster running (pid file in the data dir)")
	f.StringVar(&cfg.Dataplane, "dataplane", "ebpf", "service data plane of the agents: ebpf or iptables")
	f.StringArrayVar(&cfg.InsecureRegistries, "insecure-registry", nil, "registry HOST[:PORT] the agents pull from over plain HTTP (repeatable; a node's own loopback always is)")
	f.IntVar(&cfg.APIPort, "api-port", 6443, "API server port on loopback and on the underlay gateway")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&bridge, "bridge", "weir-ul0", "underlay bridge the nodes share")
	f.StringVar(&underlay, "underlay", "10.99.0.0/24", "underlay CIDR; the host holds the first address")
	f.StringVar(&nodePrefix, "node-prefix", "n", "node names are this prefix plus 1, 2, …")
	return cmd
}

// upDetached re-runs `weir up` in its own session, records its pid, and
// waits for the cluster to be Ready.
func upDetached(cmd *cobra.Command, cfg localcluster.Config, nodes int, bridge, underlay, nodePrefix string) error {
	if b, err := os.ReadFile(localcluster.PidFile(cfg.DataDir)); err == nil {
		if pid, err := strconv.Atoi(string(trim(b))); err == nil && syscall.Kill(pid, 0) == nil {
			return fmt.Errorf("a cluster is already up (pid %d); run weir down first", pid)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	logPath := filepath.Join(cfg.DataDir, "up.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	child := exec.Command(exe, "up", "--data-dir", cfg.DataDir, "--nodes", strconv.Itoa(nodes),
		"--dataplane", cfg.Dataplane, "--api-port", strconv.Itoa(cfg.APIPort),
		"--bridge", bridge, "--underlay", underlay, "--node-prefix", nodePrefix)
	for _, h := range cfg.InsecureRegistries {
		child.Args = append(child.Args, "--insecure-registry", h)
	}
	child.Stdout, child.Stderr = logf, logf
	child.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := child.Start(); err != nil {
		return fmt.Errorf("start weir up in the background: %w", err)
	}
	if err := os.WriteFile(localcluster.PidFile(cfg.DataDir), []byte(strconv.Itoa(child.Process.Pid)+"\n"), 0o600); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	kc := filepath.Join(cfg.DataDir, "admin.kubeconfig")
	deadline := time.Now().Add(180 * time.Second)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("weir up exited before the cluster was ready (%v); see %s", err, logPath)
		default:
		}
		if allReady(cmd.Context(), kc, nodes) {
			return announce(cmd, kc)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster not ready after 180 s; see %s", logPath)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func allReady(ctx context.Context, kubeconfig string, nodes int) bool {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return false
	}
	rc.Timeout = 5 * time.Second
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return false
	}
	l, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return false
	}
	ready := 0
	for _, n := range l.Items {
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	return ready >= nodes
}

// announce merges a "weir" context into ~/.weir/config and prints how to
// use the cluster.
func announce(cmd *cobra.Command, kubeconfig string) error {
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		return err
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil {
		return errors.New("admin kubeconfig has no current context")
	}
	cl, user := cfg.Clusters[ctx.Cluster], cfg.AuthInfos[ctx.AuthInfo]
	if home, err := os.UserHomeDir(); err == nil && cl != nil && user != nil {
		if err := auth.MergeKubeconfig(filepath.Join(home, ".weir", "config"), cl.Server, cl.CertificateAuthorityData, "weir", "weir-admin", user.Token); err != nil {
			return fmt.Errorf("merge ~/.weir/config: %w", err)
		}
	}
	fmt.Fprintf(cmd.OutOrStdout(), "weir cluster is up.\nexport KUBECONFIG=%s\n", kubeconfig)
	return nil
}

func trim(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

func newDownCommand() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop a cluster started with weir up --detach and remove its simulated nodes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := localcluster.Down(dataDir); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "weir cluster is down.")
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "/var/lib/weir", "the data dir weir up used")
	return cmd
}
