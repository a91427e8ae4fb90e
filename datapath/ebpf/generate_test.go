package ebpf

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestGeneratedUpToDate compiles bpf/ again with the //go:generate line of
// gen.go into a temporary directory and compares the result with the
// committed socklb, tcnp and xdpnp _bpfel.{go,o}: an edit of the C without go generate
// fails here. Needs clang (make deps).
func TestGeneratedUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles C with clang")
	}
	src, err := os.ReadFile("gen.go")
	if err != nil {
		t.Fatal(err)
	}
	var runs [][]string
	for _, line := range strings.Split(string(src), "\n") {
		if rest, ok := strings.CutPrefix(line, "//go:generate go tool bpf2go "); ok {
			runs = append(runs, splitQuoted(rest))
		}
	}
	if len(runs) != 3 {
		t.Fatalf("%d //go:generate go tool bpf2go lines in gen.go, want 3 (socklb, tcnp, xdpnp)", len(runs))
	}
	out := t.TempDir()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	for _, args := range runs {
		cmd := exec.Command(goBin, append([]string{"tool", "bpf2go", "-output-dir", out}, args...)...)
		cmd.Env = append(os.Environ(), "GOPACKAGE=ebpf")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("bpf2go: %v\n%s", err, b)
		}
	}
	for _, f := range []string{"socklb_bpfel.go", "socklb_bpfel.o", "tcnp_bpfel.go", "tcnp_bpfel.o", "xdpnp_bpfel.go", "xdpnp_bpfel.o"} {
		want, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what bpf/ compiles to: run go generate ./datapath/ebpf and commit it", f)
		}
	}
}

// splitQuoted splits a command line on spaces, keeping "double quoted"
// arguments whole, as go generate does.
func splitQuoted(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote, have = !inQuote, true
		case r == ' ' && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}
