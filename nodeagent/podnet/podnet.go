package podnet

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"weir.dev/weir/nodeagent/ipam"
)

// RouteProtocol tags the routes SyncRoutes owns (rtnetlink protocol
// number; 0x57 is unassigned in /etc/iproute2/rt_protos).
const RouteProtocol netlink.RouteProtocol = 0x57

// PodIfName is the pod's interface inside its namespace.
const PodIfName = "eth0"

// Config describes the node's pod network.
type Config struct {
	// NodeNetNS is the path of the node's network namespace (for a
	// simulated node, /run/netns/weir-<node>); empty means the network
	// namespace of this process.
	NodeNetNS string
	// Bridge is the node bridge (default "weir0").
	Bridge string
	// MTU of the bridge and the veths (default 1500).
	MTU int
	// NetNSDir is where pod namespaces are bound (default /run/netns,
	// so `ip netns exec` can enter them).
	NetNSDir string
	// NetNSPrefix starts every pod namespace's name (default "weirpod-").
	NetNSPrefix string
	// Forwarding sets net.ipv4.ip_forward=1 in the node namespace in
	// EnsureBridge, which traffic to other nodes' pods needs. Leave it off
	// when NodeNetNS is empty and this process runs in the host's namespace.
	Forwarding bool
	Logger     *slog.Logger
}

// Attachment is a pod's network as set up.
type Attachment struct {
	// ID is the pod UID the network was set up for.
	ID string
	// NetNSPath is the namespace's bind mount, for the OCI spec.
	NetNSPath   string
	HostIfName  string
	HostIfIndex int
	HostMAC     net.HardwareAddr
	// PodMAC is eth0's address inside the pod.
	PodMAC  net.HardwareAddr
	IP      netip.Addr
	Prefix  netip.Prefix
	Gateway netip.Addr
}

// Route sends a prefix (another node's podCIDR) via a next hop (that
// node's address).
type Route struct {
	Dst netip.Prefix
	Via netip.Addr
}

// Network sets up pod networks on one node. Its methods are safe for
// concurrent use; calls for the same pod must not overlap (the runtime
// serialises per pod).
type Network struct {
	cfg   Config
	alloc *ipam.Allocator

	mu    sync.Mutex // guards nodeH
	nodeH *netlink.Handle
}

// New returns a Network that takes addresses from alloc. It does no I/O.
func New(cfg Config, alloc *ipam.Allocator) (*Network, error) {
	if alloc == nil {
		return nil, errors.New("podnet: no address allocator")
	}
	if cfg.Bridge == "" {
		cfg.Bridge = "weir0"
	}
	if len(cfg.Bridge) > 15 {
		return nil, fmt.Errorf("podnet: bridge name %q longer than 15 bytes", cfg.Bridge)
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	if cfg.NetNSDir == "" {
		cfg.NetNSDir = "/run/netns"
	}
	if cfg.NetNSPrefix == "" {
		cfg.NetNSPrefix = "weirpod-"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Network{cfg: cfg, alloc: alloc}, nil
}

// Close releases the netlink handle. It is idempotent.
func (n *Network) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nodeH != nil {
		n.nodeH.Close()
		n.nodeH = nil
	}
	return nil
}

// Address is the address pod id holds, if any, without setting anything up.
func (n *Network) Address(id string) (netip.Addr, bool, error) { return n.alloc.Lookup(id) }

// Gateway is the bridge's address, the pods' default route.
func (n *Network) Gateway() netip.Addr { return n.alloc.Gateway() }

// node returns a netlink handle in the node namespace.
func (n *Network) node() (*netlink.Handle, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nodeH != nil {
		return n.nodeH, nil
	}
	var h *netlink.Handle
	if n.cfg.NodeNetNS == "" {
		var err error
		if h, err = netlink.NewHandle(); err != nil {
			return nil, fmt.Errorf("podnet: netlink: %w", err)
		}
	} else {
		ns, err := netns.GetFromPath(n.cfg.NodeNetNS)
		if err != nil {
			return nil, fmt.Errorf("podnet: open node namespace %s: %w", n.cfg.NodeNetNS, err)
		}
		defer ns.Close()
		if h, err = netlink.NewHandleAt(ns); err != nil {
			return nil, fmt.Errorf("podnet: netlink in %s: %w", n.cfg.NodeNetNS, err)
		}
	}
	n.nodeH = h
	return h, nil
}

// EnsureBridge creates the node bridge with the gateway address if it is
// missing and brings it up. It is idempotent.
func (n *Network) EnsureBridge(ctx context.Context) error {
	h, err := n.node()
	if err != nil {
		return err
	}
	br, err := h.LinkByName(n.cfg.Bridge)
	if _, notFound := err.(netlink.LinkNotFoundError); notFound {
		// A fixed MAC keeps the bridge's address from following its
		// lowest-numbered port as pods come and go.
		la := netlink.LinkAttrs{Name: n.cfg.Bridge, MTU: n.cfg.MTU, HardwareAddr: randomMAC()}
		if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("podnet: create bridge %s: %w", n.cfg.Bridge, err)
		}
		br, err = h.LinkByName(n.cfg.Bridge)
	}
	if err != nil {
		return fmt.Errorf("podnet: find bridge %s: %w", n.cfg.Bridge, err)
	}
	if _, ok := br.(*netlink.Bridge); !ok {
		return fmt.Errorf("podnet: %s is a %s, not a bridge", n.cfg.Bridge, br.Type())
	}
	gw := netip.PrefixFrom(n.alloc.Gateway(), n.alloc.Prefix().Bits())
	if err := h.AddrReplace(br, &netlink.Addr{IPNet: ipNet(gw)}); err != nil {
		return fmt.Errorf("podnet: address %s on %s: %w", gw, n.cfg.Bridge, err)
	}
	if err := h.LinkSetUp(br); err != nil {
		return fmt.Errorf("podnet: bring up %s: %w", n.cfg.Bridge, err)
	}
	if n.cfg.Forwarding {
		if err := n.inNodeNS(func() error {
			return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
		}); err != nil {
			return fmt.Errorf("podnet: enable ip_forward: %w", err)
		}
	}
	return nil
}

