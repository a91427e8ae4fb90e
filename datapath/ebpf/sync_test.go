package ebpf

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// model stands in for the kernel maps. After every write it records what
// a reader of each frontend would get, so tests can check that no reader
// ever sees anything but the old or the new state.
type model struct {
	fe    map[frontend]feEntry
	svc   map[uint32]svcMeta
	slots map[slotRef]backend
	caps  mapCaps
	ops   []string
	fail  func(op string) error // injects failures; nil = none
	views []map[frontend]string // view() after every write
	// noViews skips the views (quadratic) for large states.
	noViews bool
}

func newModel(caps mapCaps) *model {
	return &model{fe: map[frontend]feEntry{}, svc: map[uint32]svcMeta{}, slots: map[slotRef]backend{}, caps: caps}
}

func (m *model) do(op string, f func() error) error {
	if m.fail != nil {
		if err := m.fail(op); err != nil {
			return err
		}
	}
	if err := f(); err != nil {
		return err
	}
	m.ops = append(m.ops, op)
	if !m.noViews {
		m.views = append(m.views, m.view())
	}
	return nil
}

func (m *model) putSlot(r slotRef, b backend) error {
	return m.do(fmt.Sprintf("put slot %d/%d/%d", r.ID, r.Gen, r.Slot), func() error {
		if _, ok := m.slots[r]; !ok && len(m.slots) >= m.caps.Slots {
			return mapFull(mapSlots, m.caps.Slots)
		}
		m.slots[r] = b
		return nil
	})
}

func (m *model) delSlot(r slotRef) error {
	return m.do(fmt.Sprintf("del slot %d/%d/%d", r.ID, r.Gen, r.Slot), func() error { delete(m.slots, r); return nil })
}

func (m *model) putService(id uint32, s svcMeta) error {
	return m.do(fmt.Sprintf("put svc %d", id), func() error { m.svc[id] = s; return nil })
}

func (m *model) delService(id uint32) error {
	return m.do(fmt.Sprintf("del svc %d", id), func() error { delete(m.svc, id); return nil })
}

func (m *model) putFrontend(f frontend, id uint32, flags uint16) error {
	return m.do(fmt.Sprintf("put fe %s", f), func() error { m.fe[f] = feEntry{id, flags}; return nil })
}

func (m *model) delFrontend(f frontend) error {
	return m.do(fmt.Sprintf("del fe %s", f), func() error { delete(m.fe, f); return nil })
}

func (m *model) resetStats(id uint32) error { return nil }

// view is what connect() to each frontend would do: the backend set it
// picks from ("be1,be2"), "refuse", or "BROKEN: …" when a lookup would
// fail half way.
func (m *model) view() map[frontend]string {
	out := map[frontend]string{}
	for f, e := range m.fe {
		s, ok := m.svc[e.ID]
		if !ok {
			out[f] = "BROKEN: no service"
			continue
		}
		if s.Count == 0 {
			out[f] = "refuse"
			continue
		}
		var names []string
		for i := range s.Count {
			b, ok := m.slots[slotRef{e.ID, i, s.Gen}]
			if !ok {
				names = []string{fmt.Sprintf("BROKEN: slot %d missing", i)}
				break
			}
			names = append(names, b.String())
		}
		slices.Sort(names)
		out[f] = strings.Join(names, ",")
	}
	return out
}

func (m *model) kernelView() kernelView {
	return kernelView{Frontends: m.fe, Services: m.svc, Slots: m.slots}
}

// applyChecked applies desired and checks that every intermediate view
// of every frontend was its view before or after.
func applyChecked(t *testing.T, m *model, s *lbSync, desired map[frontend]*svcPort) {
	t.Helper()
	before := m.view()
	m.views, m.ops = nil, nil
	if err := s.apply(context.Background(), desired); err != nil {
		t.Fatalf("apply: %v", err)
	}
	after := m.view()
	for i, v := range m.views {
		for _, f := range unionKeys(before, after, v) {
			if v[f] != before[f] && v[f] != after[f] {
				t.Fatalf("after write %d (%s) %s showed %q; want %q (before) or %q (after)\nwrites: %s",
					i, m.ops[i], f, v[f], before[f], after[f], strings.Join(m.ops, "; "))
			}
		}
	}
	// The kernel holds what was asked, and lbSync knows it.
	for key, d := range desired {
		var want []string
		for _, b := range d.Backends {
			want = append(want, b.String())
		}
		slices.Sort(want)
		w := strings.Join(want, ",")
		if len(want) == 0 {
			w = "refuse"
		}
		for f := range d.Frontends {
			if after[f] != w {
				t.Errorf("%s (port %s) shows %q, want %q", f, key, after[f], w)
			}
		}
	}
	checkAccounting(t, m, s)
}

