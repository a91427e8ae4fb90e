package ebpf

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"weir.dev/weir/datapath"
)

// XDPMode is how the uplink's XDP program attaches.
type XDPMode string

const (
	// XDPOff attaches no XDP program: NodePort traffic is handled by TC.
	XDPOff XDPMode = "off"
	// XDPNative runs in the driver (on veth: XDP_TX delivers only to a
	// peer that has an XDP program itself; see MACHINE.md).
	XDPNative XDPMode = "native"
	// XDPGeneric runs after the skb is built: slower than native,
	// available on every interface.
	XDPGeneric XDPMode = "generic"
)

// ParseXDPMode reads a --xdp flag value.
func ParseXDPMode(s string) (XDPMode, error) {
	switch m := XDPMode(s); m {
	case XDPOff, XDPNative, XDPGeneric:
		return m, nil
	case "":
		return XDPOff, nil
	}
	return "", fmt.Errorf("xdp mode %q: want native, generic or off", s)
}

// Pin names of the uplink programs' links under <pin dir>/links/.
const (
	pinTCIngress  = "tc_ingress"
	pinTCEgress   = "tc_egress"
	pinXDPNative  = "xdp_native"
	pinXDPGeneric = "xdp_generic"
)

// nodePortMaps are the maps the uplink programs add to the node's pin
// directory (the socket LB's maps are shared, not copied).
var nodePortMaps = []string{tcnpMapCt4Flows, tcnpMapLb4Maglev, tcnpMapNpAffinity, tcnpMapNpSvcStats, tcnpMapNpBackendStats}

func (c Config) nodePortDefaults() (Config, error) {
	if c.XDP == "" {
		c.XDP = XDPOff
	}
	if _, err := ParseXDPMode(string(c.XDP)); err != nil {
		return c, fmt.Errorf("datapath/ebpf: %w", err)
	}
	if c.XDP != XDPOff && c.Uplink == "" {
		return c, fmt.Errorf("datapath/ebpf: xdp mode %s needs an uplink interface", c.XDP)
	}
	if c.MaglevSize == 0 {
		c.MaglevSize = DefaultMaglevSize
	}
	if err := checkMaglevSize(c.MaglevSize); err != nil {
		return c, err
	}
	return c, nil
}

// uplink is the interface the per-packet programs attach to.
type uplink struct {
	Name    string
	Index   int
	Addr    netip.Addr // its first IPv4 address: the SNAT source
	XDPMode XDPMode
	// SNATPorts are the source ports flows to remote backends get.
	SNATPorts snatPorts
}

// snatPorts are two segments of source ports, [LowFirst,
// LowFirst+LowCount) and [HighFirst, HighFirst+HighCount): the ports
// from 1024 up outside the node's ephemeral range, which its own
// connections never take (bpf/lib/ct.h says why that is enough).
type snatPorts struct {
	LowFirst, LowCount, HighFirst, HighCount uint32
}

// natPortStride is NAT_PORT_STRIDE in bpf/lib/ct.h: the probes for a
// free port step by it modulo the port count.
const natPortStride = 7919

// snatPortsOutside returns the SNAT ports for the ephemeral range
// [lo, hi], or an error when it leaves none. A count that is a multiple
// of the probe stride loses one port, so the probes never repeat one.
func snatPortsOutside(lo, hi int) (snatPorts, error) {
	if lo < 1 || hi > 65535 || lo > hi {
		return snatPorts{}, fmt.Errorf("ephemeral port range %d-%d is not a range of ports", lo, hi)
	}
	var p snatPorts
	if lo > 1024 {
		p.LowFirst, p.LowCount = 1024, uint32(lo-1024)
	}
	if hi < 65535 {
		p.HighFirst, p.HighCount = uint32(hi+1), uint32(65535-hi)
	}
	if p.LowCount+p.HighCount == 0 {
		return p, fmt.Errorf("ephemeral port range %d-%d leaves no port from 1024 up to translate flows to remote backends from (narrow net.ipv4.ip_local_port_range)", lo, hi)
	}
	if (p.LowCount+p.HighCount)%natPortStride == 0 {
		if p.HighCount > 0 {
			p.HighCount--
		} else {
			p.LowCount--
		}
	}
	return p, nil
}

