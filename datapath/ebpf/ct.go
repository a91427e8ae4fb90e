package ebpf

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// CTEntry is one direction of a flow the uplink programs translate: a
// packet arriving as Src -> Dst leaves as NATSrc -> NATDst.
type CTEntry struct {
	Proto          string // "tcp" or "udp"
	Src, Dst       netip.AddrPort
	NATSrc, NATDst netip.AddrPort
	// Reply marks the backend-to-client direction; SNAT a flow to a
	// remote backend, masqueraded as the node.
	Reply, SNAT bool
	// Closing: a TCP FIN or RST was seen in either direction.
	Closing bool
	// ServiceID is the service port's id in lb4_services.
	ServiceID uint32
	// Age is the time since the flow's first packet; Idle since a packet
	// last matched this entry (to within ctTick).
	Age, Idle time.Duration
}

// ctTick is the unit of ct4_entry.last_seen (CT_TICK_SHIFT in ct.h).
const ctTick = 1 << 24 * time.Nanosecond

func (e CTEntry) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s -> %s => %s -> %s svc=%d", e.Proto, e.Src, e.Dst, e.NATSrc, e.NATDst, e.ServiceID)
	if e.Reply {
		b.WriteString(" reply")
	}
	if e.SNAT {
		b.WriteString(" snat")
	}
	if e.Closing {
		b.WriteString(" closing")
	}
	fmt.Fprintf(&b, " age=%s idle=%s", e.Age.Truncate(time.Second), e.Idle.Truncate(time.Second))
	return b.String()
}

// ReadConntrack reads the conntrack map pinned in pinDir (a node's
// Config.PinDir()), sorted by protocol, source and destination. It only
// reads, so it is safe while the node's agent runs; entries change under
// it. A node without uplink programs has no map: the error wraps
// os.ErrNotExist.
func ReadConntrack(pinDir string) ([]CTEntry, error) {
	m, err := ebpf.LoadPinnedMap(filepath.Join(pinDir, tcnpMapCt4Flows), &ebpf.LoadPinOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("open conntrack map: %w", err)
	}
	defer m.Close()
	now := monotonicNow()
	var out []CTEntry
	var k tcnpCt4Key
	var v tcnpCt4Entry
	it := m.Iterate()
	for it.Next(&k, &v) {
		out = append(out, ctEntry(k, v, now))
	}
	if err := it.Err(); err != nil && !errors.Is(err, ebpf.ErrIterationAborted) {
		return out, fmt.Errorf("read conntrack map: %w", err)
	}
	slices.SortFunc(out, func(a, b CTEntry) int {
		if c := strings.Compare(a.Proto, b.Proto); c != 0 {
			return c
		}
		if c := a.Src.Compare(b.Src); c != 0 {
			return c
		}
		return a.Dst.Compare(b.Dst)
	})
	return out, nil
}

func ctEntry(k tcnpCt4Key, v tcnpCt4Entry, now uint64) CTEntry {
	proto := strconv.Itoa(int(k.Proto))
	switch k.Proto {
	case unix.IPPROTO_TCP:
		proto = "tcp"
	case unix.IPPROTO_UDP:
		proto = "udp"
	}
	ap := func(a uint32, p uint16) netip.AddrPort { return netip.AddrPortFrom(addrFrom(a), ntohs(p)) }
	e := CTEntry{
		Proto: proto,
		Src:   ap(k.Saddr, k.Sport), Dst: ap(k.Daddr, k.Dport),
		NATSrc: ap(v.NatSaddr, v.NatSport), NATDst: ap(v.NatDaddr, v.NatDport),
		Reply:     v.Flags&uint8(tcnpCt4FlagsCT_F_REPLY) != 0,
		SNAT:      v.Flags&uint8(tcnpCt4FlagsCT_F_SNAT) != 0,
		Closing:   v.Flags&uint8(tcnpCt4FlagsCT_F_CLOSING) != 0,
		ServiceID: v.SvcId,
	}
	if now > v.Created {
		e.Age = time.Duration(now - v.Created)
	}
	// last_seen is 32 bits of ticks; the difference modulo 2^32 is right
	// for idle times up to a year. The coarse clock BPF reads may lag
	// this one by a tick: never negative.
	if d := int32(uint32(now>>24) - v.LastSeen); d > 0 {
		e.Idle = time.Duration(d) * ctTick
	}
	return e
}

// monotonicNow is CLOCK_MONOTONIC in ns, the clock of bpf_ktime_get_ns.
func monotonicNow() uint64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		return 0
	}
	return uint64(ts.Nano())
}