func checkAccounting(t *testing.T, m *model, s *lbSync) {
	t.Helper()
	if s.nSlots != len(m.slots) || len(s.feOwner) != len(m.fe) || len(s.ports) != len(m.svc) {
		t.Errorf("lbSync counts slots=%d frontends=%d services=%d; kernel has %d, %d, %d",
			s.nSlots, len(s.feOwner), len(s.ports), len(m.slots), len(m.fe), len(m.svc))
	}
	want := 0
	for _, p := range s.ports {
		want += len(p.Layout)
	}
	if want != len(m.slots) {
		t.Errorf("kernel holds %d slots, live layouts %d: something leaked", len(m.slots), want)
	}
}

func unionKeys(ms ...map[frontend]string) []frontend {
	seen := map[frontend]bool{}
	var out []frontend
	for _, m := range ms {
		for f := range m {
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	slices.SortFunc(out, frontend.compare)
	return out
}

func vip(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)}) }

// port is a test service port: ClusterIP vip(i):80/tcp and the extra
// frontends given.
func port(i int, backends []backend, extra ...frontend) *svcPort {
	p := &svcPort{Name: fmt.Sprintf("ns/svc%d:http", i), Frontends: map[frontend]uint16{{vip(i), 80, 6}: feClusterIP}, Backends: backends}
	for _, f := range extra {
		p.Frontends[f] = feExternal
	}
	slices.SortFunc(p.Backends, backend.compare)
	return p
}

func ports(ps ...*svcPort) map[frontend]*svcPort {
	out := map[frontend]*svcPort{}
	for _, p := range ps {
		for f, flags := range p.Frontends {
			if flags&feClusterIP != 0 {
				out[f] = p
			}
		}
	}
	return out
}

var bigCaps = mapCaps{Frontends: 1 << 16, Services: 1 << 16, Slots: 1 << 18}

func TestLBSyncTransitions(t *testing.T) {
	ext := frontend{netip.MustParseAddr("1.2.3.4"), 80, 6}
	steps := []struct {
		name  string
		state map[frontend]*svcPort
	}{
		{"two services", ports(port(1, bes(1, 2, 3)), port(2, bes(4)))},
		{"unchanged", ports(port(1, bes(1, 2, 3)), port(2, bes(4)))},
		{"scale up", ports(port(1, bes(1, 2, 3, 5, 6)), port(2, bes(4)))},
		{"middle endpoint leaves", ports(port(1, bes(1, 2, 5, 6)), port(2, bes(4)))},
		{"tail endpoint leaves", ports(port(1, bes(1, 2, 5)), port(2, bes(4)))},
		{"replaced and an externalIP", ports(port(1, bes(7, 8), ext), port(2, bes(4)))},
		{"no endpoints", ports(port(1, nil, ext), port(2, bes(4)))},
		{"back", ports(port(1, bes(1), ext), port(2, bes(4)))},
		{"externalIP moves to another service", ports(port(1, bes(1)), port(2, bes(4), ext))},
		{"service with the externalIP deleted, another takes it", ports(port(1, bes(1), ext), port(3, bes(9)))},
		{"everything deleted", ports()},
		{"again", ports(port(1, bes(1, 2)), port(2, bes(3)))},
	}
	m := newModel(bigCaps)
	s := newLBSync(m, bigCaps)
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) { applyChecked(t, m, s, st.state) })
	}
	if len(steps) == 0 {
		t.Fatal("no steps")
	}
}

