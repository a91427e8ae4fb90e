package app

import (
	"github.com/spf13/cobra"

	"weir.dev/weir/nodeagent/localcluster"
)

func newDemoCommand() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Show a Deployment's Service answering across the nodes of a cluster started with weir up",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return localcluster.Demo(cmd.Context(), dataDir, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "/var/lib/weir", "the data dir weir up used")
	return cmd
}
