package ebpf

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"weir.dev/weir/datapath"
)

// Frontend and service flags, from the C enums.
const (
	feClusterIP = uint16(socklbLb4FeFlagsFE_F_CLUSTERIP)
	feExternal  = uint16(socklbLb4FeFlagsFE_F_EXTERNAL)
	feNodePort  = uint16(socklbLb4FeFlagsFE_F_NODEPORT)
	feWildcard  = uint16(socklbLb4FeFlagsFE_F_WILDCARD)

	svcAffinity = uint8(socklbLb4SvcFlagsSVC_F_AFFINITY)
)

// maxBackends is the most backends one service port can hold: the slot
// index and the count are 16 bits wide in the maps.
const maxBackends = math.MaxUint16

// frontend is a destination a client names: an IPv4 address (0.0.0.0 for
// the nodePort wildcard), a port and an IP protocol.
type frontend struct {
	Addr  netip.Addr
	Port  uint16
	Proto uint8
}

func (f frontend) String() string {
	p := strconv.Itoa(int(f.Proto))
	switch f.Proto {
	case unix.IPPROTO_TCP:
		p = "tcp"
	case unix.IPPROTO_UDP:
		p = "udp"
	}
	return netip.AddrPortFrom(f.Addr, f.Port).String() + "/" + p
}

func (f frontend) compare(g frontend) int {
	if c := f.Addr.Compare(g.Addr); c != 0 {
		return c
	}
	if c := cmp.Compare(f.Port, g.Port); c != 0 {
		return c
	}
	return cmp.Compare(f.Proto, g.Proto)
}

// backend is an endpoint address and target port.
type backend struct {
	Addr netip.Addr
	Port uint16
}

func (b backend) String() string { return netip.AddrPortFrom(b.Addr, b.Port).String() }

func (b backend) compare(c backend) int {
	if r := b.Addr.Compare(c.Addr); r != 0 {
		return r
	}
	return cmp.Compare(b.Port, c.Port)
}

// svcMeta is a service port's entry in lb4_services.
type svcMeta struct {
	Count   uint16
	Gen     uint8
	Flags   uint8
	Timeout uint32 // affinity timeout, seconds
}

// svcPort is one service port as the socket LB programs it: every
// frontend that reaches it and the backends that take new connections.
type svcPort struct {
	// Svc is the service the port belongs to.
	Svc datapath.ServiceKey
	// Name is namespace/name:port, for counters and logs.
	Name      string
	Frontends map[frontend]uint16 // flags
	Flags     uint8
	Timeout   uint32
	// Backends are usable, deduplicated and sorted.
	Backends []backend
}

// Conflict is a frontend that two service ports claim; the first in
// State order keeps it.
type Conflict struct {
	Frontend   string
	Kept, Lost string
}

// desiredPorts turns st into the service ports the socket LB programs,
// keyed by their ClusterIP frontend. Only IPv4 TCP and UDP are programmed;
// backends follow Port.Usable with the internal traffic policy, because a
// socket hook serves clients inside the cluster whichever frontend they
// name (kube-proxy and Cilium treat pod-to-NodePort traffic the same way).
func desiredPorts(st *datapath.State) (map[frontend]*svcPort, []Conflict) {
	out := map[frontend]*svcPort{}
	owner := map[frontend]string{}
	var conflicts []Conflict
	claim := func(sp *svcPort, f frontend, flags uint16) bool {
		if o, ok := owner[f]; ok && o != sp.Name {
			conflicts = append(conflicts, Conflict{Frontend: f.String(), Kept: o, Lost: sp.Name})
			return false
		}
		owner[f] = sp.Name
		sp.Frontends[f] |= flags
		return true
	}
	for i := range st.Services {
		s := &st.Services[i]
		if !s.ClusterIP.Is4() {
			continue
		}
		for j := range s.Ports {
			p := &s.Ports[j]
			proto, ok := ipProto(p.Protocol)
			if !ok || p.Port == 0 {
				continue
			}
			portName := p.Name
			if portName == "" {
				portName = strconv.Itoa(int(p.Port))
			}
			sp := &svcPort{
				Svc:       s.ServiceKey(),
				Name:      s.Key() + ":" + portName,
				Frontends: map[frontend]uint16{},
			}
			primary := frontend{s.ClusterIP, p.Port, proto}
			if !claim(sp, primary, feClusterIP) {
				continue
			}
			for _, ip := range slices.Concat(s.ExternalIPs, s.LoadBalancerIPs) {
				if ip.Is4() && ip != s.ClusterIP {
					claim(sp, frontend{ip, p.Port, proto}, feExternal)
				}
			}
			if p.NodePort != 0 {
				for _, ip := range st.NodeIPs {
					if ip.Is4() {
						claim(sp, frontend{ip, p.NodePort, proto}, feNodePort)
					}
				}
				claim(sp, frontend{netip.IPv4Unspecified(), p.NodePort, proto}, feWildcard)
			}
			if s.AffinityTimeout > 0 {
				sp.Flags |= svcAffinity
				secs := (s.AffinityTimeout.Nanoseconds() + 1e9 - 1) / 1e9
				sp.Timeout = uint32(min(secs, math.MaxUint32))
			}
			seen := map[backend]bool{}
			for _, b := range p.Usable(st.NodeName, s.InternalTrafficLocal) {
				be := backend{b.Addr, b.Port}
				if b.Addr.Is4() && b.Port != 0 && !seen[be] {
					seen[be] = true
					sp.Backends = append(sp.Backends, be)
				}
			}
			slices.SortFunc(sp.Backends, backend.compare)
			out[primary] = sp
		}
	}
	return out, conflicts
}

