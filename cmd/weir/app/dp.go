package app

import (
	"github.com/spf13/cobra"

	"weir.dev/weir/datapath/ebpf"
	"weir.dev/weir/datapath/ebpf/inspect"
)

// dpViews are the subcommands of `weir dp`, one file each (dp_<view>.go
// adds itself here in an init), so a new view is one new file.
var dpViews []dpView

type dpView struct {
	use, short string
	view       inspect.View
}

func newDPCommand() *cobra.Command {
	var o inspect.Options
	cmd := &cobra.Command{
		Use:   "dp",
		Short: "Show a node's eBPF service maps (read-only, from the pins under <bpffs>/weir/<node>)",
		Args:  cobra.NoArgs,
	}
	f := cmd.PersistentFlags()
	f.StringVar(&o.Node, "node", "", "node whose pinned maps to read (default: the only node pinned on this machine)")
	f.StringVar(&o.BPFFS, "bpffs", ebpf.DefaultBPFFS, "bpffs mount point")
	f.StringVarP(&o.Output, "output", "o", "", "output format: json (default: a table)")
	for _, v := range dpViews {
		cmd.AddCommand(&cobra.Command{
			Use:   v.use,
			Short: v.short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				return inspect.Run(cmd.OutOrStdout(), o, v.view)
			},
		})
	}
	return cmd
}
