package ebpf

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// lbWriter is the one edge that writes the socket-LB maps: one call per
// entry. Deleting an entry that is not there is not an error. The kernel
// implementation is lbMaps; tests use a model that checks, after every
// call, that no reader could see a half-written service.
type lbWriter interface {
	putSlot(r slotRef, b backend) error
	delSlot(r slotRef) error
	putService(id uint32, m svcMeta) error
	delService(id uint32) error
	putFrontend(f frontend, id uint32, flags uint16) error
	delFrontend(f frontend) error
	// resetStats zeroes a service id's counters before the id is reused.
	resetStats(id uint32) error
}

// mapCaps are the capacities of the maps whose occupancy lbSync tracks.
type mapCaps struct {
	Frontends, Services, Slots int
}

// programmed is a service port as the kernel holds it.
type programmed struct {
	ID        uint32
	Name      string
	Frontends map[frontend]uint16
	Meta      svcMeta
	// Layout[i] is in slot i of generation Meta.Gen; len(Layout) ==
	// Meta.Count.
	Layout []backend
	// Broken marks a layout recovered with holes: the next change
	// rewrites it whole in the other generation.
	Broken bool
}

// lbSync keeps the last state written to the socket-LB maps and moves the
// maps to a new desired state touching only what differs. It is not safe
// for concurrent use.
type lbSync struct {
	w    lbWriter
	caps mapCaps

	ports   map[frontend]*programmed // by ClusterIP frontend
	byID    map[uint32]*programmed
	feOwner map[frontend]uint32 // every frontend in the kernel and its id
	garbage map[slotRef]bool    // slots in the kernel that nothing reads
	nSlots  int                 // entries in lb4_slots
	ids     idPool
}

func newLBSync(w lbWriter, caps mapCaps) *lbSync {
	return &lbSync{
		w:       w,
		caps:    caps,
		ports:   map[frontend]*programmed{},
		byID:    map[uint32]*programmed{},
		feOwner: map[frontend]uint32{},
		garbage: map[slotRef]bool{},
		ids:     idPool{size: uint32(caps.Services), used: map[uint32]bool{}},
	}
}

// apply makes the maps hold desired. A port that fails is left as it was
// (or, past its flip, with its remaining work remembered) and the others
// go on; the next apply retries what failed. The errors are joined.
func (s *lbSync) apply(ctx context.Context, desired map[frontend]*svcPort) error {
	var gone []frontend
	for key := range s.ports {
		if desired[key] == nil {
			gone = append(gone, key)
		}
	}
	return s.change(ctx, desired, gone)
}

