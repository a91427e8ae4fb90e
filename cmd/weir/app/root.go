// Package app wires weir's cobra commands to the packages that do the work.
// Flags live here; behaviour does not.
package app

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X weir.dev/weir/cmd/weir/app.Version=…".
var Version = "dev"

// NewRootCommand builds the weir command tree.
func NewRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "weir",
		Short:         "weir: a compact orchestrator with an eBPF service data plane",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServerCommand(), newAgentCommand(), newUpCommand(), newDownCommand(), newDemoCommand(), newImageCommand(), newVersionCommand(), newDPCommand())
	addClientCommands(root)
	refuseUnknownSubcommands(root)
	return root
}

// refuseUnknownSubcommands makes every command that only groups others
// fail on an unknown subcommand, as kubectl does (`error: unknown command
// "x" for "weir dp"`, exit 1), instead of cobra's help with exit 0; with
// no argument it prints its help.
func refuseUnknownSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		refuseUnknownSubcommands(sub)
	}
	if c == c.Root() || !c.HasSubCommands() || c.Run != nil || c.RunE != nil {
		return
	}
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())
		}
		return cmd.Help()
	}
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the weir version",
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "weir %s\n", Version)
			return nil
		},
	}
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}
