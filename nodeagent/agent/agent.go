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
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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
	// InsecureRegistries are pulled from over plain HTTP (HOST or
	// HOST:PORT); loopback registries always are.
	InsecureRegistries []string
	// Port is the agent server's port on NodeIP (logs and exec; default
	// 10250, the kubelet's).
	Port int
	// Dataplane is "iptables" or "ebpf".
	Dataplane string
	// Uplink is the interface external traffic arrives on, for the eBPF
	// data plane's TC/XDP programs; empty means the interface holding
	// NodeIP in the agent's network namespace.
	Uplink string
	// XDP is the eBPF data plane's XDP mode on the uplink: off, native or
	// generic.
	XDP ebpf.XDPMode
	// MapSizes and MaglevSize size the eBPF maps (zero: the defaults).
	MapSizes        ebpf.MapSizes
	MaglevSize      int
	IPTablesBackend iptables.Backend
	// ClusterCIDR is the pods' range, for the iptables data plane's
	// masquerade rule; invalid masquerades all off-node traffic to a
	// ClusterIP (kube-proxy's --masquerade-all).
	ClusterCIDR netip.Prefix
	Version     string
	Logger      *slog.Logger
	// ProxyMetricsAddr is where /metrics serves the service proxy's and
	// the data plane's metrics (kube-proxy's --metrics-bind-address); empty
	// serves none. The agent runs in the node's network namespace, so a
	// loopback address is the node's own.
	ProxyMetricsAddr string
	// Registry receives the agent's metrics; a new one when nil.
	Registry *prometheus.Registry
}

// DefaultProxyMetricsAddr is kube-proxy's metrics address.
const DefaultProxyMetricsAddr = "127.0.0.1:10249"

// NewDataplane builds the data plane an agent is configured for.
func NewDataplane(cfg Config) (datapath.Dataplane, error) {
	switch cfg.Dataplane {
	case "iptables":
		opts := iptables.DefaultOptions()
		opts.ClusterCIDR = cfg.ClusterCIDR
		return iptables.New(iptables.Config{Backend: cfg.IPTablesBackend, Options: opts, Logger: cfg.Logger})
	case "ebpf", "":
		// Socket load balancing for every process under the node's cgroup
		// parent (DESIGN.md "Seams": /weir/<node> in the unified tree).
		cg := filepath.Join(simnode.CgroupRoot, "weir", cfg.NodeName)
		if err := os.MkdirAll(cg, 0o755); err != nil {
			return nil, fmt.Errorf("create node cgroup %s: %w", cg, err)
		}
		uplink, err := uplinkFor(cfg)
		if err != nil {
			return nil, err
		}
		return ebpf.Open(context.Background(), ebpf.Config{Node: cfg.NodeName, CgroupPath: cg, Logger: cfg.Logger,
			LoopbackNodePorts: true, Uplink: uplink, XDP: cfg.XDP, Sizes: cfg.MapSizes, MaglevSize: cfg.MaglevSize})
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
	// NotReady until pods can run: the scheduler and weir up wait for
	// Ready, and a pod bound earlier would wait for the runtime.
	starting := hb
	starting.NotReady = "weir agent is starting its container runtime and service proxy"
	node, err := heartbeat.Register(ctx, c, starting)
	if err != nil {
		return err
	}
	dp, err := NewDataplane(cfg)
	if err != nil {
		return err
	}
	defer dp.Close()
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if e, ok := dp.(*ebpf.Dataplane); ok {
		if err := reg.Register(ebpf.NewCollector(e)); err != nil {
			return fmt.Errorf("register data-plane metrics: %w", err)
		}
	}
	var pods *podLoop
	if cfg.Runtime == "containerd" {
		pods = newPodLoop(c, cfg.NodeName, cfg.Logger, nil)
		rt, nw, closeRT, err := startRuntime(ctx, cfg, c, node, dp, pods)
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
	p, err := proxy.New(c, dp, proxy.Config{NodeName: cfg.NodeName, NodeIPs: ips, Logger: cfg.Logger, Registerer: reg})
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	if cfg.ProxyMetricsAddr != "" {
		ln, err := net.Listen("tcp", cfg.ProxyMetricsAddr)
		if err != nil {
			return fmt.Errorf("serve proxy metrics: %w", err)
		}
		srv := &http.Server{Handler: MetricsHandler(reg), ReadHeaderTimeout: 10 * time.Second}
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				cfg.Logger.Error("proxy metrics server stopped", slog.Any("error", err))
			}
		}()
		go func() {
			defer wg.Done()
			<-ctx.Done()
			_ = srv.Close()
		}()
		cfg.Logger.Info("serving proxy metrics", slog.String("addr", ln.Addr().String()))
	}
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
	if pods != nil {
		select {
		case <-pods.started:
		case <-ctx.Done():
		}
	}
	if ctx.Err() == nil {
		if _, err := heartbeat.Register(ctx, c, hb); err != nil {
			return err
		}
	}
	cfg.Logger.Info("agent running", slog.String("node", cfg.NodeName), slog.String("dataplane", cfg.Dataplane))
	err = p.Run(ctx)
	wg.Wait()
	return err
}

// uplinkFor names the interface the eBPF uplink programs attach to:
// cfg.Uplink, or the one holding cfg.NodeIP in the agent's network
// namespace. Without either, NodePorts answer only through the socket LB
// (from the node and its pods), which the log says.
func uplinkFor(cfg Config) (string, error) {
	if cfg.Uplink != "" {
		return cfg.Uplink, nil
	}
	if cfg.NodeIP.IsValid() {
		ifs, err := net.Interfaces()
		if err != nil {
			return "", fmt.Errorf("find the uplink: %w", err)
		}
		for _, ifc := range ifs {
			addrs, err := ifc.Addrs()
			if err != nil {
				continue
			}
			for _, a := range addrs {
				if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr() == cfg.NodeIP {
					return ifc.Name, nil
				}
			}
		}
	}
	if cfg.XDP != "" && cfg.XDP != ebpf.XDPOff {
		return "", fmt.Errorf("--xdp=%s: no uplink (no interface holds --node-ip %s; set --uplink)", cfg.XDP, cfg.NodeIP)
	}
	if cfg.Logger != nil {
		cfg.Logger.Warn("no uplink: NodePorts from outside the node are not served", "node_ip", cfg.NodeIP.String())
	}
	return "", nil
}

// MetricsHandler serves reg at /metrics, and /healthz, as kube-proxy's
// metrics address does.
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	return mux
}
