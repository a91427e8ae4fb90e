package ebpf

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/cilium/ebpf"
)

// ErrNoPins is wrapped when no node has socket-LB maps pinned.
var ErrNoPins = errors.New("datapath/ebpf: no pinned socket LB")

// PinnedNodes lists the nodes whose socket-LB maps are pinned under
// bpffs (DefaultBPFFS when empty), sorted.
func PinnedNodes(bpffs string) ([]string, error) {
	if bpffs == "" {
		bpffs = DefaultBPFFS
	}
	root := filepath.Join(bpffs, "weir")
	ents, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list pinned nodes: %w", err)
	}
	var out []string
	for _, e := range ents {
		if _, err := os.Stat(filepath.Join(root, e.Name(), mapFrontends)); e.IsDir() && err == nil {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// PinnedLB is a snapshot of one node's socket-LB maps as pinned: what
// `weir dp` shows. It is read entry by entry while the agent may write,
// so a service changing meanwhile may show a mix of its old and new
// entries; the data path itself never sees one.
type PinnedLB struct {
	Node, Dir string
	// Frontends sorted by address, port and protocol.
	Frontends []PinnedFrontend
	// Services by id.
	Services map[uint32]PinnedService
	// Slots sorted by service id, generation and slot.
	Slots   []PinnedSlot
	Reasons map[string]uint64
	Maps    []MapUsage
}

// PinnedFrontend is one entry of lb4_frontends.
type PinnedFrontend struct {
	Addr      netip.Addr
	Port      uint16
	Proto     uint8
	ServiceID uint32
	// ClusterIP, External, NodePort (a node address) and Wildcard (the
	// nodePort on any local address) are the entry's flags.
	ClusterIP, External, NodePort, Wildcard bool
}

// String is "10.96.0.10:80/tcp".
func (f PinnedFrontend) String() string { return frontend{f.Addr, f.Port, f.Proto}.String() }

// PinnedService is one entry of lb4_services with its counters.
type PinnedService struct {
	ID uint32
	// Count backends live in slots 0..Count-1 of generation Gen.
	Count uint16
	Gen   uint8
	// AffinityTimeout is set for sessionAffinity ClientIP, in seconds.
	Affinity        bool
	AffinityTimeout uint32
	Connects        uint64
	Datagrams       uint64
	Refused         uint64
}

// PinnedSlot is one entry of lb4_slots.
type PinnedSlot struct {
	ServiceID uint32
	Slot      uint16
	Gen       uint8
	Backend   netip.AddrPort
}

// Live reports whether a reader of s's service can pick the slot.
func (s PinnedSlot) Live(svc PinnedService) bool {
	return s.ServiceID == svc.ID && s.Gen == svc.Gen && s.Slot < svc.Count
}

// ReadPinned opens node's pinned socket-LB maps read-only and reads them.
// No agent needs to run; nothing is written. A missing pin directory is
// an error wrapping ErrNoPins.
func ReadPinned(bpffs, node string) (*PinnedLB, error) {
	if !nodeName.MatchString(node) {
		return nil, fmt.Errorf("node name %q: want [A-Za-z0-9._-]+", node)
	}
	dir := Config{BPFFS: bpffs, Node: node}.PinDir()
	if _, err := os.Stat(filepath.Join(dir, mapFrontends)); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w for node %s: %s holds no %s (is the node's agent running with --dataplane=ebpf?)", ErrNoPins, node, dir, mapFrontends)
	}
	open := map[string]*ebpf.Map{}
	defer func() {
		for _, m := range open {
			m.Close()
		}
	}()
	for _, name := range []string{mapFrontends, mapServices, mapSlots, mapSvcStats, mapReasons} {
		m, err := ebpf.LoadPinnedMap(filepath.Join(dir, name), &ebpf.LoadPinOptions{ReadOnly: true})
		if err != nil {
			return nil, fmt.Errorf("open pinned map %s of node %s: %w", name, node, err)
		}
		open[name] = m
	}
	lm := &lbMaps{frontends: open[mapFrontends], services: open[mapServices], slots: open[mapSlots],
		svcStats: open[mapSvcStats], reasons: open[mapReasons]}
	v, err := lm.read()
	if err != nil {
		return nil, fmt.Errorf("read pinned maps of node %s: %w", node, err)
	}
	out := &PinnedLB{Node: node, Dir: dir, Services: map[uint32]PinnedService{}}
	for f, e := range v.Frontends {
		out.Frontends = append(out.Frontends, PinnedFrontend{Addr: f.Addr, Port: f.Port, Proto: f.Proto, ServiceID: e.ID,
			ClusterIP: e.Flags&feClusterIP != 0, External: e.Flags&feExternal != 0, NodePort: e.Flags&feNodePort != 0, Wildcard: e.Flags&feWildcard != 0})
	}
	slices.SortFunc(out.Frontends, func(a, b PinnedFrontend) int {
		return frontend{a.Addr, a.Port, a.Proto}.compare(frontend{b.Addr, b.Port, b.Proto})
	})
	for id, m := range v.Services {
		s := PinnedService{ID: id, Count: m.Count, Gen: m.Gen, Affinity: m.Flags&svcAffinity != 0, AffinityTimeout: m.Timeout}
		n, err := lm.svcCounters(id)
		if err != nil {
			return nil, err
		}
		s.Connects, s.Datagrams, s.Refused = n.Connects, n.Datagrams, n.Refused
		out.Services[id] = s
	}
	for r, b := range v.Slots {
		out.Slots = append(out.Slots, PinnedSlot{ServiceID: r.ID, Slot: r.Slot, Gen: r.Gen, Backend: netip.AddrPortFrom(b.Addr, b.Port)})
	}
	slices.SortFunc(out.Slots, func(a, b PinnedSlot) int {
		switch {
		case a.ServiceID != b.ServiceID:
			return int(a.ServiceID) - int(b.ServiceID)
		case a.Gen != b.Gen:
			return int(a.Gen) - int(b.Gen)
		}
		return int(a.Slot) - int(b.Slot)
	})
	if out.Reasons, err = lm.reasonCounts(); err != nil {
		return nil, err
	}
	out.Maps = []MapUsage{
		{mapFrontends, len(v.Frontends), int(open[mapFrontends].MaxEntries())},
		{mapServices, len(v.Services), int(open[mapServices].MaxEntries())},
		{mapSlots, len(v.Slots), int(open[mapSlots].MaxEntries())},
	}
	return out, nil
}
