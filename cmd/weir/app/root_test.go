package app

import (
	"bytes"
	"strings"
	"testing"
)

// A command that only groups others refuses an unknown subcommand with
// kubectl's wording and an error (non-zero exit), and prints its help
// without one.
func TestUnknownSubcommand(t *testing.T) {
	for _, args := range [][]string{{"dp", "nope"}, {"rollout", "nope"}, {"image", "nope"}} {
		root := NewRootCommand()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(args)
		err := root.Execute()
		want := `unknown command "nope" for "weir ` + args[0] + `"`
		if err == nil || err.Error() != want {
			t.Errorf("weir %s = %v, want %s", strings.Join(args, " "), err, want)
		}
	}
	root := NewRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"dp"})
	if err := root.Execute(); err != nil || !strings.Contains(out.String(), "Available Commands") {
		t.Errorf("weir dp = %v, want its help:\n%s", err, out.String())
	}
}

// Bad data-plane sizes are refused by the agent command before it joins
// anything, each naming its flag.
func TestAgentRefusesBadMapSizes(t *testing.T) {
	for flag, want := range map[string]string{
		"--bpf-map-slots=0":            "--bpf-map-slots 0: want 1..16777216 entries",
		"--bpf-map-conntrack=16777217": "--bpf-map-conntrack 16777217: want 1..16777216 entries",
		"--maglev-table-size=100":      "--maglev-table-size: datapath/ebpf: maglev size 100: want a prime in 7..131071",
		"--cluster-cidr=10.244.0.0":    `--cluster-cidr "10.244.0.0": want an IPv4 CIDR such as 10.244.0.0/16`,
	} {
		root := NewRootCommand()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		// An unreachable server: getting past validation would fail later
		// with a different error.
		root.SetArgs([]string{"agent", "--node-name", "x", "--token", "t", "--server", "https://127.0.0.1:1", flag})
		if err := root.Execute(); err == nil || err.Error() != want {
			t.Errorf("weir agent %s = %v, want %s", flag, err, want)
		}
	}
}
