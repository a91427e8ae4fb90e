package endpointslice

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func slice(name string, rv int) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{
		Name: name, Namespace: "ns", ResourceVersion: strconv.Itoa(rv),
		Labels: map[string]string{discoveryv1.LabelServiceName: "web"},
	}}
}

// TestTracker plays a sequence of writes and informer events against a
// fake informer store and checks what a pass would read after each step.
func TestTracker(t *testing.T) {
	type step struct {
		do string // wrote, deleted, cache (store updated), event, delete-event
		s  *discoveryv1.EndpointSlice
		// known is observe's or observeDelete's answer for events.
		known bool
		// read is what overlay returns afterwards, "name@rv" sorted.
		read []string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "a create read back before the informer sees it",
			steps: []step{
				{do: "wrote", s: slice("a", 5), read: []string{"a@5"}},
				{do: "cache", s: slice("a", 5), read: []string{"a@5"}},
				{do: "event", s: slice("a", 5), known: true, read: []string{"a@5"}},
			},
		},
		{
			name: "an update wins over the older cached version",
			steps: []step{
				{do: "cache", s: slice("a", 5), read: []string{"a@5"}},
				{do: "wrote", s: slice("a", 9), read: []string{"a@9"}},
				// A late event of an older version tells nothing new.
				{do: "event", s: slice("a", 7), known: true, read: []string{"a@9"}},
				{do: "cache", s: slice("a", 9), read: []string{"a@9"}},
				{do: "event", s: slice("a", 9), known: true, read: []string{"a@9"}},
			},
		},
		{
			name: "someone else's later write is news",
			steps: []step{
				{do: "cache", s: slice("a", 5), read: []string{"a@5"}},
				{do: "wrote", s: slice("a", 9), read: []string{"a@9"}},
				{do: "cache", s: slice("a", 12), read: []string{"a@12"}},
				{do: "event", s: slice("a", 12), known: false, read: []string{"a@12"}},
			},
		},
		{
			name: "a delete hides the cached slice until the informer sees it",
			steps: []step{
				{do: "cache", s: slice("a", 5), read: []string{"a@5"}},
				{do: "cache", s: slice("b", 6), read: []string{"a@5", "b@6"}},
				{do: "deleted", s: slice("a", 5), read: []string{"b@6"}},
				{do: "uncache", s: slice("a", 5), read: []string{"b@6"}},
				{do: "delete-event", s: slice("a", 5), known: true, read: []string{"b@6"}},
			},
		},
		{
			name: "a write the store already holds is not recorded",
			steps: []step{
				{do: "cache", s: slice("a", 5), read: []string{"a@5"}},
				{do: "wrote", s: slice("a", 5), read: []string{"a@5"}},
				{do: "event", s: slice("a", 5), known: false, read: []string{"a@5"}},
			},
		},
		{
			name: "a create deleted before the informer sees it",
			steps: []step{
				{do: "wrote", s: slice("a", 5), read: []string{"a@5"}},
				{do: "deleted", s: slice("a", 5), read: nil},
				{do: "event", s: slice("a", 5), known: true, read: nil},
				{do: "delete-event", s: slice("a", 5), known: true, read: nil},
			},
		},
		{
			name: "someone else deletes what the controller wrote",
			steps: []step{
				{do: "wrote", s: slice("a", 5), read: []string{"a@5"}},
				{do: "delete-event", s: slice("a", 5), known: false, read: nil},
			},
		},
	}
	if len(tests) == 0 {
		t.Fatal("empty table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := map[string]*discoveryv1.EndpointSlice{}
			tr := newTracker(func(key string) (*discoveryv1.EndpointSlice, bool) {
				s, ok := store[key]
				return s, ok
			}, sliceService)
			for i, st := range tc.steps {
				switch st.do {
				case "wrote":
					tr.wrote(st.s)
				case "deleted":
					tr.deleted(st.s)
				case "cache":
					store[objectKey(st.s)] = st.s
				case "uncache":
					delete(store, objectKey(st.s))
				case "event":
					if known := tr.observe(st.s); known != st.known {
						t.Errorf("step %d: observe = %t, want %t", i, known, st.known)
					}
				case "delete-event":
					if known := tr.observeDelete(st.s); known != st.known {
						t.Errorf("step %d: observeDelete = %t, want %t", i, known, st.known)
					}
				default:
					t.Fatalf("step %d: unknown action %q", i, st.do)
				}
				var cached []*discoveryv1.EndpointSlice
				for _, s := range store {
					cached = append(cached, s)
				}
				var read []string
				for _, s := range tr.overlay("ns/web", cached) {
					read = append(read, s.Name+"@"+s.ResourceVersion)
				}
				slices.Sort(read)
				if diff := cmp.Diff(st.read, read); diff != "" {
					t.Errorf("step %d (%s %s): read (-want +got):\n%s", i, st.do, st.s.Name, diff)
				}
			}
			if len(tr.m) != 0 {
				t.Errorf("records left at the end: %v", tr.m)
			}
		})
	}
}