// ephemeralPorts reads net.ipv4.ip_local_port_range of the calling
// thread's network namespace.
func ephemeralPorts() (lo, hi int, err error) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0, fmt.Errorf("read the ephemeral port range: %w", err)
	}
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil {
		return 0, 0, fmt.Errorf("parse the ephemeral port range %q: %w", strings.TrimSpace(string(b)), err)
	}
	return lo, hi, nil
}

// findUplink reads name's index and IPv4 address, and the ports left
// for SNAT by the ephemeral range, in the calling thread's network
// namespace.
func findUplink(name string) (uplink, error) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return uplink{}, fmt.Errorf("uplink %s: %w", name, err)
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return uplink{}, fmt.Errorf("uplink %s addresses: %w", name, err)
	}
	up := uplink{Name: name, Index: ifc.Index}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
			up.Addr = p.Addr()
			break
		}
	}
	if !up.Addr.IsValid() {
		return uplink{}, fmt.Errorf("uplink %s has no IPv4 address to masquerade remote backends with", name)
	}
	lo, hi, err := ephemeralPorts()
	if err == nil {
		up.SNATPorts, err = snatPortsOutside(lo, hi)
	}
	if err != nil {
		return uplink{}, fmt.Errorf("uplink %s: %w", name, err)
	}
	return up, nil
}

// nodePort is the uplink path of one node: TC (and XDP) programs, their
// links, and the Maglev tables it keeps in step with the socket LB's
// service ports. Not safe for concurrent use (Dataplane locks).
type nodePort struct {
	up    uplink
	tc    *tcnpObjects
	xdp   *xdpnpObjects
	links []link.Link
	m     int // slots per Maglev table
	// tables are the backend sets whose tables are live, by service
	// port id; a nil set is a table recovered from pins, not yet known.
	tables map[uint32][]backend
}

// sockMaps names the socket LB's maps for sharing with the uplink programs.
func sockMaps(o *socklbObjects) map[string]*ebpf.Map {
	return map[string]*ebpf.Map{
		mapFrontends: o.Lb4Frontends, mapServices: o.Lb4Services, mapSlots: o.Lb4Slots,
		mapRevNAT: o.Lb4Revnat, mapAffinity: o.Lb4Affinity, mapSvcStats: o.Lb4SvcStats, mapReasons: o.Lb4Reasons,
	}
}

// nodePortSpecs returns the TC and XDP collection specs sized and
// configured for cfg and up.
func nodePortSpecs(cfg Config, up uplink) (tc, xdp *ebpf.CollectionSpec, err error) {
	if tc, err = loadTcnp(); err != nil {
		return nil, nil, err
	}
	if xdp, err = loadXdpnp(); err != nil {
		return nil, nil, err
	}
	for _, spec := range []*ebpf.CollectionSpec{tc, xdp} {
		for name, size := range map[string]int{
			mapFrontends: cfg.Sizes.Frontends, mapServices: cfg.Sizes.Services, mapSvcStats: cfg.Sizes.Services,
			mapSlots: cfg.Sizes.Slots, mapRevNAT: cfg.Sizes.RevNAT, mapAffinity: cfg.Sizes.Affinity,
			tcnpMapCt4Flows: cfg.Sizes.Conntrack, tcnpMapLb4Maglev: cfg.Sizes.Services,
			tcnpMapNpAffinity: cfg.Sizes.Affinity, tcnpMapNpSvcStats: cfg.Sizes.Services,
		} {
			spec.Maps[name].MaxEntries = uint32(size)
		}
		spec.Maps[tcnpMapLb4Maglev].ValueSize = maglevValueSize(cfg.MaglevSize)
		for name, v := range map[string]any{
			tcnpVarUplinkIfindex: uint32(up.Index),
			tcnpVarSnatAddr:      addrBits(up.Addr),
			tcnpVarMaglevM:       uint32(cfg.MaglevSize),
			tcnpVarSnatLowFirst:  up.SNATPorts.LowFirst,
			tcnpVarSnatLowCount:  up.SNATPorts.LowCount,
			tcnpVarSnatHighFirst: up.SNATPorts.HighFirst,
			tcnpVarSnatHighCount: up.SNATPorts.HighCount,
		} {
			if err := spec.Variables[name].Set(v); err != nil {
				return nil, nil, fmt.Errorf("set %s: %w", name, err)
			}
		}
	}
	return tc, xdp, nil
}

