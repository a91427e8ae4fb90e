package ebpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// ErrMapFull is wrapped by every error about a map that has no room left;
// the message names the map and its capacity.
var ErrMapFull = errors.New("datapath/ebpf: map full")

// Map names as pinned under the node's directory.
const (
	mapFrontends = socklbMapLb4Frontends
	mapServices  = socklbMapLb4Services
	mapSlots     = socklbMapLb4Slots
	mapRevNAT    = socklbMapLb4Revnat
	mapAffinity  = socklbMapLb4Affinity
	mapSvcStats  = socklbMapLb4SvcStats
	mapReasons   = socklbMapLb4Reasons
)

// MapFullError is a write refused for want of room in Map. It matches
// ErrMapFull with errors.Is.
type MapFullError struct {
	Map      string
	Capacity int
}

func (e *MapFullError) Error() string {
	return fmt.Sprintf("%v: %s holds at most %d entries (raise its size in the configuration)", ErrMapFull, e.Map, e.Capacity)
}

func (e *MapFullError) Is(target error) bool { return target == ErrMapFull }

func mapFull(name string, capacity int) error {
	return &MapFullError{Map: name, Capacity: capacity}
}

// mapFullErrors lists every MapFullError in err's tree (an Apply joins
// one error per failed service port).
func mapFullErrors(err error) []*MapFullError {
	var out []*MapFullError
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if mf, ok := e.(*MapFullError); ok {
			out = append(out, mf)
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// lbMaps writes and reads the socket-LB maps of one node through the
// types bpf2go generated from the C. It implements lbWriter.
type lbMaps struct {
	frontends, services, slots, svcStats, reasons *ebpf.Map
	caps                                          mapCaps
	ncpu                                          int
	// uplinkStats are the uplink path's per-service counters (nil
	// without an uplink); they restart with an id like svcStats.
	uplinkStats *ebpf.Map
}

// wrap names the map in err and turns "no room" into ErrMapFull.
func (m *lbMaps) wrap(op, name string, capacity int, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.E2BIG) && capacity > 0:
		return fmt.Errorf("%s %s: %w", op, name, mapFull(name, capacity))
	}
	return fmt.Errorf("%s %s: %w", op, name, err)
}

func (m *lbMaps) putSlot(r slotRef, b backend) error {
	err := m.slots.Update(slotKey(r), backendValue(b), ebpf.UpdateAny)
	return m.wrap("update", mapSlots, m.caps.Slots, err)
}

func (m *lbMaps) delSlot(r slotRef) error {
	return m.wrap("delete from", mapSlots, 0, ignoreMissing(m.slots.Delete(slotKey(r))))
}

func (m *lbMaps) putService(id uint32, s svcMeta) error {
	v := socklbLb4Svc{Count: s.Count, Gen: s.Gen, Flags: s.Flags, AffinityTimeout: s.Timeout}
	return m.wrap("update", mapServices, m.caps.Services, m.services.Update(id, &v, ebpf.UpdateAny))
}

func (m *lbMaps) delService(id uint32) error {
	return m.wrap("delete from", mapServices, 0, ignoreMissing(m.services.Delete(id)))
}

func (m *lbMaps) putFrontend(f frontend, id uint32, flags uint16) error {
	v := socklbLb4Fe{SvcId: id, Flags: flags}
	return m.wrap("update", mapFrontends, m.caps.Frontends, m.frontends.Update(frontendKey(f), &v, ebpf.UpdateAny))
}

func (m *lbMaps) delFrontend(f frontend) error {
	return m.wrap("delete from", mapFrontends, 0, ignoreMissing(m.frontends.Delete(frontendKey(f))))
}

func (m *lbMaps) resetStats(id uint32) error {
	zero := make([]socklbLb4SvcCounters, m.ncpu)
	if err := m.wrap("reset", mapSvcStats, 0, m.svcStats.Update(id, zero, ebpf.UpdateAny)); err != nil {
		return err
	}
	if m.uplinkStats == nil {
		return nil
	}
	return m.wrap("reset", tcnpMapNpSvcStats, 0, m.uplinkStats.Update(id, make([]tcnpNpSvcCounters, m.ncpu), ebpf.UpdateAny))
}

// svcCounters sums one service id's counters over CPUs.
func (m *lbMaps) svcCounters(id uint32) (socklbLb4SvcCounters, error) {
	var per []socklbLb4SvcCounters
	var sum socklbLb4SvcCounters
	if err := m.svcStats.Lookup(id, &per); err != nil {
		return sum, fmt.Errorf("read %s: %w", mapSvcStats, err)
	}
	for _, c := range per {
		sum.Connects += c.Connects
		sum.Datagrams += c.Datagrams
		sum.Refused += c.Refused
	}
	return sum, nil
}