// TestLBSyncOneEndpointTouchesOneService checks that a change of one
// endpoint among 1,000 services writes only that service's entries.
func TestLBSyncOneEndpointTouchesOneService(t *testing.T) {
	m := newModel(bigCaps)
	s := newLBSync(m, bigCaps)
	all := func(change bool) map[frontend]*svcPort {
		var ps []*svcPort
		for i := range 1000 {
			b := bes(1, 2, 3)
			if change && i == 500 {
				b = bes(1, 2, 4)
			}
			ps = append(ps, port(i, b))
		}
		return ports(ps...)
	}
	m.noViews = true
	if err := s.apply(context.Background(), all(false)); err != nil {
		t.Fatal(err)
	}
	m.noViews = false
	if len(m.ops) != 1000*(3+1+1) {
		t.Errorf("full programming took %d writes, want 5000", len(m.ops))
	}
	applyChecked(t, m, s, all(true))
	// A replaced endpoint: 3 slots in the other generation, the flip, 3 trims.
	if len(m.ops) != 7 {
		t.Errorf("one endpoint changed: %d writes, want 7: %v", len(m.ops), m.ops)
	}
	id := s.ports[frontend{vip(500), 80, 6}].ID
	for _, op := range m.ops {
		if !strings.Contains(op, fmt.Sprintf(" %d/", id)) && op != fmt.Sprintf("put svc %d", id) {
			t.Errorf("write %q is not about service id %d", op, id)
		}
	}
	applyChecked(t, m, s, all(true))
	if len(m.ops) != 0 {
		t.Errorf("an unchanged state wrote %v", m.ops)
	}
}

func TestLBSyncMapFull(t *testing.T) {
	caps := mapCaps{Frontends: 3, Services: 2, Slots: 4}
	m := newModel(caps)
	s := newLBSync(m, caps)
	applyChecked(t, m, s, ports(port(1, bes(1, 2)), port(2, bes(3))))

	for _, tc := range []struct {
		name    string
		state   map[frontend]*svcPort
		wantErr string
	}{
		{"a third service", ports(port(1, bes(1, 2)), port(2, bes(3)), port(3, nil)), "lb4_services holds at most 2 entries"},
		{"slots for the new set next to the old", ports(port(1, bes(4, 5)), port(2, bes(3))), "lb4_slots holds at most 4 entries"},
		{"frontends", ports(port(1, bes(1, 2), frontend{vip(100), 1, 6}, frontend{vip(101), 1, 6}), port(2, bes(3))), "lb4_frontends holds at most 3 entries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := m.view()
			err := s.apply(context.Background(), tc.state)
			if !errors.Is(err, ErrMapFull) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("apply = %v; want ErrMapFull with %q", err, tc.wantErr)
			}
			// Whatever did not fit left the services that were there serving.
			after := m.view()
			for _, f := range []frontend{{vip(1), 80, 6}, {vip(2), 80, 6}} {
				if after[f] != before[f] && tc.name != "frontends" {
					t.Errorf("%s: %q -> %q", f, before[f], after[f])
				}
			}
			checkAccounting(t, m, s)
			// Back to a state that fits.
			applyChecked(t, m, s, ports(port(1, bes(1, 2)), port(2, bes(3))))
		})
	}
}

// TestLBSyncShrinkFirst checks that a port giving up slots does so before
// another takes more, whatever the map order.
func TestLBSyncShrinkFirst(t *testing.T) {
	caps := mapCaps{Frontends: 8, Services: 2, Slots: 4}
	m := newModel(caps)
	s := newLBSync(m, caps)
	for range 20 {
		applyChecked(t, m, s, ports(port(1, bes(1, 2)), port(2, bes(3))))
		// port 2 flips to a new set of two: it fits only after port 1 trims.
		applyChecked(t, m, s, ports(port(1, nil), port(2, bes(4, 5))))
	}
}

func TestLBSyncRollback(t *testing.T) {
	m := newModel(bigCaps)
	s := newLBSync(m, bigCaps)
	applyChecked(t, m, s, ports(port(1, bes(1, 2, 3))))
	before := m.view()

	for _, failOp := range []string{"put slot", "put svc"} {
		t.Run(failOp, func(t *testing.T) {
			calls := 0
			m.fail = func(op string) error {
				if strings.HasPrefix(op, failOp) {
					calls++
					if calls == 2 || failOp == "put svc" {
						return errors.New("injected")
					}
				}
				return nil
			}
			err := s.apply(context.Background(), ports(port(1, bes(1, 4)), port(2, bes(5))))
			m.fail = nil
			if err == nil {
				t.Fatal("apply succeeded despite the injected failure")
			}
			if v := m.view(); v[frontend{vip(1), 80, 6}] != before[frontend{vip(1), 80, 6}] {
				t.Errorf("failed change showed %q", v[frontend{vip(1), 80, 6}])
			}
			checkAccounting(t, m, s)
			applyChecked(t, m, s, ports(port(1, bes(1, 2, 3))))
		})
	}
}