// RemoveBridge deletes the node bridge (for `weir down` and tests).
func (n *Network) RemoveBridge(ctx context.Context) error {
	h, err := n.node()
	if err != nil {
		return err
	}
	br, err := h.LinkByName(n.cfg.Bridge)
	if _, notFound := err.(netlink.LinkNotFoundError); notFound {
		return nil
	}
	if err != nil {
		return err
	}
	return h.LinkDel(br)
}

// NetNSPath is where the namespace of pod id is bound.
func (n *Network) NetNSPath(id string) string {
	return filepath.Join(n.cfg.NetNSDir, n.cfg.NetNSPrefix+id)
}

// HostIfName is the host end of pod id's veth: a hash, since a UID does
// not fit in 15 bytes.
func HostIfName(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "wv" + hex.EncodeToString(sum[:])[:11]
}

// Setup gives pod id its network and returns it. It converges: a
// namespace, veth, address or route that already exists is kept, so an
// agent restart calls Setup again and gets the same attachment, and the
// containers that joined the namespace keep it.
func (n *Network) Setup(ctx context.Context, id string) (*Attachment, error) {
	if id == "" || strings.ContainsAny(id, "/\x00") {
		return nil, fmt.Errorf("podnet: invalid pod id %q", id)
	}
	h, err := n.node()
	if err != nil {
		return nil, err
	}
	br, err := h.LinkByName(n.cfg.Bridge)
	if err != nil {
		return nil, fmt.Errorf("podnet: find bridge %s (EnsureBridge first): %w", n.cfg.Bridge, err)
	}
	ip, err := n.alloc.Allocate(id)
	if err != nil {
		return nil, err
	}
	path := n.NetNSPath(id)
	if err := ensureNetNS(path); err != nil {
		return nil, err
	}
	podNS, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("podnet: open %s: %w", path, err)
	}
	defer podNS.Close()
	ph, err := netlink.NewHandleAt(podNS)
	if err != nil {
		return nil, fmt.Errorf("podnet: netlink in %s: %w", path, err)
	}
	defer ph.Close()

	hostName := HostIfName(id)
	host, err := h.LinkByName(hostName)
	if _, notFound := err.(netlink.LinkNotFoundError); notFound {
		// A stale eth0 in the pod namespace would block the new peer.
		if old, err := ph.LinkByName(PodIfName); err == nil {
			_ = ph.LinkDel(old)
		}
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: hostName, MTU: n.cfg.MTU, MasterIndex: br.Attrs().Index},
			PeerName:      PodIfName,
			PeerNamespace: netlink.NsFd(int(podNS)),
		}
		if err := h.LinkAdd(veth); err != nil {
			return nil, fmt.Errorf("podnet: create veth %s: %w", hostName, err)
		}
		host, err = h.LinkByName(hostName)
	}
	if err != nil {
		return nil, fmt.Errorf("podnet: find veth %s: %w", hostName, err)
	}
	if host.Attrs().MasterIndex != br.Attrs().Index {
		if err := h.LinkSetMasterByIndex(host, br.Attrs().Index); err != nil {
			return nil, fmt.Errorf("podnet: attach %s to %s: %w", hostName, n.cfg.Bridge, err)
		}
	}
	if err := h.LinkSetUp(host); err != nil {
		return nil, fmt.Errorf("podnet: bring up %s: %w", hostName, err)
	}
	if err := h.LinkSetHairpin(host, true); err != nil {
		return nil, fmt.Errorf("podnet: hairpin on %s: %w", hostName, err)
	}

	pod, err := ph.LinkByName(PodIfName)
	if err != nil {
		return nil, fmt.Errorf("podnet: find %s in pod namespace: %w", PodIfName, err)
	}
	prefix := netip.PrefixFrom(ip, n.alloc.Prefix().Bits())
	if err := ph.AddrReplace(pod, &netlink.Addr{IPNet: ipNet(prefix)}); err != nil {
		return nil, fmt.Errorf("podnet: address %s on %s: %w", prefix, PodIfName, err)
	}
	if err := ph.LinkSetUp(pod); err != nil {
		return nil, fmt.Errorf("podnet: bring up %s: %w", PodIfName, err)
	}
	if lo, err := ph.LinkByName("lo"); err == nil {
		if err := ph.LinkSetUp(lo); err != nil {
			return nil, fmt.Errorf("podnet: bring up lo: %w", err)
		}
	}
	gw := n.alloc.Gateway()
	def := &netlink.Route{LinkIndex: pod.Attrs().Index, Gw: gw.AsSlice(), Dst: ipNet(netip.MustParsePrefix("0.0.0.0/0"))}
	if err := ph.RouteReplace(def); err != nil {
		return nil, fmt.Errorf("podnet: default route via %s: %w", gw, err)
	}
	return &Attachment{
		ID: id, NetNSPath: path,
		HostIfName: hostName, HostIfIndex: host.Attrs().Index, HostMAC: host.Attrs().HardwareAddr,
		PodMAC: pod.Attrs().HardwareAddr, IP: ip, Prefix: prefix, Gateway: gw,
	}, nil
}