// openNodePort loads the uplink programs against the node's maps (the
// socket LB's shared by replacement, their own pinned by name), reads
// which Maglev tables are pinned, and attaches to the uplink, swapping
// programs inside pinned links from an earlier run.
func openNodePort(cfg Config, pinDir string, sock *socklbObjects) (*nodePort, error) {
	up, err := findUplink(cfg.Uplink)
	if err != nil {
		return nil, err
	}
	up.XDPMode = cfg.XDP
	tcSpec, xdpSpec, err := nodePortSpecs(cfg, up)
	if err != nil {
		return nil, err
	}
	load := func(spec *ebpf.CollectionSpec, to any, repl map[string]*ebpf.Map) error {
		err := spec.LoadAndAssign(to, &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: pinDir}, MapReplacements: repl})
		if errors.Is(err, ebpf.ErrMapIncompatible) {
			return fmt.Errorf("a map pinned in %s differs from this build or configuration (remove the node's pins to resize or upgrade it): %w", pinDir, err)
		}
		return err
	}
	if err := checkPinnedTables(cfg, pinDir); err != nil {
		return nil, err
	}
	np := &nodePort{up: up, m: cfg.MaglevSize, tables: map[uint32][]backend{}}
	np.tc = &tcnpObjects{}
	if err := load(tcSpec, np.tc, sockMaps(sock)); err != nil {
		return nil, fmt.Errorf("load uplink TC programs: %w", err)
	}
	if cfg.XDP != XDPOff {
		repl := sockMaps(sock)
		for name, m := range map[string]*ebpf.Map{
			tcnpMapCt4Flows: np.tc.Ct4Flows, tcnpMapLb4Maglev: np.tc.Lb4Maglev, tcnpMapNpAffinity: np.tc.NpAffinity,
			tcnpMapNpSvcStats: np.tc.NpSvcStats, tcnpMapNpBackendStats: np.tc.NpBackendStats,
		} {
			repl[name] = m
		}
		np.xdp = &xdpnpObjects{}
		if err := load(xdpSpec, np.xdp, repl); err != nil {
			np.close()
			return nil, fmt.Errorf("load uplink XDP program: %w", err)
		}
	}
	// Tables pinned by an earlier run stay live until the next Apply
	// says what they should be.
	var id uint32
	for key := any(nil); ; key = id {
		if err := np.tc.Lb4Maglev.NextKey(key, &id); errors.Is(err, ebpf.ErrKeyNotExist) {
			break
		} else if err != nil {
			np.close()
			return nil, fmt.Errorf("read %s: %w", tcnpMapLb4Maglev, err)
		}
		np.tables[id] = nil
	}
	if err := np.attach(filepath.Join(pinDir, "links")); err != nil {
		np.close()
		return nil, err
	}
	return np, nil
}

// maglevValueSize is the size of one lb4_maglev value: struct
// lb4_mgl_table's header and m slots of 8 bytes.
func maglevValueSize(m int) uint32 { return uint32(8 + 8*m) }

