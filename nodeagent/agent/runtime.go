package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/client"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"weir.dev/weir/datapath"
	"weir.dev/weir/nodeagent/containerd"
	"weir.dev/weir/nodeagent/images"
	"weir.dev/weir/nodeagent/ipam"
	"weir.dev/weir/nodeagent/podnet"
	"weir.dev/weir/nodeagent/runtime"
)

// startRuntime connects to weir's containerd (starting it if needed),
// makes the local images available, sets up the node's pod network and
// returns the runtime, which reports to pods (probe readiness, events).
func startRuntime(ctx context.Context, cfg Config, c kubernetes.Interface, node *corev1.Node, dp datapath.Dataplane,
	pods *podLoop) (*runtime.Runtime, *podnet.Network, func(), error) {
	if node.Spec.PodCIDR == "" {
		return nil, nil, nil, fmt.Errorf("node %s has no pod CIDR", cfg.NodeName)
	}
	cidr, err := netip.ParsePrefix(node.Spec.PodCIDR)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("node pod CIDR %q: %w", node.Spec.PodCIDR, err)
	}
	if _, err := containerd.Ensure(ctx, containerd.Config{Dir: cfg.ContainerdDir, Logger: cfg.Logger}); err != nil {
		return nil, nil, nil, err
	}
	cc, err := client.New(containerd.SocketPath(cfg.ContainerdDir))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("connect to containerd: %w", err)
	}
	ns := "weir-" + cfg.NodeName
	if err := images.EnsureBusybox(ctx, cc, ns); err != nil {
		cc.Close()
		return nil, nil, nil, err
	}
	if cfg.EchoBinary != "" {
		if _, err := os.Stat(cfg.EchoBinary); err == nil {
			img, err := images.Echo(cfg.EchoBinary)
			if err == nil {
				_, err = images.ImportImage(ctx, cc, ns, img)
			}
			if err != nil {
				// Only the demo image: pods that use others still run.
				cfg.Logger.Warn("the echo image is not available", slog.Any("error", err))
			}
		}
	}
	alloc, err := ipam.New(filepath.Join(cfg.DataDir, "ipam"), cidr)
	if err != nil {
		cc.Close()
		return nil, nil, nil, err
	}
	nw, err := podnet.New(podnet.Config{NodeNetNS: cfg.NodeNetNS, Forwarding: true, Logger: cfg.Logger}, alloc)
	if err != nil {
		cc.Close()
		return nil, nil, nil, err
	}
	if err := nw.EnsureBridge(ctx); err != nil {
		cc.Close()
		return nil, nil, nil, err
	}
	rcfg := runtime.Config{
		NodeName: cfg.NodeName, NodeIP: cfg.NodeIP, Client: cc, StateDir: filepath.Join(cfg.DataDir, "pods"),
		Network: nw, NodeNetNS: cfg.NodeNetNS, Lookup: runtime.ClientLookup{Client: c}, Logger: cfg.Logger,
		Attacher: dp, InsecureRegistries: cfg.InsecureRegistries,
	}
	pods.runtimeHooks(&rcfg, nil)
	rt, err := runtime.New(rcfg)
	if err != nil {
		cc.Close()
		return nil, nil, nil, err
	}
	// rt.Close stops copying container output; the containers run on
	// and the next agent process attaches to their output again.
	return rt, nw, func() { rt.Close(); nw.Close(); cc.Close() }, nil
}
