package ebpf

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
)

// DefaultBPFFS is where bpffs is mounted (and mounted by Open if missing).
const DefaultBPFFS = "/sys/fs/bpf"

// Config says where one node's socket LB lives.
type Config struct {
	// Node names the pin directory <BPFFS>/weir/<Node>/.
	Node string
	// CgroupPath is the cgroup v2 directory the programs attach to, such
	// as /sys/fs/cgroup/unified/weir/<node>. Every process below it has its
	// connections to services balanced. The root of a cgroup v2 hierarchy
	// is refused: that would capture every process on the machine.
	CgroupPath string
	// BPFFS is the bpffs mount point; DefaultBPFFS when empty.
	BPFFS string
	// Sizes are map capacities; zero fields take DefaultMapSizes. A map
	// already pinned with another capacity is an error, not a resize.
	Sizes MapSizes
	// LoopbackNodePorts makes a nodePort answer on 127.0.0.0/8 for clients
	// in the network namespace that calls Open (kube-proxy's iptables mode
	// does the same). Clients in pod namespaces are never affected.
	LoopbackNodePorts bool
	// Uplink is the node's interface to the outside network, in the
	// network namespace that calls Open (the one holding the node IP).
	// When set, TC programs on it (and XDP, see XDP) translate traffic
	// from outside to NodePort, externalIP and load-balancer frontends,
	// and to ClusterIPs routed to the node from outside.
	// Empty: only the socket LB, and any uplink programs pinned by an
	// earlier run are detached.
	Uplink string
	// XDP is the uplink's XDP mode: XDPOff (the default: NodePort stays
	// with TC), XDPNative or XDPGeneric. It needs Uplink.
	XDP XDPMode
	// MaglevSize is the size of each Maglev table (a prime); 0 means
	// DefaultMaglevSize. A pinned table map of another size is an error.
	MaglevSize int
	// Logger receives warnings (frontends two services claim); discarded
	// when nil.
	Logger *slog.Logger
}

// MapSizes are the capacities of the socket-LB maps, in entries.
type MapSizes struct {
	// Frontends: every ClusterIP, externalIP, load-balancer IP and
	// node IP × nodePort, per port and protocol, plus one nodePort wildcard.
	Frontends int
	// Services: service ports; also the size of the per-service counters.
	Services int
	// Slots: the sum of usable backends over service ports, with room for
	// the largest service twice while its set is replaced.
	Slots int
	// RevNAT: sockets recently translated (LRU).
	RevNAT int
	// Affinity: ClientIP affinity entries, client × service port (LRU);
	// also the size of the uplink path's own affinity map.
	Affinity int
	// Conntrack: flows the uplink programs translate, two entries each
	// (LRU).
	Conntrack int
}

// DefaultMapSizes fit 10,000+ services with a few endpoints each.
var DefaultMapSizes = MapSizes{
	Frontends: 65536,
	Services:  65536,
	Slots:     262144,
	RevNAT:    262144,
	Affinity:  65536,
	Conntrack: 262144,
}

var nodeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// withDefaults validates c and fills its defaults.
func (c Config) withDefaults() (Config, error) {
	if !nodeName.MatchString(c.Node) {
		return c, fmt.Errorf("datapath/ebpf: node name %q: want [A-Za-z0-9._-]+", c.Node)
	}
	if c.CgroupPath == "" {
		return c, fmt.Errorf("datapath/ebpf: no cgroup path for node %s", c.Node)
	}
	if c.BPFFS == "" {
		c.BPFFS = DefaultBPFFS
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	d := DefaultMapSizes
	for _, f := range []struct {
		v   *int
		def int
	}{{&c.Sizes.Frontends, d.Frontends}, {&c.Sizes.Services, d.Services}, {&c.Sizes.Slots, d.Slots}, {&c.Sizes.RevNAT, d.RevNAT}, {&c.Sizes.Affinity, d.Affinity}, {&c.Sizes.Conntrack, d.Conntrack}} {
		if *f.v == 0 {
			*f.v = f.def
		}
		if *f.v < 1 || *f.v > 1<<24 {
			return c, fmt.Errorf("datapath/ebpf: map size %d out of range 1..%d", *f.v, 1<<24)
		}
	}
	return c.nodePortDefaults()
}

// PinDir is where the node's maps and links are pinned.
func (c Config) PinDir() string {
	root := c.BPFFS
	if root == "" {
		root = DefaultBPFFS
	}
	return filepath.Join(root, "weir", c.Node)
}
