package app

import (
	"time"

	"github.com/spf13/cobra"

	"weir.dev/weir/controlplane/server"
)

func newServerCommand() *cobra.Command {
	var (
		cfg      server.Config
		logLevel string
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane: API server, watch cache, and the elected singleton loops",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			cfg.Logger = log
			cfg.Loops = server.DefaultLoops()
			return server.Run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", "/var/lib/weir", "directory for etcd data, the PKI and the admin kubeconfig")
	f.StringArrayVar(&cfg.Listen, "listen", nil, "HOST:PORT to serve HTTPS on (repeatable; default 127.0.0.1:6443)")
	f.StringSliceVar(&cfg.EtcdEndpoints, "etcd-endpoints", nil, "external etcd client URLs (default: embedded etcd)")
	f.StringVar(&cfg.EtcdClientAddr, "etcd-client-addr", "127.0.0.1:2379", "embedded etcd client address (port 0 picks one)")
	f.StringVar(&cfg.EtcdPeerAddr, "etcd-peer-addr", "127.0.0.1:2380", "embedded etcd peer address (port 0 picks one)")
	f.StringVar(&cfg.ClusterCIDR, "cluster-cidr", "10.244.0.0/16", "pod address range; each node gets a /24 from it")
	f.StringVar(&cfg.ServiceCIDR, "service-cidr", "10.96.0.0/12", "ClusterIP range")
	f.StringVar(&cfg.NodePortRange, "service-node-port-range", "30000-32767", "NodePort range")
	f.StringVar(&cfg.Identity, "identity", "", "name of this server in the leader election (default host/listen)")
	f.IntVar(&cfg.LeaseTTL, "leader-lease-ttl", 15, "leader election lease TTL in seconds")
	f.DurationVar(&cfg.CompactionInterval, "etcd-compaction-interval", 5*time.Minute, "how often the leader compacts etcd history")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}