func TestLBSyncRecover(t *testing.T) {
	m := newModel(bigCaps)
	s := newLBSync(m, bigCaps)
	ext := frontend{netip.MustParseAddr("1.2.3.4"), 80, 6}
	state := ports(port(1, bes(1, 2, 3), ext), port(2, bes(4)), port(3, nil))
	applyChecked(t, m, s, state)
	id1 := s.ports[frontend{vip(1), 80, 6}].ID

	// What a crash can leave behind, and worse.
	m.slots[slotRef{id1, 0, 1}] = be(9)               // a half-written other generation
	m.slots[slotRef{id1, 7, 0}] = be(9)               // beyond the count
	m.slots[slotRef{999, 0, 0}] = be(9)               // a service that is gone
	m.svc[998] = svcMeta{Count: 0}                    // a service without frontends
	m.fe[frontend{vip(77), 80, 6}] = feEntry{ID: 997} // a frontend without a service

	r := newLBSync(m, bigCaps)
	if err := r.recover(m.kernelView()); err != nil {
		t.Fatal(err)
	}
	if len(m.slots) != 4 || len(m.svc) != 3 || len(m.fe) != 4 {
		t.Errorf("after recovery: %d slots, %d services, %d frontends; want 4, 3, 4", len(m.slots), len(m.svc), len(m.fe))
	}
	checkAccounting(t, m, r)
	// The same state again writes nothing.
	applyChecked(t, m, r, state)
	if len(m.ops) != 0 {
		t.Errorf("apply after recovery wrote %v", m.ops)
	}
	// New ids do not collide with recovered ones.
	applyChecked(t, m, r, ports(port(1, bes(1, 2)), port(2, bes(4)), port(3, nil), port(4, bes(5))))
	seen := map[uint32]bool{}
	for _, p := range r.ports {
		if seen[p.ID] {
			t.Errorf("id %d used twice", p.ID)
		}
		seen[p.ID] = true
	}

	// A layout with a hole is rewritten whole at the next change.
	id2 := r.ports[frontend{vip(2), 80, 6}].ID
	m.svc[id2] = svcMeta{Count: 2, Gen: m.svc[id2].Gen}
	r2 := newLBSync(m, bigCaps)
	if err := r2.recover(m.kernelView()); err != nil {
		t.Fatal(err)
	}
	if !r2.ports[frontend{vip(2), 80, 6}].Broken {
		t.Fatal("layout with a missing slot not marked broken")
	}
	if err := r2.apply(context.Background(), ports(port(1, bes(1, 2)), port(2, bes(4)), port(3, nil), port(4, bes(5)))); err != nil {
		t.Fatal(err)
	}
	if v := m.view()[frontend{vip(2), 80, 6}]; v != be(4).String() {
		t.Errorf("repaired service shows %q", v)
	}
	checkAccounting(t, m, r2)
}

func TestIDPool(t *testing.T) {
	p := idPool{size: 3, used: map[uint32]bool{}}
	var got []uint32
	for range 3 {
		id, ok := p.get()
		if !ok {
			t.Fatal("pool empty too early")
		}
		got = append(got, id)
	}
	if _, ok := p.get(); ok {
		t.Fatal("pool of 3 gave a 4th id")
	}
	p.put(0)
	p.put(2)
	id, _ := p.get()
	if want := []uint32{0, 1, 2}; !slices.Equal(got, want) || id != 0 {
		t.Errorf("ids %v then %d; want %v then 0 (round robin from the last)", got, id, want)
	}
}

// BenchmarkApplyOneEndpoint measures the Go side of one endpoint change
// among 10,000 service ports (the kernel writes are the model's).
func BenchmarkApplyOneEndpoint(b *testing.B) {
	m := newModel(bigCaps)
	m.noViews = true
	s := newLBSync(m, bigCaps)
	states := [2]map[frontend]*svcPort{}
	for k := range states {
		var ps []*svcPort
		for i := range 10000 {
			bs := bes(1, 2, 3)
			if k == 1 && i == 5000 {
				bs = bes(1, 2, 4)
			}
			ps = append(ps, port(i, bs))
		}
		states[k] = ports(ps...)
	}
	if err := s.apply(context.Background(), states[0]); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		m.ops = m.ops[:0]
		if err := s.apply(context.Background(), states[(i+1)%2]); err != nil {
			b.Fatal(err)
		}
	}
}
