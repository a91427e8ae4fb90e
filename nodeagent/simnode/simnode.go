// Package simnode builds the simulated nodes `weir up` runs on one
// machine: an underlay bridge (weir-ul0, the host holding the gateway
// address) and, per node, a network namespace weir-<node> whose eth0 sits
// on that bridge. Processes are started inside a node's namespace by a
// thread that entered it with setns, so they keep the host's /sys (and
// with it /sys/fs/cgroup and /sys/fs/bpf), which `ip netns exec` would hide.
// It owns those links and namespaces and nothing else.
package simnode

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Underlay is the bridge the node namespaces share.
type Underlay struct {
	Bridge string       // default weir-ul0
	Prefix netip.Prefix // default 10.99.0.0/24; the host holds the first address
	MTU    int
}

// DefaultUnderlay is what `weir up` uses unless told otherwise.
func DefaultUnderlay() Underlay {
	return Underlay{Bridge: "weir-ul0", Prefix: netip.MustParsePrefix("10.99.0.0/24"), MTU: 1500}
}

// Gateway is the host's address on the underlay.
func (u Underlay) Gateway() netip.Addr { return u.Prefix.Masked().Addr().Next() }

// NodeIP is the address of the i-th node (0-based): .11, .12, …
func (u Underlay) NodeIP(i int) netip.Addr {
	a := u.Prefix.Masked().Addr()
	for range 11 + i {
		a = a.Next()
	}
	return a
}

// Ensure creates the bridge and the gateway address if missing.
func (u Underlay) Ensure() error {
	br, err := netlink.LinkByName(u.Bridge)
	if err != nil {
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: u.Bridge, MTU: u.MTU}}); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create bridge %s: %w", u.Bridge, err)
		}
		if br, err = netlink.LinkByName(u.Bridge); err != nil {
			return fmt.Errorf("find bridge %s: %w", u.Bridge, err)
		}
	}
	addr := &netlink.Addr{IPNet: prefixNet(netip.PrefixFrom(u.Gateway(), u.Prefix.Bits()))}
	if err := netlink.AddrReplace(br, addr); err != nil {
		return fmt.Errorf("address bridge %s: %w", u.Bridge, err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return fmt.Errorf("bring up bridge %s: %w", u.Bridge, err)
	}
	return nil
}

// Remove deletes the bridge (its ports go with the node namespaces).
func (u Underlay) Remove() error {
	br, err := netlink.LinkByName(u.Bridge)
	if err != nil {
		return nil
	}
	if err := netlink.LinkDel(br); err != nil {
		return fmt.Errorf("delete bridge %s: %w", u.Bridge, err)
	}
	return nil
}

// Node is one simulated node.
type Node struct {
	Name     string
	Netns    string // weir-<name>
	IP       netip.Addr
	HostVeth string
	underlay Underlay
}

// NetnsName is the namespace of node name.
func NetnsName(name string) string { return "weir-" + name }

func hostVeth(name string) string {
	n := "wu-" + name
	if len(n) > 15 {
		n = n[:15]
	}
	return n
}

// EnsureNode creates node name's namespace and its eth0 on the underlay
// with address ip, a default route via the gateway, and forwarding on.
func (u Underlay) EnsureNode(name string, ip netip.Addr) (*Node, error) {
	n := &Node{Name: name, Netns: NetnsName(name), IP: ip, HostVeth: hostVeth(name), underlay: u}
	ns, err := netns.GetFromName(n.Netns)
	if err != nil {
		if ns, err = newNamed(n.Netns); err != nil {
			return nil, fmt.Errorf("create netns %s: %w", n.Netns, err)
		}
	}
	defer ns.Close()
	br, err := netlink.LinkByName(u.Bridge)
	if err != nil {
		return nil, fmt.Errorf("find underlay bridge %s: %w", u.Bridge, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("open netlink in %s: %w", n.Netns, err)
	}
	defer h.Close()
	if _, err := h.LinkByName("eth0"); err != nil {
		_ = netlink.LinkDel(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: n.HostVeth}})
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: n.HostVeth, MasterIndex: br.Attrs().Index, MTU: u.MTU}, PeerName: n.HostVeth + "p"}
		if err := netlink.LinkAdd(veth); err != nil {
			return nil, fmt.Errorf("create veth for %s: %w", name, err)
		}
		peer, err := netlink.LinkByName(n.HostVeth + "p")
		if err != nil {
			return nil, err
		}
		if err := netlink.LinkSetNsFd(peer, int(ns)); err != nil {
			return nil, fmt.Errorf("move veth into %s: %w", n.Netns, err)
		}
		if err := netlink.LinkSetUp(veth); err != nil {
			return nil, err
		}
		inner, err := h.LinkByName(n.HostVeth + "p")
		if err != nil {
			return nil, err
		}
		if err := h.LinkSetName(inner, "eth0"); err != nil {
			return nil, fmt.Errorf("name eth0 in %s: %w", n.Netns, err)
		}
	}
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		return nil, err
	}
	if err := h.AddrReplace(eth0, &netlink.Addr{IPNet: prefixNet(netip.PrefixFrom(ip, u.Prefix.Bits()))}); err != nil {
		return nil, fmt.Errorf("address eth0 in %s: %w", n.Netns, err)
	}
	for _, l := range []string{"lo", "eth0"} {
		link, err := h.LinkByName(l)
		if err != nil {
			return nil, err
		}
		if err := h.LinkSetUp(link); err != nil {
			return nil, fmt.Errorf("bring up %s in %s: %w", l, n.Netns, err)
		}
	}
	gw := u.Gateway()
	if err := h.RouteReplace(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: gw.AsSlice()}); err != nil {
		return nil, fmt.Errorf("default route in %s: %w", n.Netns, err)
	}
	if err := n.Do(func() error { return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644) }); err != nil {
		return nil, fmt.Errorf("enable forwarding in %s: %w", n.Netns, err)
	}
	return n, nil
}

// RemoveNode deletes node name's namespace (its veth goes with it).
func RemoveNode(name string) error {
	_ = netlink.LinkDel(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostVeth(name)}})
	if err := netns.DeleteNamed(NetnsName(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete netns %s: %w", NetnsName(name), err)
	}
	return nil
}

// Do runs f on an OS thread inside the node's namespace. The thread is
// discarded afterwards rather than switched back, so a failure to return
// can never leave a host thread in the wrong namespace.
func (n *Node) Do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		h, err := netns.GetFromName(n.Netns)
		if err != nil {
			errc <- err
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	return <-errc
}

// Start starts cmd inside the node's namespace: the child inherits the
// namespace of the thread that forks it.
func (n *Node) Start(cmd *exec.Cmd) error {
	return n.Do(cmd.Start)
}

// newNamed creates a named namespace without leaving the calling thread
// in it.
func newNamed(name string) (netns.NsHandle, error) {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// NewNamed switches this thread into the new namespace; the thread
		// is discarded with the goroutine.
		h, err := netns.NewNamed(name)
		if err == nil {
			h.Close()
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		return 0, err
	}
	return netns.GetFromName(name)
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
