// Package agent assembles a node agent: it joins the cluster, registers
// and heartbeats its Node, and runs the service proxy over the chosen data
// plane. With runtime "containerd" it runs the node's pods and serves their
// logs and exec (agentserver) on the node's address; with runtime "none"
// the agent plays kube-proxy's role only. It owns process wiring, not
// behaviour.
package agent

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"

	"weir.dev/weir/datapath"
	"weir.dev/weir/datapath/ebpf"
	"weir.dev/weir/datapath/iptables"
	"weir.dev/weir/nodeagent/agentserver"
	"weir.dev/weir/nodeagent/heartbeat"
	"weir.dev/weir/nodeagent/join"
	"weir.dev/weir/nodeagent/proxy"
	"weir.dev/weir/nodeagent/simnode"
)

// Config configures an agent.
type Config struct {
	Server         string
	CAFile         string
	BootstrapToken string
	NodeName       string
	NodeIP         netip.Addr
	DataDir        string
	// Runtime is "none" (proxy only) or "containerd".
	Runtime string
	// ContainerdDir is weir's containerd (config, state, socket); started
	// here unless already running.
	ContainerdDir string
	// NodeNetNS is the node's network namespace path for a simulated node
	// (/run/netns/weir-<node>); empty on a real node.
	NodeNetNS string
	// EchoBinary, if set, is packed as the image weir.local/echo.
	EchoBinary string
	// Port is the agent server's port on NodeIP (logs and exec; default
	// 10250, the kubelet's).
	Port int
	// Dataplane is "iptables" or "ebpf".
	Dataplane       string
	IPTablesBackend iptables.Backend
	Version         string
	Logger          *slog.Logger
	Registerer      prometheus.Registerer
}

// NewDataplane builds the data plane an agent is configured for.
func NewDataplane(cfg Config) (datapath.Dataplane, error) {
	switch cfg.Dataplane {
	case "iptables":
		return iptables.New(iptables.Config{Backend: cfg.IPTablesBackend, Logger: cfg.Logger})
	case "ebpf", "":
		// Socket load balancing for every process under the node's cgroup
		// parent (DESIGN.md "Seams": /weir/<node> in the unified tree).
		cg := filepath.Join(simnode.CgroupRoot, "weir", cfg.NodeName)
		if err := os.MkdirAll(cg, 0o755); err != nil {
			return nil, fmt.Errorf("create node cgroup %s: %w", cg, err)
		}
		return ebpf.Open(context.Background(), ebpf.Config{Node: cfg.NodeName, CgroupPath: cg, Logger: cfg.Logger, LoopbackNodePorts: true})
	default:
		return nil, fmt.Errorf("--dataplane %q: want ebpf or iptables", cfg.Dataplane)
	}
}

// newAgentServer builds the logs and exec server with a serving
// certificate the cluster CA signed for the node's address.
func newAgentServer(ctx context.Context, cfg Config, c kubernetes.Interface, caPEM []byte, pods *podLoop) (*agentserver.Server, error) {
	cert, err := join.ServingCert(ctx, c, cfg.NodeName, []net.IP{cfg.NodeIP.AsSlice()}, caPEM, filepath.Join(cfg.DataDir, "identity"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("cluster CA %s holds no certificate", cfg.CAFile)
	}
	return agentserver.New(agentserver.Config{Serving: cert, ClientCAs: pool, Pods: pods, Runtime: pods.rt, Logger: cfg.Logger})
}

// Run runs the agent until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Runtime != "none" && cfg.Runtime != "containerd" {
		return fmt.Errorf("--runtime %q: want containerd or none", cfg.Runtime)
	}
	ca, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return fmt.Errorf("read cluster CA: %w", err)
	}
	token := strings.TrimSpace(cfg.BootstrapToken)
	rc, err := join.Join(ctx, join.Config{Server: cfg.Server, CAData: ca, BootstrapToken: token,
		NodeName: cfg.NodeName, Dir: filepath.Join(cfg.DataDir, "identity")})
	if err != nil {
		return err
	}
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	if cfg.Port == 0 {
		cfg.Port = agentserver.DefaultPort
	}
	hb := heartbeat.Config{NodeName: cfg.NodeName, NodeIP: cfg.NodeIP, Version: cfg.Version, Logger: cfg.Logger}
	serve := cfg.Runtime == "containerd" && cfg.NodeIP.IsValid()
	if serve {
		hb.DaemonPort = int32(cfg.Port)
	}
	node, err := heartbeat.Register(ctx, c, hb)
	if err != nil {
		return err
	}
	dp, err := NewDataplane(cfg)
	if err != nil {
		return err
	}
	defer dp.Close()
	var pods *podLoop
	if cfg.Runtime == "containerd" {
		pods = newPodLoop(c, cfg.NodeName, cfg.Logger)
		rt, nw, closeRT, err := startRuntime(ctx, cfg, c, node, dp, pods.probes.Ready)
		if err != nil {
			return err
		}
		defer closeRT()
		pods.rt, pods.nw = rt, nw
		go syncRoutes(ctx, c, nw, cfg.NodeName, cfg.Logger)
	}
	var (
		srv   *agentserver.Server
		srvLn net.Listener
	)
	if serve {
		if srv, err = newAgentServer(ctx, cfg, c, ca, pods); err != nil {
			return err
		}
		// Listen now: a node whose logs and exec cannot be served fails
		// to start rather than running without them.
		addr := net.JoinHostPort(cfg.NodeIP.String(), strconv.Itoa(cfg.Port))
		if srvLn, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("agent server: listen on %s: %w", addr, err)
		}
		defer srvLn.Close()
	}
	var ips []netip.Addr
	if cfg.NodeIP.IsValid() {
		ips = append(ips, cfg.NodeIP)
	}
	p, err := proxy.New(c, dp, proxy.Config{NodeName: cfg.NodeName, NodeIPs: ips, Logger: cfg.Logger, Registerer: cfg.Registerer})
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = heartbeat.Run(ctx, c, hb)
	}()
	if srv != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ctx, srvLn); err != nil {
				cfg.Logger.Error("agent server stopped", slog.Any("error", err))
			}
		}()
	}
	if pods != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := pods.Run(ctx, 8); err != nil {
				cfg.Logger.Error("pod loop stopped", slog.Any("error", err))
			}
		}()
	}
	cfg.Logger.Info("agent running", slog.String("node", cfg.NodeName), slog.String("dataplane", cfg.Dataplane))
	err = p.Run(ctx)
	wg.Wait()
	return err
}