// Teardown removes pod id's veth and namespace and releases its address.
// It is idempotent; it runs after the pod's containers are gone.
func (n *Network) Teardown(ctx context.Context, id string) error {
	h, err := n.node()
	if err != nil {
		return err
	}
	var errs []error
	if l, err := h.LinkByName(HostIfName(id)); err == nil {
		if err := h.LinkDel(l); err != nil {
			errs = append(errs, fmt.Errorf("podnet: delete veth %s: %w", l.Attrs().Name, err))
		}
	}
	if err := removeNetNS(n.NetNSPath(id)); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		if err := n.alloc.Release(id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// SyncRoutes makes the node namespace's routes tagged RouteProtocol equal
// to routes: missing ones are added, changed ones replaced, others deleted.
func (n *Network) SyncRoutes(ctx context.Context, routes []Route) error {
	h, err := n.node()
	if err != nil {
		return err
	}
	have, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: RouteProtocol}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return fmt.Errorf("podnet: list routes: %w", err)
	}
	want := map[netip.Prefix]netip.Addr{}
	for _, r := range routes {
		want[r.Dst.Masked()] = r.Via
	}
	var errs []error
	for _, r := range have {
		if r.Dst == nil {
			continue
		}
		dst, _ := netip.ParsePrefix(r.Dst.String())
		via, _ := netip.AddrFromSlice(r.Gw)
		if w, ok := want[dst]; ok && w == via.Unmap() {
			delete(want, dst)
			continue
		}
		if _, ok := want[dst]; ok {
			continue // replaced below
		}
		if err := h.RouteDel(&r); err != nil {
			errs = append(errs, fmt.Errorf("podnet: delete route %s: %w", dst, err))
		}
	}
	for dst, via := range want {
		r := &netlink.Route{Dst: ipNet(dst), Gw: via.AsSlice(), Protocol: RouteProtocol}
		if err := h.RouteReplace(r); err != nil {
			errs = append(errs, fmt.Errorf("podnet: route %s via %s: %w", dst, via, err))
		}
	}
	return errors.Join(errs...)
}

// inNodeNS runs f on a locked thread inside the node namespace. The thread
// is discarded afterwards rather than switched back.
func (n *Network) inNodeNS(f func() error) error {
	if n.cfg.NodeNetNS == "" {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		ns, err := netns.GetFromPath(n.cfg.NodeNetNS)
		if err != nil {
			errc <- err
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	return <-errc
}

// ensureNetNS binds a new network namespace at path unless one is there.
func ensureNetNS(path string) error {
	if isNetNS(path) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("podnet: create %s: %w", filepath.Dir(path), err)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o444)
	if err != nil {
		return fmt.Errorf("podnet: create %s: %w", path, err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("podnet: unshare network namespace: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("podnet: bind network namespace at %s: %w", path, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// isNetNS reports whether path is a bound network namespace.
func isNetNS(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

func removeNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("podnet: unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("podnet: remove %s: %w", path, err)
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func randomMAC() net.HardwareAddr {
	b := make([]byte, 6)
	rand.Read(b)
	b[0] = b[0]&^1 | 2 // unicast, locally administered
	return b
}