// reasonCounts sums the per-reason counters over CPUs.
func (m *lbMaps) reasonCounts() (map[string]uint64, error) {
	out := map[string]uint64{}
	for r, name := range reasonNames {
		var per []uint64
		if err := m.reasons.Lookup(uint32(r), &per); err != nil {
			return nil, fmt.Errorf("read %s: %w", mapReasons, err)
		}
		var n uint64
		for _, v := range per {
			n += v
		}
		out[name] = n
	}
	return out, nil
}

// reasonNames are the metric names of enum weir_reason.
var reasonNames = map[socklbWeirReason]string{
	socklbWeirReasonWEIR_REASON_NO_BACKEND:      "no_backend",
	socklbWeirReasonWEIR_REASON_SVC_MISS:        "service_missing",
	socklbWeirReasonWEIR_REASON_SLOT_MISS:       "slot_missing",
	socklbWeirReasonWEIR_REASON_REVNAT_UPDATE:   "revnat_update",
	socklbWeirReasonWEIR_REASON_AFFINITY_UPDATE: "affinity_update",
	// the uplink path (TC and XDP)
	socklbWeirReasonWEIR_REASON_NO_LOCAL_BACKEND: "no_local_backend",
	socklbWeirReasonWEIR_REASON_CT_UPDATE:        "conntrack_update",
	socklbWeirReasonWEIR_REASON_NAT_PORTS:        "nat_ports",
	socklbWeirReasonWEIR_REASON_FIB:              "no_route",
	socklbWeirReasonWEIR_REASON_MALFORMED:        "malformed",
	socklbWeirReasonWEIR_REASON_FRAGMENT:         "fragment",
	socklbWeirReasonWEIR_REASON_REJECT_FAIL:      "reject_failed",
	socklbWeirReasonWEIR_REASON_TTL:              "ttl_expired",
}

// read dumps the three LB maps for recovery.
func (m *lbMaps) read() (kernelView, error) {
	v := kernelView{Frontends: map[frontend]feEntry{}, Services: map[uint32]svcMeta{}, Slots: map[slotRef]backend{}}
	var fk socklbLb4FeKey
	var fv socklbLb4Fe
	it := m.frontends.Iterate()
	for it.Next(&fk, &fv) {
		v.Frontends[frontend{addrFrom(fk.Addr), ntohs(fk.Port), fk.Proto}] = feEntry{fv.SvcId, fv.Flags}
	}
	if err := it.Err(); err != nil {
		return v, fmt.Errorf("read %s: %w", mapFrontends, err)
	}
	var id uint32
	var sv socklbLb4Svc
	it = m.services.Iterate()
	for it.Next(&id, &sv) {
		v.Services[id] = svcMeta{Count: sv.Count, Gen: sv.Gen, Flags: sv.Flags, Timeout: sv.AffinityTimeout}
	}
	if err := it.Err(); err != nil {
		return v, fmt.Errorf("read %s: %w", mapServices, err)
	}
	var sk socklbLb4SlotKey
	var bv socklbLb4Backend
	it = m.slots.Iterate()
	for it.Next(&sk, &bv) {
		v.Slots[slotRef{sk.SvcId, sk.Slot, sk.Gen}] = backend{addrFrom(bv.Addr), ntohs(bv.Port)}
	}
	if err := it.Err(); err != nil {
		return v, fmt.Errorf("read %s: %w", mapSlots, err)
	}
	return v, nil
}

func ignoreMissing(err error) error {
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil
	}
	return err
}

func frontendKey(f frontend) *socklbLb4FeKey {
	return &socklbLb4FeKey{Addr: addrBits(f.Addr), Port: htons(f.Port), Proto: f.Proto}
}

func slotKey(r slotRef) *socklbLb4SlotKey {
	return &socklbLb4SlotKey{SvcId: r.ID, Slot: r.Slot, Gen: r.Gen}
}

func backendValue(b backend) *socklbLb4Backend {
	return &socklbLb4Backend{Addr: addrBits(b.Addr), Port: htons(b.Port)}
}

// addrBits holds an IPv4 address as the kernel's __be32: network byte
// order in memory, read as a native integer.
func addrBits(a netip.Addr) uint32 {
	b := a.As4()
	return binary.NativeEndian.Uint32(b[:])
}

func addrFrom(u uint32) netip.Addr {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], u)
	return netip.AddrFrom4(b)
}

// htons holds a port as the kernel's __be16.
func htons(p uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], p)
	return binary.NativeEndian.Uint16(b[:])
}

func ntohs(p uint16) uint16 {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], p)
	return binary.BigEndian.Uint16(b[:])
}
