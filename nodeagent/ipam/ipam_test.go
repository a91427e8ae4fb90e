package ipam

import (
	"errors"
	"net/netip"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAllocate(t *testing.T) {
	tests := []struct {
		name   string
		cidr   string
		owners []string
		want   []string
	}{
		{"first addresses after the gateway", "10.244.3.0/24", []string{"a", "b", "c"}, []string{"10.244.3.2", "10.244.3.3", "10.244.3.4"}},
		{"same owner same address", "10.244.3.0/24", []string{"a", "a", "b", "a"}, []string{"10.244.3.2", "10.244.3.2", "10.244.3.3", "10.244.3.2"}},
		{"unmasked prefix is masked", "10.244.3.77/24", []string{"a"}, []string{"10.244.3.2"}},
		{"/30 has one usable address", "10.0.0.0/30", []string{"a"}, []string{"10.0.0.2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := New(t.TempDir(), netip.MustParsePrefix(tc.cidr))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range tc.owners {
				ip, err := a.Allocate(o)
				if err != nil {
					t.Fatalf("allocate %s: %v", o, err)
				}
				got = append(got, ip.String())
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("addresses (-want +got):\n%s", d)
			}
		})
	}
}

func TestExhaustedAndRoundRobin(t *testing.T) {
	a, err := New(t.TempDir(), netip.MustParsePrefix("10.0.0.0/29")) // .2-.6 usable
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{"a", "b", "c", "d", "e"} {
		if _, err := a.Allocate(o); err != nil {
			t.Fatalf("allocate %s: %v", o, err)
		}
	}
	if _, err := a.Allocate("f"); !errors.Is(err, ErrExhausted) {
		t.Fatalf("allocate in a full range: got %v, want ErrExhausted", err)
	}
	if err := a.Release("b"); err != nil {
		t.Fatal(err)
	}
	ip, err := a.Allocate("f")
	if err != nil {
		t.Fatal(err)
	}
	if ip != netip.MustParseAddr("10.0.0.3") {
		t.Errorf("after releasing b got %s, want its 10.0.0.3", ip)
	}
	if err := a.Release("a"); err != nil {
		t.Fatal(err)
	}
	if err := a.Release("nobody"); err != nil {
		t.Errorf("release of an owner without address: %v", err)
	}
	// Round-robin: the search starts after the last reservation (.3), so
	// a's old .2 comes back only after wrapping around.
	ip, err = a.Allocate("g")
	if err != nil {
		t.Fatal(err)
	}
	if ip != netip.MustParseAddr("10.0.0.2") {
		t.Errorf("got %s, want 10.0.0.2 after wrap-around", ip)
	}
}

// TestRestartReuses plays an agent restart: a second allocator over the
// same directory sees every reservation and gives each owner its address.
func TestRestartReuses(t *testing.T) {
	dir := t.TempDir()
	cidr := netip.MustParsePrefix("10.244.7.0/24")
	a, err := New(dir, cidr)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]netip.Addr{}
	for _, o := range []string{"pod-a", "pod-b", "pod-c"} {
		if want[o], err = a.Allocate(o); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Release("pod-b"); err != nil {
		t.Fatal(err)
	}
	delete(want, "pod-b")

	b, err := New(dir, cidr)
	if err != nil {
		t.Fatal(err)
	}
	for o, ip := range want {
		got, err := b.Allocate(o)
		if err != nil {
			t.Fatal(err)
		}
		if got != ip {
			t.Errorf("%s after restart: got %s, want %s", o, got, ip)
		}
	}
	ip, err := b.Allocate("pod-d")
	if err != nil {
		t.Fatal(err)
	}
	if ip != netip.MustParseAddr("10.244.7.5") {
		t.Errorf("new owner after restart got %s, want 10.244.7.5 (after the last reserved)", ip)
	}
	list, err := b.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 {
		t.Errorf("list after restart: %v, want 3 reservations", list)
	}
}

func TestConcurrentAllocatorsShareDir(t *testing.T) {
	dir := t.TempDir()
	cidr := netip.MustParsePrefix("10.244.9.0/24")
	seen := sync.Map{}
	var wg sync.WaitGroup
	for i := range 4 {
		a, err := New(dir, cidr)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				ip, err := a.Allocate(string(rune('a'+i)) + string(rune('a'+j)))
				if err != nil {
					t.Error(err)
					return
				}
				if _, dup := seen.LoadOrStore(ip, true); dup {
					t.Errorf("address %s handed out twice", ip)
				}
			}
		}()
	}
	wg.Wait()
}

func TestNewRejects(t *testing.T) {
	for _, c := range []string{"fd00::/64", "10.0.0.0/31"} {
		if _, err := New(t.TempDir(), netip.MustParsePrefix(c)); err == nil {
			t.Errorf("New(%s): want an error", c)
		}
	}
	a, _ := New(t.TempDir(), netip.MustParsePrefix("10.0.0.0/24"))
	if _, err := a.Allocate(""); !errors.Is(err, ErrOwner) {
		t.Errorf("empty owner: got %v, want ErrOwner", err)
	}
}
