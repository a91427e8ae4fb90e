package app

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"weir.dev/weir/datapath/ebpf"
	"weir.dev/weir/datapath/iptables"
	"weir.dev/weir/nodeagent/agent"
	"weir.dev/weir/nodeagent/images"
)

// maxBPFMapSize bounds the --bpf-map-* flags (16 Mi entries).
const maxBPFMapSize = 1 << 24

func newAgentCommand() *cobra.Command {
	var (
		cfg               agent.Config
		nodeIP, tokenFile string
		backend, logLevel string
		clusterCIDR       string
		// off by default: on the veth uplinks weir up makes, native XDP_TX
		// delivers only to a peer running XDP itself, and generic XDP
		// copies each skb to get its headroom, which costs more than TC;
		// XDP is for uplinks whose driver runs it natively.
		xdp string
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a node agent: join the cluster, heartbeat, and program Services into the data plane",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			cfg.Logger, cfg.Version = log, Version
			cfg.IPTablesBackend = iptables.Backend(backend)
			if clusterCIDR != "" {
				p, err := netip.ParsePrefix(clusterCIDR)
				if err != nil || !p.Addr().Is4() {
					return fmt.Errorf("--cluster-cidr %q: want an IPv4 CIDR such as 10.244.0.0/16", clusterCIDR)
				}
				cfg.ClusterCIDR = p.Masked()
			}
			if cfg.XDP, err = ebpf.ParseXDPMode(xdp); err != nil {
				return fmt.Errorf("--xdp: %w", err)
			}
			if nodeIP != "" {
				if cfg.NodeIP, err = netip.ParseAddr(nodeIP); err != nil {
					return fmt.Errorf("--node-ip: %w", err)
				}
			}
			for name, v := range map[string]int{"bpf-map-frontends": cfg.MapSizes.Frontends, "bpf-map-services": cfg.MapSizes.Services,
				"bpf-map-slots": cfg.MapSizes.Slots, "bpf-map-revnat": cfg.MapSizes.RevNAT, "bpf-map-affinity": cfg.MapSizes.Affinity,
				"bpf-map-conntrack": cfg.MapSizes.Conntrack} {
				if v < 1 || v > maxBPFMapSize {
					return fmt.Errorf("--%s %d: want 1..%d entries", name, v, maxBPFMapSize)
				}
			}
			if err := ebpf.CheckMaglevSize(cfg.MaglevSize); err != nil {
				return fmt.Errorf("--maglev-table-size: %w", err)
			}
			for i, h := range cfg.InsecureRegistries {
				if err := images.CheckRegistryHost(h); err != nil {
					return fmt.Errorf("--insecure-registry[%d] %q: %w", i, h, err)
				}
			}
			if cfg.BootstrapToken == "" && tokenFile != "" {
				b, err := os.ReadFile(tokenFile)
				if err != nil {
					return fmt.Errorf("--token-file: %w", err)
				}
				cfg.BootstrapToken = string(b)
			}
			if cfg.EchoBinary == "" {
				if exe, err := os.Executable(); err == nil {
					cfg.EchoBinary = filepath.Join(filepath.Dir(exe), "weir-echo")
				}
			}
			if cfg.NodeName == "" {
				if cfg.NodeName, err = os.Hostname(); err != nil {
					return err
				}
			}
			return agent.Run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Server, "server", "https://127.0.0.1:6443", "API server URL")
	f.StringVar(&cfg.CAFile, "ca-file", "/var/lib/weir/pki/ca.crt", "cluster CA certificate")
	f.StringVar(&cfg.BootstrapToken, "token", "", "bootstrap token (first join only)")
	f.StringVar(&tokenFile, "token-file", "", "file holding the bootstrap token")
	f.StringVar(&cfg.NodeName, "node-name", "", "node name (default: host name)")
	f.StringVar(&nodeIP, "node-ip", "", "the node's address (NodePorts answer on it)")
	f.StringVar(&cfg.DataDir, "data-dir", "/var/lib/weir/agent", "node identity and state")
	f.StringVar(&cfg.Runtime, "runtime", "containerd", "pod runtime: containerd, or none (service proxy only)")
	f.StringVar(&cfg.ContainerdDir, "containerd-dir", "/var/lib/weir/containerd", "weir's containerd: config, state and socket (started if not running)")
	f.StringVar(&cfg.NodeNetNS, "node-netns", "", "network namespace path of a simulated node (weir up sets it)")
	f.StringVar(&cfg.EchoBinary, "echo-binary", "", "weir-echo binary to offer as the image weir.local/echo (default: beside weir)")
	f.StringArrayVar(&cfg.InsecureRegistries, "insecure-registry", nil, "registry HOST[:PORT] to pull from over plain HTTP (repeatable; loopback registries always are)")
	f.IntVar(&cfg.Port, "port", 10250, "port of the agent's logs and exec server on --node-ip")
	f.StringVar(&cfg.Dataplane, "dataplane", "ebpf", "service data plane: ebpf or iptables")
	f.StringVar(&cfg.Uplink, "uplink", "", "interface external traffic arrives on, for the ebpf data plane's TC/XDP programs (default: the one holding --node-ip)")
	f.StringVar(&xdp, "xdp", "off", "XDP NodePort fast path on the uplink (ebpf): native, generic, or off (TC handles NodePort)")
	d := ebpf.DefaultMapSizes
	f.IntVar(&cfg.MapSizes.Frontends, "bpf-map-frontends", d.Frontends, "eBPF frontends map capacity (ClusterIP, external, LB and node IP × port entries)")
	f.IntVar(&cfg.MapSizes.Services, "bpf-map-services", d.Services, "eBPF service-ports map capacity")
	f.IntVar(&cfg.MapSizes.Slots, "bpf-map-slots", d.Slots, "eBPF backend-slots map capacity (usable backends over all service ports, with room to swap the largest)")
	f.IntVar(&cfg.MapSizes.RevNAT, "bpf-map-revnat", d.RevNAT, "eBPF reverse-NAT map capacity (recently translated sockets, LRU)")
	f.IntVar(&cfg.MapSizes.Affinity, "bpf-map-affinity", d.Affinity, "eBPF ClientIP-affinity map capacity (LRU)")
	f.IntVar(&cfg.MapSizes.Conntrack, "bpf-map-conntrack", d.Conntrack, "eBPF uplink conntrack map capacity (two entries per flow, LRU)")
	f.IntVar(&cfg.MaglevSize, "maglev-table-size", ebpf.DefaultMaglevSize, "entries in each service port's Maglev table (a prime; more backends than entries do not fit)")
	f.StringVar(&backend, "iptables-backend", "nft", "iptables flavour for --dataplane=iptables: nft or legacy")
	f.StringVar(&clusterCIDR, "cluster-cidr", "10.244.0.0/16", "the cluster's pod range (the server's --cluster-cidr): --dataplane=iptables masquerades traffic to a ClusterIP from outside it, as kube-proxy's --cluster-cidr; empty masquerades all of it (--masquerade-all)")
	f.StringVar(&cfg.ProxyMetricsAddr, "proxy-metrics-addr", agent.DefaultProxyMetricsAddr, "address serving the service proxy's and data plane's /metrics (empty: none)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}
