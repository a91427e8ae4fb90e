package app

import (
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"weir.dev/weir/nodeagent/localcluster"
)

func newDemoCommand() *cobra.Command {
	var dataDir, echoBin string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Show a Service answering across nodes of a cluster started with weir up",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if echoBin == "" {
				exe, err := os.Executable()
				if err != nil {
					return err
				}
				echoBin = filepath.Join(filepath.Dir(exe), "weir-echo")
			}
			return localcluster.Demo(cmd.Context(), dataDir, echoBin, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "/var/lib/weir", "the data dir weir up used")
	cmd.Flags().StringVar(&echoBin, "echo", "", "weir-echo binary (default: beside weir)")
	return cmd
}
