package topology

import (
	"fmt"
	"net"
	"strings"
	"testing"
)

func TestUniqueName(t *testing.T) {
	tests := []struct {
		name       string
		prefix     string
		wantPrefix string
	}{
		{name: "empty", prefix: "", wantPrefix: ""},
		{name: "short", prefix: "weir-", wantPrefix: "weir-"},
		{name: "exactly fits", prefix: "veth-pod-", wantPrefix: "veth-pod-"},
		{name: "truncated", prefix: "a-very-long-prefix-", wantPrefix: "a-very-lo"},
	}
	if len(tests) == 0 {
		t.Fatal("empty table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[string]bool{}
			for range 1000 {
				got := UniqueName(t, tc.prefix)
				if len(got) > MaxNameLen {
					t.Fatalf("UniqueName(%q) = %q: %d bytes, want <= %d", tc.prefix, got, len(got), MaxNameLen)
				}
				if !strings.HasPrefix(got, tc.wantPrefix) {
					t.Fatalf("UniqueName(%q) = %q, want prefix %q", tc.prefix, got, tc.wantPrefix)
				}
				if len(got) != len(tc.wantPrefix)+suffixLen {
					t.Fatalf("UniqueName(%q) = %q, want a %d-byte suffix", tc.prefix, got, suffixLen)
				}
				if !validPrefix.MatchString(got) {
					t.Fatalf("UniqueName(%q) = %q has unsafe characters", tc.prefix, got)
				}
				if seen[got] {
					t.Fatalf("UniqueName(%q) returned %q twice", tc.prefix, got)
				}
				seen[got] = true
			}
		})
	}
}

func TestUniqueNameRejectsUnsafePrefix(t *testing.T) {
	for _, prefix := range []string{"a/b", "eth0:1", "has space", "pct%"} {
		t.Run(prefix, func(t *testing.T) {
			ft := &fatalRecorder{TB: t}
			func() {
				defer func() { _ = recover() }()
				UniqueName(ft, prefix)
			}()
			if !ft.fatal {
				t.Errorf("UniqueName(%q) did not fail the test", prefix)
			}
		})
	}
}

// fatalRecorder records a Fatalf instead of ending the test; it panics to
// stop the caller the way runtime.Goexit would.
type fatalRecorder struct {
	testing.TB
	fatal bool
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.fatal = true
	panic(fmt.Sprintf(format, args...))
}

func TestFreePorts(t *testing.T) {
	ports := FreePorts(t, 20)
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || p > 65535 {
			t.Fatalf("port %d out of range", p)
		}
		if seen[p] {
			t.Fatalf("port %d returned twice in %v", p, ports)
		}
		seen[p] = true
	}
	// The port must be bindable right after FreePort returns.
	p := FreePort(t)
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		t.Fatalf("listen on free port %d: %v", p, err)
	}
	l.Close()
}