// checkPinnedTables looks at the lb4_maglev pinned in pinDir, if any,
// before the programs load against it. One made with another Maglev size
// is refused: the programs would index it with the new one. One of
// another shape (the map of maps of earlier builds) has its pin removed,
// so a new map is made and the next Apply writes every table: the old
// map lives on only as long as the programs swapped out still use it,
// and established flows keep their backend from conntrack, not from the
// table.
func checkPinnedTables(cfg Config, pinDir string) error {
	path := filepath.Join(pinDir, tcnpMapLb4Maglev)
	m, err := ebpf.LoadPinnedMap(path, nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open pinned %s: %w", path, err)
	}
	defer m.Close()
	if m.Type() != ebpf.Hash || m.KeySize() != 4 {
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("remove pinned %s of an earlier layout: %w", path, err)
		}
		cfg.Logger.Info("maglev tables pinned in an earlier layout replaced; the next apply rewrites them",
			"node", cfg.Node, "map", path, "type", m.Type().String())
		return nil
	}
	if got, want := m.ValueSize(), maglevValueSize(cfg.MaglevSize); got != want {
		return fmt.Errorf("maglev tables pinned in %s have %d entries, configured %d (remove the node's pins to change it): %w",
			pinDir, (int(got)-8)/8, cfg.MaglevSize, ebpf.ErrMapIncompatible)
	}
	return nil
}

// attach links the programs to the uplink: tcx ingress and egress, and
// XDP in the configured mode; a link pinned by an earlier run on the same
// interface gets the new program swapped in, atomically.
func (np *nodePort) attach(linkDir string) error {
	if err := os.MkdirAll(linkDir, 0o700); err != nil {
		return fmt.Errorf("attach uplink programs: %w", err)
	}
	ifindex := np.up.Index
	for _, a := range []struct {
		pin    string
		attach ebpf.AttachType
		prog   *ebpf.Program
	}{
		{pinTCIngress, ebpf.AttachTCXIngress, np.tc.WeirTcIngress},
		{pinTCEgress, ebpf.AttachTCXEgress, np.tc.WeirTcEgress},
	} {
		path := filepath.Join(linkDir, a.pin)
		l, err := reusePinnedUplinkLink(path, func(info *link.Info) bool {
			tcx := info.TCX()
			return tcx != nil && int(tcx.Ifindex) == ifindex && ebpf.AttachType(tcx.AttachType) == a.attach
		})
		if err != nil {
			return err
		}
		if l != nil {
			if err := l.Update(a.prog); err != nil {
				l.Close()
				return fmt.Errorf("update pinned link %s: %w", path, err)
			}
		} else {
			if l, err = link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: a.prog, Attach: a.attach}); err != nil {
				return fmt.Errorf("attach %s to %s: %w", a.pin, np.up.Name, err)
			}
			if err := l.Pin(path); err != nil {
				l.Close()
				return fmt.Errorf("pin link %s: %w", path, err)
			}
		}
		np.links = append(np.links, l)
	}

	// XDP: one pin per mode, since a link cannot change its mode; the
	// other mode's link (or both, when off) goes.
	want := map[XDPMode]string{XDPNative: pinXDPNative, XDPGeneric: pinXDPGeneric}[np.up.XDPMode]
	for _, pin := range []string{pinXDPNative, pinXDPGeneric} {
		if pin != want {
			if err := removePinnedLink(filepath.Join(linkDir, pin)); err != nil {
				return err
			}
		}
	}
	if want == "" {
		return nil
	}
	path := filepath.Join(linkDir, want)
	l, err := reusePinnedUplinkLink(path, func(info *link.Info) bool {
		x := info.XDP()
		return x != nil && int(x.Ifindex) == ifindex
	})
	if err != nil {
		return err
	}
	if l != nil {
		if err := l.Update(np.xdp.WeirXdp); err != nil {
			l.Close()
			return fmt.Errorf("update pinned link %s: %w", path, err)
		}
	} else {
		flags := link.XDPGenericMode
		if np.up.XDPMode == XDPNative {
			flags = link.XDPDriverMode
		}
		if l, err = link.AttachXDP(link.XDPOptions{Program: np.xdp.WeirXdp, Interface: ifindex, Flags: flags}); err != nil {
			return fmt.Errorf("attach xdp (%s) to %s: %w", np.up.XDPMode, np.up.Name, err)
		}
		if err := l.Pin(path); err != nil {
			l.Close()
			return fmt.Errorf("pin link %s: %w", path, err)
		}
	}
	np.links = append(np.links, l)
	return nil
}