func TestPending(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	p := newPending()
	p.note("ns/web", "ns/p1", at(10))
	p.note("ns/web", "ns/p1", at(20))
	p.note("ns/web", "ns/p1", at(5))
	p.note("ns/web", "ns/p2", at(30))
	p.note("ns/db", "ns/p3", at(1))
	got := p.take("ns/web")
	want := map[string]change{"ns/p1": {first: at(5)}, "ns/p2": {first: at(30)}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(change{})); diff != "" {
		t.Errorf("take (-want +got):\n%s", diff)
	}
	if e := earliest(got); !e.Equal(at(5)) {
		t.Errorf("earliest = %v, want %v", e, at(5))
	}
	if again := p.take("ns/web"); len(again) != 0 {
		t.Errorf("second take = %v, want nothing", again)
	}
	p.note("ns/web", "ns/p1", at(50))
	p.note("ns/web", "ns/p4", at(60))
	p.restore("ns/web", got)
	want["ns/p4"] = change{first: at(60)}
	if diff := cmp.Diff(want, p.take("ns/web"), cmp.AllowUnexported(change{})); diff != "" {
		t.Errorf("after restore (-want +got):\n%s", diff)
	}
	if e := earliest(nil); !e.IsZero() {
		t.Errorf("earliest of nothing = %v", e)
	}
}

// TestFlips plays pod versions, as the informer's transform sees them,
// and slice writes.
func TestFlips(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := t0
	f := newFlips(func() time.Time { return clock })
	tick := func() time.Time { clock = clock.Add(time.Millisecond); return clock }
	p := func(uid string, ready bool) *corev1.Pod {
		return pod(1, func(p *corev1.Pod) {
			p.UID = types.UID(uid)
			if !ready {
				notReady(p)
			}
		})
	}
	type want struct {
		serving bool
		at      time.Time
		ok      bool
	}
	check := func(step string, w want) {
		t.Helper()
		at, ok := f.pending("ns/p1", w.serving)
		if ok != w.ok || !at.Equal(w.at) {
			t.Errorf("%s: pending(serving=%t) = %v, %t; want %v, %t", step, w.serving, at, ok, w.at, w.ok)
		}
	}

	tick()
	f.see(p("a", true))
	check("first sight is no change", want{serving: true})
	t1 := tick()
	f.see(p("a", false))
	check("a flip", want{serving: false, at: t1, ok: true})
	check("a flip, other value", want{serving: true})
	tick()
	f.see(p("a", false))
	check("another version, same readiness: the flip time stays", want{serving: false, at: t1, ok: true})
	if _, ok := f.written("ns/p1", true); ok {
		t.Errorf("a write of the old value counts as writing the flip")
	}
	if at, ok := f.written("ns/p1", false); !ok || !at.Equal(t1) {
		t.Errorf("written = %v, %t; want %v, true", at, ok, t1)
	}
	if _, ok := f.written("ns/p1", false); ok {
		t.Errorf("a flip counted twice")
	}
	check("after the write", want{serving: false})
	tick()
	f.see(p("a", true))
	tick()
	f.see(p("a", false))
	t3 := clock
	check("flipped and back: the latest flip", want{serving: false, at: t3, ok: true})
	f.forget(p("other-uid", false))
	check("forget of another pod of the name", want{serving: false, at: t3, ok: true})
	tick()
	f.see(p("b", false))
	check("a new pod of the same name is first seen", want{serving: false})
	f.forget(p("b", false))
	if len(f.m) != 0 {
		t.Errorf("records left: %v", f.m)
	}
}
