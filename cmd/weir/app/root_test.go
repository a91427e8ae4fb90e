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