// reusePinnedUplinkLink opens the link pinned at path if ok accepts its
// info; a link attached elsewhere is detached and nil returned.
func reusePinnedUplinkLink(path string, ok func(*link.Info) bool) (link.Link, error) {
	l, err := link.LoadPinnedLink(path, nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open pinned link %s: %w", path, err)
	}
	if info, err := l.Info(); err == nil && ok(info) {
		return l, nil
	}
	if err := l.Unpin(); err != nil {
		l.Close()
		return nil, fmt.Errorf("unpin stale link %s: %w", path, err)
	}
	l.Close()
	return nil, nil
}

// removePinnedLink detaches the link pinned at path, if any.
func removePinnedLink(path string) error {
	l, err := link.LoadPinnedLink(path, nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open pinned link %s: %w", path, err)
	}
	defer l.Close() // the last reference: detaches
	if err := l.Unpin(); err != nil {
		return fmt.Errorf("unpin %s: %w", path, err)
	}
	return nil
}

// removeNodePort detaches the uplink programs pinned under dir and
// deletes their maps' pins.
func removeNodePort(dir string) error {
	var errs []error
	for _, pin := range []string{pinTCIngress, pinTCEgress, pinXDPNative, pinXDPGeneric} {
		errs = append(errs, removePinnedLink(filepath.Join(dir, "links", pin)))
	}
	for _, m := range nodePortMaps {
		if err := os.Remove(filepath.Join(dir, m)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove pin: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (np *nodePort) close() error {
	var errs []error
	for _, l := range np.links {
		errs = append(errs, l.Close())
	}
	np.links = nil
	if np.xdp != nil {
		errs = append(errs, np.xdp.Close())
	}
	if np.tc != nil {
		errs = append(errs, np.tc.Close())
	}
	return errors.Join(errs...)
}

// externalPorts returns, for every IPv4 service port that has an external
// frontend (a nodePort, an externalIP or a load-balancer IP), keyed like
// desiredPorts, the backends external clients may reach: usable ones
// under the port's externalTrafficPolicy, deduplicated and sorted.
// ClusterIP-only ports are absent, so they cost no table: packets from
// outside to a ClusterIP choose among the socket LB's slots instead
// (np_pick_slot in bpf/lib/nodeport.h). A table per port would hold
// 8 KiB per port and cost a Maglev computation per change.
func externalPorts(st *datapath.State) map[frontend][]backend {
	out := map[frontend][]backend{}
	for i := range st.Services {
		s := &st.Services[i]
		if !s.ClusterIP.Is4() {
			continue
		}
		for j := range s.Ports {
			p := &s.Ports[j]
			proto, ok := ipProto(p.Protocol)
			if !ok || p.Port == 0 || (p.NodePort == 0 && len(s.ExternalIPs)+len(s.LoadBalancerIPs) == 0) {
				continue
			}
			seen := map[backend]bool{}
			var bs []backend
			for _, b := range p.Usable(st.NodeName, s.ExternalTrafficLocal) {
				be := backend{b.Addr, b.Port}
				if b.Addr.Is4() && b.Port != 0 && !seen[be] {
					seen[be] = true
					bs = append(bs, be)
				}
			}
			slices.SortFunc(bs, backend.compare)
			out[frontend{s.ClusterIP, p.Port, proto}] = bs
		}
	}
	return out
}

// apply brings the Maglev tables in step with the whole of st and the
// service port ids lb holds: a table per port with external frontends and
// usable backends, each written whole as one lb4_maglev value (putTable),
// so no lookup sees half a table. Tables of
// ports st no longer has are deleted.
func (np *nodePort) apply(ctx context.Context, st *datapath.State, lb *lbSync) error {
	return np.update(ctx, externalPorts(st), lb, nil, true)
}

// change is apply for the services in part only (ApplyServices): stale
// are the ids their ports held before the change; those that no port of
// part uses now lose their tables. Other tables are not looked at.
func (np *nodePort) change(ctx context.Context, part *datapath.State, stale []uint32, lb *lbSync) error {
	return np.update(ctx, externalPorts(part), lb, stale, false)
}

func (np *nodePort) update(ctx context.Context, ext map[frontend][]backend, lb *lbSync, stale []uint32, whole bool) error {
	var errs []error
	live := map[uint32]bool{}
	for key, bs := range ext {
		p := lb.ports[key]
		if p == nil {
			continue // not programmed (a conflict, or it failed): nothing points here
		}
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		if len(bs) == 0 {
			continue // no table: the program refuses or drops
		}
		live[p.ID] = true
		if cur, known := np.tables[p.ID]; known && cur != nil && slices.Equal(cur, bs) {
			continue
		}
		if err := np.putTable(p.ID, bs); err != nil {
			errs = append(errs, fmt.Errorf("service port %s: %w", p.Name, err))
			continue
		}
		np.tables[p.ID] = bs
	}
	drop := func(id uint32) {
		if err := ignoreMissing(np.tc.Lb4Maglev.Delete(id)); err != nil {
			errs = append(errs, fmt.Errorf("delete from %s: %w", tcnpMapLb4Maglev, err))
			return
		}
		delete(np.tables, id)
	}
	if whole {
		for id := range np.tables {
			if !live[id] {
				drop(id)
			}
		}
	}
	for _, id := range stale {
		if _, has := np.tables[id]; has && !live[id] {
			drop(id)
		}
	}
	return errors.Join(errs...)
}

// putTable writes bs's Maglev table as svc id's lb4_maglev value in one
// update: the kernel links the new element, fully written, in place of
// the old, and waits for no RCU grace period (a map-of-maps update did,
// ~12 ms each: issue #4).
func (np *nodePort) putTable(id uint32, bs []backend) error {
	if len(bs) >= np.m {
		return fmt.Errorf("%d backends do not fit a Maglev table of %d (raise the maglev size)", len(bs), np.m)
	}
	table := maglevTable(bs, np.m)
	val := make([]byte, maglevValueSize(np.m))
	binary.NativeEndian.PutUint32(val, id)
	for i, bi := range table {
		slot := val[8+8*i:]
		binary.NativeEndian.PutUint32(slot, addrBits(bs[bi].Addr))
		binary.NativeEndian.PutUint16(slot[4:], htons(bs[bi].Port))
	}
	if err := np.tc.Lb4Maglev.Update(id, val, ebpf.UpdateAny); err != nil {
		if errors.Is(err, unix.E2BIG) {
			return fmt.Errorf("update %s: %w", tcnpMapLb4Maglev, mapFull(tcnpMapLb4Maglev, int(np.tc.Lb4Maglev.MaxEntries())))
		}
		return fmt.Errorf("update %s: %w", tcnpMapLb4Maglev, err)
	}
	return nil
}

// readTable reads svc id's Maglev table back from lb4_maglev: the
// backend of every slot, the zero backend for an empty one.
func (np *nodePort) readTable(id uint32) ([]backend, error) {
	var val []byte
	if err := np.tc.Lb4Maglev.Lookup(id, &val); err != nil {
		return nil, fmt.Errorf("read %s[%d]: %w", tcnpMapLb4Maglev, id, err)
	}
	if got := binary.NativeEndian.Uint32(val); got != id {
		return nil, fmt.Errorf("read %s[%d]: table written for service port %d", tcnpMapLb4Maglev, id, got)
	}
	out := make([]backend, np.m)
	for i := range out {
		slot := val[8+8*i:]
		if a := binary.NativeEndian.Uint32(slot); a != 0 {
			out[i] = backend{addrFrom(a), ntohs(binary.NativeEndian.Uint16(slot[4:]))}
		}
	}
	return out, nil
}

// UplinkCounters are the counters of the per-packet path on the uplink.
// A service port's row starts from zero when its id is allocated (lbMaps
// resets it with the socket LB's counters).
type UplinkCounters struct {
	// Uplink is the interface; XDP the XDP mode (off, native, generic).
	Uplink string
	XDP    XDPMode
	// Services has one row per service port with external frontends,
	// and one per ClusterIP-only port that packets from outside reached.
	Services []UplinkServiceCounters
	// Backends has one row per backend that received external flows.
	Backends []UplinkBackendCounters
}

// UplinkServiceCounters are one service port's uplink counters: packets
// and bytes translated (both directions), flows created, packets refused
// (no backend: ICMP port unreachable) and dropped (no local backend, no
// SNAT port, no route).
type UplinkServiceCounters struct {
	Name, Frontend                          string
	Packets, Bytes, Flows, Refused, Dropped uint64
}

// UplinkBackendCounters are one backend's external flows and packets.
type UplinkBackendCounters struct {
	Backend        string
	Flows, Packets uint64
}

func (np *nodePort) counters(lb *lbSync) (UplinkCounters, error) {
	c := UplinkCounters{Uplink: np.up.Name, XDP: np.up.XDPMode}
	for key, p := range lb.ports {
		external := false
		for _, flags := range p.Frontends {
			external = external || flags&(feNodePort|feExternal) != 0
		}
		var per []tcnpNpSvcCounters
		if err := np.tc.NpSvcStats.Lookup(p.ID, &per); err != nil {
			return c, fmt.Errorf("read %s: %w", tcnpMapNpSvcStats, err)
		}
		row := UplinkServiceCounters{Name: p.Name, Frontend: key.String()}
		for _, v := range per {
			row.Packets += v.Packets
			row.Bytes += v.Bytes
			row.Flows += v.Flows
			row.Refused += v.Refused
			row.Dropped += v.Dropped
		}
		// Every ClusterIP can be reached from outside, but few are:
		// a ClusterIP-only port gets a row once the uplink saw it.
		if external || row.Packets+row.Refused+row.Dropped != 0 {
			c.Services = append(c.Services, row)
		}
	}
	slices.SortFunc(c.Services, func(a, b UplinkServiceCounters) int { return strings.Compare(a.Name, b.Name) })
	var k tcnpNpBackendKey
	var per []tcnpNpBackendCounters
	it := np.tc.NpBackendStats.Iterate()
	for it.Next(&k, &per) {
		row := UplinkBackendCounters{Backend: backend{addrFrom(k.Addr), ntohs(k.Port)}.String()}
		for _, v := range per {
			row.Flows += v.Flows
			row.Packets += v.Packets
		}
		c.Backends = append(c.Backends, row)
	}
	if err := it.Err(); err != nil {
		return c, fmt.Errorf("read %s: %w", tcnpMapNpBackendStats, err)
	}
	slices.SortFunc(c.Backends, func(a, b UplinkBackendCounters) int { return strings.Compare(a.Backend, b.Backend) })
	return c, nil
}

// openUplink opens the uplink path when cfg names an uplink; without
// one, it detaches uplink programs an earlier run left pinned.
func openUplink(cfg Config, pinDir string, sock *socklbObjects) (*nodePort, error) {
	if cfg.Uplink == "" {
		if err := removeNodePort(pinDir); err != nil {
			return nil, fmt.Errorf("remove uplink programs of node %s: %w", cfg.Node, err)
		}
		return nil, nil
	}
	np, err := openNodePort(cfg, pinDir, sock)
	if err != nil {
		return nil, fmt.Errorf("open uplink path of node %s on %s: %w", cfg.Node, cfg.Uplink, err)
	}
	cfg.Logger.Info("uplink path ready", "node", cfg.Node, "uplink", cfg.Uplink, "xdp", string(cfg.XDP),
		"maglev_size", cfg.MaglevSize, "recovered_tables", len(np.tables))
	return np, nil
}