func ipProto(p corev1.Protocol) (uint8, bool) {
	switch p {
	case corev1.ProtocolTCP, "":
		return unix.IPPROTO_TCP, true
	case corev1.ProtocolUDP:
		return unix.IPPROTO_UDP, true
	}
	return 0, false
}

// slotRef names one entry of lb4_slots.
type slotRef struct {
	ID   uint32
	Slot uint16
	Gen  uint8
}

// slotPlan replaces one service port's backend set.
type slotPlan struct {
	// Layout is the new set in slot order, Gen its generation.
	Layout []backend
	Gen    uint8
	// Writes fill slots of Gen before the service entry flips; Trims
	// delete slots (of either generation) after it.
	Writes []slotWrite
	Trims  []slotRef
}

type slotWrite struct {
	Slot    uint16
	Backend backend
}

// flips reports whether the service entry must change for the plan.
func (p slotPlan) flips(curGen uint8, curCount int) bool {
	return p.Gen != curGen || len(p.Layout) != curCount
}

// planSlots plans how a service port whose slots 0..len(cur)-1 of
// generation gen hold cur comes to hold want (deduplicated) so that a
// reader, who reads the service entry and then one slot, sees the whole
// old set or the whole new set and never a slot that is missing:
//
//   - want adds to cur: the new backends are written after the old ones in
//     the same generation, then the count grows. Nothing moves.
//   - want is a prefix of cur: the count shrinks, then the tail is trimmed.
//   - otherwise: the whole set is written into the other generation, the
//     service entry flips to it, then every old slot is trimmed. A backend
//     that stays keeps its slot index where it can, so ClientIP affinity
//     (which remembers the slot) survives the change.
//
// force requests the last form whatever the sets (a layout recovered from
// the kernel with holes in it).
func planSlots(cur []backend, gen uint8, want []backend, force bool) slotPlan {
	wantSet := make(map[backend]bool, len(want))
	for _, b := range want {
		wantSet[b] = true
	}
	curSet := make(map[backend]bool, len(cur))
	for _, b := range cur {
		curSet[b] = true
	}
	if !force && len(cur) == len(curSet) {
		kept := 0
		for _, b := range cur {
			if wantSet[b] {
				kept++
			}
		}
		switch {
		case kept == len(cur): // only additions (or nothing)
			p := slotPlan{Layout: slices.Clone(cur), Gen: gen}
			for _, b := range want {
				if !curSet[b] {
					p.Writes = append(p.Writes, slotWrite{uint16(len(p.Layout)), b})
					p.Layout = append(p.Layout, b)
				}
			}
			return p
		case kept == len(wantSet) && prefixHolds(cur, kept, wantSet): // only the tail leaves
			p := slotPlan{Layout: slices.Clone(cur[:kept]), Gen: gen}
			for i := kept; i < len(cur); i++ {
				p.Trims = append(p.Trims, slotRef{Slot: uint16(i), Gen: gen})
			}
			return p
		}
	}

	// Flip generations. Survivors keep their index when it still fits;
	// the holes take the survivors that do not fit, then the newcomers.
	n := len(wantSet)
	p := slotPlan{Layout: make([]backend, n), Gen: gen ^ 1}
	filled := make([]bool, n)
	placed := map[backend]bool{}
	for i, b := range cur {
		if i < n && wantSet[b] && !placed[b] {
			p.Layout[i], filled[i], placed[b] = b, true, true
		}
	}
	var rest []backend
	for _, b := range cur {
		if wantSet[b] && !placed[b] {
			rest = append(rest, b)
			placed[b] = true
		}
	}
	for _, b := range want {
		if !placed[b] {
			rest = append(rest, b)
			placed[b] = true
		}
	}
	for i := range p.Layout {
		if !filled[i] {
			p.Layout[i], rest = rest[0], rest[1:]
		}
		p.Writes = append(p.Writes, slotWrite{uint16(i), p.Layout[i]})
	}
	for i := range cur {
		p.Trims = append(p.Trims, slotRef{Slot: uint16(i), Gen: gen})
	}
	return p
}

// prefixHolds reports whether cur[:n] are all in set.
func prefixHolds(cur []backend, n int, set map[backend]bool) bool {
	for _, b := range cur[:n] {
		if !set[b] {
			return false
		}
	}
	return true
}

// validate checks limits the maps impose on one port.
func (sp *svcPort) validate() error {
	if len(sp.Backends) > maxBackends {
		return fmt.Errorf("service port %s: %d backends, at most %d fit", sp.Name, len(sp.Backends), maxBackends)
	}
	return nil
}