// change is apply for part of the ports: those in desired are programmed
// as desired says, those in gone removed, every other one left as it is.
// Its cost follows len(desired)+len(gone), not the number of ports. A
// frontend in desired must not belong to a port outside desired and gone
// (the caller resolves such conflicts with a full apply).
func (s *lbSync) change(ctx context.Context, desired map[frontend]*svcPort, gone []frontend) error {
	var errs []error
	s.collectGarbage()

	// A frontend that moves to another port is overwritten in place, never
	// deleted first, so that it always names one port or the other.
	claimed := map[frontend]bool{}
	for _, d := range desired {
		for f := range d.Frontends {
			claimed[f] = true
		}
	}
	// Ports that go away go first, to make room, unless another port
	// takes over one of their frontends: those go once it has.
	var later []frontend
	gone = slices.Clone(gone)
	slices.SortFunc(gone, frontend.compare)
	for _, key := range gone {
		if s.ports[key] == nil || desired[key] != nil {
			continue
		}
		if s.anyClaimed(s.ports[key], claimed) {
			later = append(later, key)
			continue
		}
		if err := s.remove(key); err != nil {
			errs = append(errs, err)
		}
	}
	for key, d := range desired {
		p := s.ports[key]
		if p == nil {
			continue
		}
		for f := range p.Frontends {
			if _, ok := d.Frontends[f]; ok || claimed[f] {
				continue
			}
			if err := s.dropFrontend(p, f); err != nil {
				errs = append(errs, fmt.Errorf("service port %s: %w", d.Name, err))
			}
		}
	}
	// Ports that shrink go before the others, so that a full slot map
	// makes room before it must take more.
	for _, shrinking := range []bool{true, false} {
		for key, d := range desired {
			p := s.ports[key]
			if (p != nil && len(d.Backends) < len(p.Layout)) != shrinking {
				continue
			}
			if err := ctx.Err(); err != nil {
				return errors.Join(append(errs, err)...)
			}
			if err := s.sync(key, d); err != nil {
				errs = append(errs, fmt.Errorf("service port %s: %w", d.Name, err))
			}
		}
	}
	for _, key := range later {
		if err := s.remove(key); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *lbSync) anyClaimed(p *programmed, claimed map[frontend]bool) bool {
	for f := range p.Frontends {
		if claimed[f] {
			return true
		}
	}
	return false
}

// sync programs one desired service port: slots first, then the service
// entry, then frontends, then the trim of what the old set left.
func (s *lbSync) sync(key frontend, d *svcPort) error {
	if err := d.validate(); err != nil {
		return err
	}
	p := s.ports[key]
	if p != nil && p.unchanged(d) {
		p.Name = d.Name
		return nil
	}
	isNew := p == nil
	if isNew {
		if len(s.ports) >= s.caps.Services {
			return mapFull(mapServices, s.caps.Services)
		}
		id, ok := s.ids.get()
		if !ok {
			return mapFull(mapServices, s.caps.Services)
		}
		if err := s.w.resetStats(id); err != nil {
			s.ids.put(id)
			return err
		}
		p = &programmed{ID: id, Frontends: map[frontend]uint16{}}
	}
	p.Name = d.Name

	plan := planSlots(p.Layout, p.Meta.Gen, d.Backends, p.Broken)
	meta := svcMeta{Count: uint16(len(plan.Layout)), Gen: plan.Gen, Flags: d.Flags, Timeout: d.Timeout}

	newSlots := 0
	for _, w := range plan.Writes {
		if !s.garbage[slotRef{p.ID, w.Slot, plan.Gen}] {
			newSlots++
		}
	}
	if s.nSlots+newSlots > s.caps.Slots {
		if isNew {
			s.ids.put(p.ID)
		}
		return fmt.Errorf("%d backends: %w", len(plan.Layout), mapFull(mapSlots, s.caps.Slots))
	}

	// Make: write the new slots, unread until the service entry flips.
	var written []slotRef
	undo := func() {
		for _, r := range written {
			if s.w.delSlot(r) == nil {
				s.nSlots--
			} else {
				s.garbage[r] = true
			}
		}
		if isNew {
			s.ids.put(p.ID)
		}
	}
	for _, w := range plan.Writes {
		r := slotRef{p.ID, w.Slot, plan.Gen}
		if err := s.w.putSlot(r, w.Backend); err != nil {
			undo()
			return err
		}
		if s.garbage[r] {
			delete(s.garbage, r)
		} else {
			s.nSlots++
		}
		written = append(written, r)
	}
	// Flip: one atomic update makes the new set live for every frontend.
	if isNew || meta != p.Meta {
		if err := s.w.putService(p.ID, meta); err != nil {
			undo()
			return err
		}
	}
	if isNew {
		s.ports[key] = p
		s.byID[p.ID] = p
	}
	old := p.Layout
	p.Meta, p.Layout, p.Broken = meta, plan.Layout, false

	var errs []error
	for f, flags := range d.Frontends {
		owner, owned := s.feOwner[f]
		if owned && owner == p.ID && p.Frontends[f] == flags {
			continue
		}
		if !owned && len(s.feOwner) >= s.caps.Frontends {
			errs = append(errs, fmt.Errorf("frontend %s: %w", f, mapFull(mapFrontends, s.caps.Frontends)))
			continue
		}
		if err := s.w.putFrontend(f, p.ID, flags); err != nil {
			errs = append(errs, fmt.Errorf("frontend %s: %w", f, err))
			continue
		}
		if owned && owner != p.ID {
			if o := s.byID[owner]; o != nil {
				delete(o.Frontends, f)
			}
		}
		s.feOwner[f] = p.ID
		p.Frontends[f] = flags
	}

	// Break: trim what the old set left behind.
	for _, t := range plan.Trims {
		r := slotRef{p.ID, t.Slot, t.Gen}
		if err := s.w.delSlot(r); err != nil {
			s.garbage[r] = true
			errs = append(errs, err)
			continue
		}
		if old[t.Slot].Addr.IsValid() { // not a hole of a broken layout
			s.nSlots--
		}
	}
	return errors.Join(errs...)
}

// unchanged is the fast path of an apply where most ports stay as they
// are: it may say false for a port that needs no write (planSlots finds
// that out), never true for one that does.
func (p *programmed) unchanged(d *svcPort) bool {
	if p.Broken || p.Meta.Flags != d.Flags || p.Meta.Timeout != d.Timeout ||
		len(p.Frontends) != len(d.Frontends) || !slices.Equal(p.Layout, d.Backends) {
		return false
	}
	for f, flags := range d.Frontends {
		if g, ok := p.Frontends[f]; !ok || g != flags {
			return false
		}
	}
	return true
}

// remove deletes a service port: frontends first, so that no frontend
// ever names a missing service, then the service entry, then its slots.
func (s *lbSync) remove(key frontend) error {
	p := s.ports[key]
	var errs []error
	for f := range p.Frontends {
		if err := s.dropFrontend(p, f); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove service port %s: %w", p.Name, errors.Join(errs...))
	}
	if err := s.w.delService(p.ID); err != nil {
		return fmt.Errorf("remove service port %s: %w", p.Name, err)
	}
	for i, b := range p.Layout {
		if !b.Addr.IsValid() { // a hole of a broken layout
			continue
		}
		r := slotRef{p.ID, uint16(i), p.Meta.Gen}
		if err := s.w.delSlot(r); err != nil {
			s.garbage[r] = true
			continue
		}
		s.nSlots--
	}
	delete(s.ports, key)
	delete(s.byID, p.ID)
	s.ids.put(p.ID)
	return nil
}

// dropFrontend deletes f from the kernel if p still owns it there.
func (s *lbSync) dropFrontend(p *programmed, f frontend) error {
	if owner, ok := s.feOwner[f]; ok && owner == p.ID {
		if err := s.w.delFrontend(f); err != nil {
			return fmt.Errorf("frontend %s: %w", f, err)
		}
		delete(s.feOwner, f)
	}
	delete(p.Frontends, f)
	return nil
}

// collectGarbage retries the trims that failed before.
func (s *lbSync) collectGarbage() {
	for r := range s.garbage {
		if s.w.delSlot(r) == nil {
			delete(s.garbage, r)
			s.nSlots--
		}
	}
}

// kernelView is what recovery reads from pinned maps.
type kernelView struct {
	Frontends map[frontend]feEntry
	Services  map[uint32]svcMeta
	Slots     map[slotRef]backend
}

type feEntry struct {
	ID    uint32
	Flags uint16
}

// recover rebuilds the last applied state from what the pinned maps hold
// and deletes what no consistent state could hold: frontends of missing
// services, services without frontends, slots outside their service's
// live generation and count. It changes nothing a reader uses: services
// keep answering as they did until the next apply. Names stay empty
// until then.
func (s *lbSync) recover(v kernelView) error {
	var errs []error
	byID := map[uint32][]frontend{}
	for f, e := range v.Frontends {
		if _, ok := v.Services[e.ID]; !ok || e.ID >= uint32(s.caps.Services) {
			if err := s.w.delFrontend(f); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		byID[e.ID] = append(byID[e.ID], f)
	}
	for id, meta := range v.Services {
		fes := byID[id]
		if len(fes) == 0 {
			if err := s.w.delService(id); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		slices.SortFunc(fes, frontend.compare)
		key := fes[0]
		for _, f := range fes {
			if v.Frontends[f].Flags&feClusterIP != 0 {
				key = f
				break
			}
		}
		p := &programmed{ID: id, Frontends: map[frontend]uint16{}, Meta: meta, Layout: make([]backend, meta.Count)}
		for _, f := range fes {
			p.Frontends[f] = v.Frontends[f].Flags
			s.feOwner[f] = id
		}
		for i := range p.Layout {
			b, ok := v.Slots[slotRef{id, uint16(i), meta.Gen}]
			if !ok {
				p.Broken = true
				continue
			}
			p.Layout[i] = b
			s.nSlots++
		}
		s.ports[key] = p
		s.byID[id] = p
		s.ids.used[id] = true
	}
	for r := range v.Slots {
		p := s.byID[r.ID]
		if p != nil && r.Gen == p.Meta.Gen && int(r.Slot) < len(p.Layout) {
			continue
		}
		if err := s.w.delSlot(r); err != nil {
			s.garbage[r] = true
			s.nSlots++
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// idPool hands out service port ids below size, round robin, so that an
// id freed now is reused as late as possible (a stale affinity entry for
// it then has long expired).
type idPool struct {
	size uint32
	next uint32
	used map[uint32]bool
}

func (p *idPool) get() (uint32, bool) {
	for i := uint32(0); i < p.size; i++ {
		id := (p.next + i) % p.size
		if !p.used[id] {
			p.used[id] = true
			p.next = (id + 1) % p.size
			return id, true
		}
	}
	return 0, false
}

func (p *idPool) put(id uint32) { delete(p.used, id) }
